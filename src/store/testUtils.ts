/** Fixtures shared by the store and component tests (never imported by the app). */
import type {
  BackendPreference,
  DoneResult,
  GenerateParams,
  GenerateRequestParams,
  GenerateResult,
  ImageResult,
  Job,
  JobEvent,
  JobListener,
  LoadOptions,
  LoadResult,
  ModelInfo,
  ResolvedGenerateParams,
  WorkerEvent,
} from '../engine/protocol';
import type { StudioEngine } from './store';
import { initialData, type StudioData } from './state';

/** A model whose limits are narrower than the schema's, so tests can tell which ranges apply. */
export const modelInfo: ModelInfo = {
  id: 'webdit-tiny',
  name: 'WebDiT tiny',
  family: 'webdit',
  defaults: { numInferenceSteps: 24, guidanceScale: 4.5, negativePrompt: 'blurry', width: 4, height: 4, strength: 0.6 },
  limits: {
    numInferenceSteps: { min: 1, max: 40 },
    guidanceScale: { min: 1, max: 10 },
    sizes: [[4, 4]],
    numImagesPerPrompt: { min: 1, max: 4 },
  },
  scheduler: { shift: 2, numTrainTimesteps: 1000 },
  imageToImage: false,
};

/** The store's data once `modelInfo` has loaded, for selector tests that need no engine. */
export function readyData(): StudioData {
  const s = initialData();
  return { ...s, model: { ...s.model, status: 'ready', requestId: 'load-0', url: '/m/', info: modelInfo, backend: { backend: 'wasm', threads: 1 }, loadMs: 1 } };
}

export const timings = { encodeMs: 10, denoiseMs: 900, decodeMs: 20, totalMs: 1234, msPerStep: 45 };

export const loadDone = (id: string, model: ModelInfo = modelInfo): WorkerEvent => ({
  type: 'done',
  id,
  result: { request: 'load', model, backend: { backend: 'webgpu', adapter: 'SwiftShader', shaderF16: false, threads: 1 }, loadMs: 1500 },
});

/** What the engine's resolveParams makes of a request, for image `index` of its batch. */
export function resolved(params: GenerateRequestParams, index = 0): ResolvedGenerateParams {
  const { defaults } = modelInfo;
  return {
    prompt: params.prompt ?? '',
    negativePrompt: params.negativePrompt ?? '',
    numInferenceSteps: params.numInferenceSteps ?? defaults.numInferenceSteps,
    guidanceScale: params.guidanceScale ?? defaults.guidanceScale,
    seed: ((params.seed ?? 0) + index) >>> 0,
    numImagesPerPrompt: 1,
    width: defaults.width,
    height: defaults.height,
    strength: params.strength ?? defaults.strength,
    previewEvery: params.previewEvery ?? 0,
    imageToImage: false,
  };
}

/** Pixels that tell the images of a batch apart: every byte is 200 + index. */
export function pixels(index: number): Uint8ClampedArray {
  return new Uint8ClampedArray(modelInfo.defaults.width * modelInfo.defaults.height * 4).fill(200 + index);
}

export function imageResult(params: GenerateRequestParams, index = 0): ImageResult {
  const { width, height } = modelInfo.defaults;
  return { index, image: { width, height, pixels: pixels(index) }, params: resolved(params, index), modelId: modelInfo.id, shift: modelInfo.scheduler.shift, timings };
}

export const imageEvent = (id: string, params: GenerateRequestParams, index = 0): WorkerEvent => ({ type: 'image', id, ...imageResult(params, index) });

export function generateDone(id: string, params: GenerateRequestParams): WorkerEvent {
  const n = params.numImagesPerPrompt ?? 1;
  const seeds = Array.from({ length: n }, (_, b) => ((params.seed ?? 0) + b) >>> 0);
  return { type: 'done', id, result: { request: 'generate', seeds, timings } };
}

type Call =
  | { type: 'load'; modelUrl: string; backend: BackendPreference }
  | { type: 'generate'; params: GenerateRequestParams }
  | { type: 'cancel'; targetId: string };

interface Pending {
  listener?: JobListener;
  resolve: (r: DoneResult) => void;
  reject: (e: unknown) => void;
}

/** An engine that records requests and lets the test play the worker's side. */
export class FakeEngine implements StudioEngine {
  calls: Call[] = [];
  /** Job ids in the order they were made. */
  ids: string[] = [];
  /** What the next cancel() answers; a test swaps it for a rejection. */
  cancelOutcome: () => Promise<boolean> = async () => true;
  private listeners = new Set<(e: WorkerEvent) => void>();
  private pending = new Map<string, Pending>();
  private n = 0;

  load(options: LoadOptions, listener?: JobListener): Job<LoadResult> {
    this.calls.push({ type: 'load', modelUrl: options.modelUrl, backend: options.backend });
    return this.job('load', listener) as Job<LoadResult>;
  }
  generate(params: GenerateRequestParams | GenerateParams, listener?: JobListener): Job<GenerateResult> {
    this.calls.push({ type: 'generate', params });
    return this.job('gen', listener) as Job<GenerateResult>;
  }
  cancel(targetId: string): Promise<boolean> {
    this.calls.push({ type: 'cancel', targetId });
    return this.cancelOutcome();
  }
  subscribe(listener: (e: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Play one event as the worker would send it: to the job's listener and result, then to subscribers. */
  emit(event: WorkerEvent): void {
    const p = this.pending.get(event.id);
    if (p && event.type === 'done') p.resolve(event.result);
    else if (p && event.type === 'error') p.reject(Object.assign(new Error(event.error.message), { info: event.error }));
    else if (p) {
      const { id: _id, ...jobEvent } = event;
      p.listener?.(jobEvent as JobEvent);
    }
    if (event.type === 'done' || event.type === 'error') this.pending.delete(event.id);
    for (const l of this.listeners) l(event);
  }

  /** Finish a generate job as the engine does: one image event per batch image, then done. */
  finish(id = this.lastId): void {
    const params = this.paramsOf(id);
    for (let index = 0; index < (params.numImagesPerPrompt ?? 1); index++) this.emit(imageEvent(id, params, index));
    this.emit(generateDone(id, params));
  }

  /** The params a generate job was sent with. */
  paramsOf(id: string): GenerateRequestParams {
    const call = this.calls.filter((c) => c.type !== 'cancel')[this.ids.indexOf(id)];
    if (call?.type !== 'generate') throw new Error(`${id} is not a generate job`);
    return call.params;
  }

  get lastId(): string {
    return this.ids[this.ids.length - 1];
  }

  private job(kind: string, listener?: JobListener): Job<DoneResult> {
    const id = `${kind}-${this.n++}`;
    this.ids.push(id);
    const result = new Promise<DoneResult>((resolve, reject) => this.pending.set(id, { listener, resolve, reject }));
    result.catch(() => undefined); // like EngineClient: callers that only follow events see no unhandled rejection
    return { id, result };
  }
}
