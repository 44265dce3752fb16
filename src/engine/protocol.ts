/**
 * The worker protocol: requests from the UI thread, events back from the engine.
 * Both are discriminated unions on `type`; every request gets exactly one final event
 * (`done` or `error`) carrying the request's `id`.
 */

export type Backend = 'webgpu' | 'wasm';
export type BackendPreference = 'auto' | Backend;

export interface GenerateParams {
  prompt: string;
  negativePrompt: string;
  numInferenceSteps: number;
  guidanceScale: number;
  seed: number;
}

export type WorkerRequest =
  | { type: 'load'; id: string; modelUrl: string; backend: BackendPreference }
  | { type: 'generate'; id: string; params: GenerateParams }
  | { type: 'cancel'; id: string; targetId: string };

export interface BackendInfo {
  backend: Backend;
  /** WebGPU adapter description (vendor / architecture / description), when WebGPU ran. */
  adapter?: string;
  /** Whether the adapter offers the `shader-f16` feature. */
  shaderF16?: boolean;
  /** WASM threads in use (1 when the page is not cross-origin isolated). */
  threads: number;
  /** Why WebGPU was not used, when the preference was `auto` and WASM ran. */
  fallbackReason?: string;
}

export interface ModelInfo {
  id: string;
  name: string;
  family: string;
  imageSize: number;
  defaults: { steps: number; guidanceScale: number; negativePrompt: string };
  shift: number;
}

export interface GenerateTimings {
  encodeMs: number;
  denoiseMs: number;
  decodeMs: number;
  totalMs: number;
  msPerStep: number;
}

export interface GeneratedImage {
  width: number;
  height: number;
  /** RGBA bytes, width*height*4; transferred (not copied) from the worker. */
  pixels: Uint8ClampedArray;
}

export type DoneResult =
  | { request: 'load'; model: ModelInfo; backend: BackendInfo; loadMs: number }
  | { request: 'generate'; image: GeneratedImage; params: GenerateParams; modelId: string; shift: number; timings: GenerateTimings }
  | { request: 'cancel'; cancelled: boolean };

export interface EngineErrorInfo {
  /** Machine-readable kind, e.g. `BadRequestError`, `BusyError`, `CancelledError`, `ModelError`. */
  name: string;
  /** What happened. */
  message: string;
  /** What the user can do about it. */
  action: string;
}

export type WorkerEvent =
  | { type: 'download'; id: string; file: string; loaded: number; total: number }
  | { type: 'status'; id: string; message: string }
  | { type: 'backend'; id: string; info: BackendInfo }
  | { type: 'step'; id: string; step: number; total: number; msPerStep: number }
  | { type: 'done'; id: string; result: DoneResult }
  | { type: 'error'; id: string; error: EngineErrorInfo };

/** Id of events about the worker itself (it crashed) rather than about one request. */
export const WORKER_ID = 'worker';

export function assertNever(x: never): never {
  throw new Error(`Unexpected value: ${JSON.stringify(x)}`);
}

export const LIMITS = {
  steps: { min: 1, max: 50 },
  guidance: { min: 1, max: 12 },
  promptChars: 10_000,
} as const;
