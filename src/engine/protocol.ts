/**
 * The engine protocol. `ImageEngine` is the one interface both sides implement: `Engine` in the
 * worker and `EngineClient` on the UI thread (the web-llm pattern). Across the worker boundary it
 * becomes a discriminated union of requests and events; every request gets exactly one final
 * event (`done` or `error`) carrying the request's `id`.
 */
import type { EngineErrorName, ErrorFix } from './errors';
import type { GenerateParams, GenerateRequestParams, ResolvedGenerateParams } from './schema';

export type { GenerateParams, GenerateRequestParams, ResolvedGenerateParams } from './schema';
export type { EngineErrorName, ErrorFix } from './errors';

export type Backend = 'webgpu' | 'wasm';
export type BackendPreference = 'auto' | Backend;

export interface LoadOptions {
  /** The model folder's URL (ending in '/'), or its manifest.json (format 1 URLs keep working). */
  modelUrl: string;
  backend: BackendPreference;
  /** Optional components to leave out (not downloaded, not loaded), e.g. ['text_encoder_3'] for SD3 without T5. */
  skipComponents?: string[];
}

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
  /** What the worker's browser offers (WebGPU adapter, features, limits; WASM threads, SIMD, isolation). */
  report?: DeviceReport;
}

/** The device and backend report shown with each run (core/deviceReport.ts). */
export interface DeviceReport {
  webgpu: {
    vendor: string;
    architecture: string;
    description: string;
    isFallbackAdapter: boolean;
    features: string[];
    limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  } | null;
  /** Why there is no adapter to report ("this browser has no WebGPU", "no adapter"). */
  webgpuMissing?: string;
  wasm: { threads: number; simd: boolean; crossOriginIsolated: boolean; hardwareConcurrency: number | null };
}

export interface Range {
  min: number;
  max: number;
}

/** What a loaded model allows and prefers; the UI reads these instead of global constants. */
export interface ModelInfo {
  id: string;
  name: string;
  family: string;
  defaults: {
    numInferenceSteps: number;
    guidanceScale: number;
    negativePrompt: string;
    width: number;
    height: number;
    strength: number;
  };
  limits: {
    numInferenceSteps: Range;
    guidanceScale: Range;
    /** Image sizes the model can make, [width, height]. */
    sizes: [number, number][];
    numImagesPerPrompt: Range;
  };
  /** Sampler facts shown with every image (and written into the PNG). */
  scheduler: { shift: number; numTrainTimesteps: number };
  /** Image-to-image needs a VAE encoder in the model folder. */
  imageToImage: boolean;
}

export interface GenerateTimings {
  encodeMs: number;
  denoiseMs: number;
  decodeMs: number;
  totalMs: number;
  msPerStep: number;
  /** GPU -> CPU reads of the run (WebGPU outputs stay GPU buffers until read); 0 on WASM. */
  readbacks?: number;
  /** Of those, the reads inside the denoise loop: 0 when sampling stays on the GPU and previews are off. */
  denoiseReadbacks?: number;
  /** Tensors the engine still holds in the runtime after the run (0 unless GPU memory leaks across runs). */
  liveDeviceTensors?: number;
  /** Each denoise step's duration in ms, in order (a step that decoded a preview includes that decode). */
  stepMs?: number[];
}

export interface GeneratedImage {
  width: number;
  height: number;
  /** RGBA bytes, width*height*4; transferred (not copied) from the worker. */
  pixels: Uint8ClampedArray;
}

/** One finished image of a generate job, with everything needed to make it again. */
export interface ImageResult {
  /** Position in the batch: seed = params.seed + index (an animation's frame: all carry seed A and params.animation). */
  index: number;
  image: GeneratedImage;
  /** The settings that made exactly this image (seed included; no init image pixels). */
  params: ResolvedGenerateParams;
  modelId: string;
  shift: number;
  timings: GenerateTimings;
}

/** Whether the browser keeps the model's files for the next visit (a Cache API write can be refused: quota, private windows). */
export interface StorageReport {
  /** false: some file could not be stored; the model runs from memory and the next visit downloads it again. */
  kept: boolean;
  /** Bytes of the model's files: what every visit downloads when nothing is kept. */
  bytes: number;
  /** The browser's reason, when it refused. */
  reason?: string;
}

export interface LoadResult {
  request: 'load';
  model: ModelInfo;
  backend: BackendInfo;
  loadMs: number;
  storage?: StorageReport;
}

export interface GenerateResult {
  request: 'generate';
  /** Seeds of the images, in batch order (their pixels came as `image` events). */
  seeds: number[];
  timings: GenerateTimings;
}

export interface CancelResult {
  request: 'cancel';
  /** Whether the target was still queued or running when the cancel arrived. */
  cancelled: boolean;
}

export type DoneResult = LoadResult | GenerateResult | CancelResult;

export interface EngineErrorInfo {
  name: EngineErrorName;
  /** What happened. */
  message: string;
  /** What the user can do about it. */
  action: string;
  /** The in-page action that fixes it, offered as a button. */
  fix?: ErrorFix;
}

/** Progress of a job; `stage` says which part of the work it is about. */
export type ProgressEvent =
  | { type: 'progress'; stage: 'queued'; position: number }
  | { type: 'progress'; stage: 'download'; file: string; loaded: number; total: number }
  | { type: 'progress'; stage: 'prepare'; message: string }
  | { type: 'progress'; stage: 'denoise'; step: number; total: number; msPerStep: number };

/** What a running job reports, before its final event. */
export type JobEvent =
  | ProgressEvent
  | { type: 'backend'; info: BackendInfo }
  | { type: 'preview'; step: number; total: number; index: number; image: GeneratedImage }
  | ({ type: 'image' } & ImageResult);

export type FinalEvent = { type: 'done'; result: DoneResult } | { type: 'error'; error: EngineErrorInfo };

/**
 * About the engine itself rather than one job (id WORKER_ID). From the worker: it started (its
 * script ran), a stray error or a lost GPU device happened inside it. From the supervisor on the
 * UI thread: the worker was replaced and the model is loading again under `loadId`.
 */
export type EngineEvent = { type: 'engine'; id: string } & (
  | { state: 'started' }
  | { state: 'fault'; message: string }
  | { state: 'device-lost'; message: string }
  | { state: 'restarting'; reason: string; loadId: string | null }
);

export type WorkerEvent = ((JobEvent | FinalEvent) & { id: string }) | EngineEvent;

export type WorkerRequest =
  | ({ type: 'load'; id: string } & LoadOptions)
  | { type: 'generate'; id: string; params: GenerateRequestParams }
  | { type: 'cancel'; id: string; targetId: string };

export type JobListener = (event: JobEvent) => void;

/** A queued or running job: its id (for cancel) and its outcome. */
export interface Job<R> {
  id: string;
  result: Promise<R>;
}

/** The engine, as both sides of the worker boundary see it. */
export interface ImageEngine {
  /** Queue a model load; it replaces the current model only when it succeeds. */
  load(options: LoadOptions, listener?: JobListener): Job<LoadResult>;
  /** Queue a generate; it runs after the jobs before it (a load included). */
  generate(params: GenerateRequestParams | GenerateParams, listener?: JobListener): Job<GenerateResult>;
  /** Cancel a queued or running job; resolves to whether it was still pending. */
  cancel(jobId: string): Promise<boolean>;
}

/** Id of events about the worker itself (it crashed) rather than about one request. */
export const WORKER_ID = 'worker';

export function assertNever(x: never): never {
  throw new Error(`Unexpected value: ${JSON.stringify(x)}`);
}
