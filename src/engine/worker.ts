/// <reference lib="webworker" />
// The engine's worker entry: ORT loads its .wasm from our own origin; every message goes to the handler.
import mjs from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import wasm from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import { Engine } from './core/engine';
import { createHandler } from './core/handler';
import { configureRuntime } from './core/sessions';

configureRuntime({ wasmPaths: { mjs: new URL(mjs, self.location.href).href, wasm: new URL(wasm, self.location.href).href } });
const scope = self as unknown as DedicatedWorkerGlobalScope;
const handle = createHandler(new Engine(), (event, transfer) => scope.postMessage(event, transfer ?? []));
scope.onmessage = (e: MessageEvent) => void handle(e.data);
