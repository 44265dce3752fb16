/// <reference lib="webworker" />
// The engine's worker entry: configure ORT to load its .wasm from our own origin, then hand
// every message to the request handler.
import mjs from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import wasm from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import { Engine } from './engine';
import { createHandler } from './handler';
import { configureRuntime } from './sessions';

configureRuntime({ wasmPaths: { mjs: new URL(mjs, self.location.href).href, wasm: new URL(wasm, self.location.href).href } });
const scope = self as unknown as DedicatedWorkerGlobalScope;
const handle = createHandler(new Engine({ textEncoderDevice: () => 'wasm' }), (event, transfer) => scope.postMessage(event, transfer ?? []));
scope.onmessage = (e: MessageEvent) => void handle(e.data);
