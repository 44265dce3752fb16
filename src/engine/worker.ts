/// <reference lib="webworker" />
// The engine's worker entry: ORT loads its .wasm from our own origin; every message goes to the handler.
import mjs from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import wasm from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import cpuMjs from 'onnxruntime-web/ort-wasm-simd-threaded.mjs?url';
import cpuWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { Engine } from './core/engine';
import { createHandler, type Post } from './core/handler';
import { configureRuntime } from './core/sessions';
import { WORKER_ID } from './protocol';

const here = (url: string) => new URL(url, self.location.href).href;
// the WebGPU build (asyncify) and the plain build that runs WASM-only loads (sessions.ts)
configureRuntime({ wasmPaths: { mjs: here(mjs), wasm: here(wasm) }, cpuWasmPaths: { mjs: here(cpuMjs), wasm: here(cpuWasm) } });
const scope = self as unknown as DedicatedWorkerGlobalScope;
const post: Post = (event, transfer) => scope.postMessage(event, transfer ?? []);
// a lost GPU device kills the model's sessions: the supervisor replaces this worker
const engine = new Engine({ onDeviceLost: (message) => post({ type: 'engine', id: WORKER_ID, state: 'device-lost', message }) });
const handle = createHandler(engine, post);
scope.onmessage = (e: MessageEvent) => void handle(e.data);

// A stray error (an exception in a callback, a rejection nobody awaited) fails the job that was
// running, not the engine: handled here, it never reaches the Worker object as a crash.
const stray = (what: unknown) => {
  const message = what instanceof Error ? `${what.name}: ${what.message}` : String(what);
  engine.failRunning(message);
  post({ type: 'engine', id: WORKER_ID, state: 'fault', message });
};
scope.addEventListener('error', (e: ErrorEvent) => {
  e.preventDefault();
  stray(e.error ?? e.message);
});
scope.addEventListener('unhandledrejection', (e: PromiseRejectionEvent) => {
  e.preventDefault();
  stray(e.reason);
});

post({ type: 'engine', id: WORKER_ID, state: 'started' });
