/** Fixtures shared by the store and component tests (never imported by the app). */
import type { BackendPreference, DoneResult, GenerateParams, ModelInfo, WorkerEvent } from '../engine/protocol';
import type { ConnectableEngine } from './connect';

export const modelInfo: ModelInfo = {
  id: 'webdit-tiny',
  name: 'WebDiT tiny',
  family: 'webdit',
  imageSize: 64,
  defaults: { steps: 24, guidanceScale: 4.5, negativePrompt: 'blurry' },
  shift: 1,
};

export const loadDone = (id: string): WorkerEvent => ({
  type: 'done',
  id,
  result: { request: 'load', model: modelInfo, backend: { backend: 'webgpu', adapter: 'SwiftShader', shaderF16: false, threads: 1 }, loadMs: 1500 },
});

export function generateResult(params: GenerateParams): DoneResult {
  const width = 2;
  const height = 2;
  return {
    request: 'generate',
    image: { width, height, pixels: new Uint8ClampedArray(width * height * 4).fill(200) },
    params,
    modelId: modelInfo.id,
    shift: modelInfo.shift,
    timings: { encodeMs: 10, denoiseMs: 900, decodeMs: 20, totalMs: 1234, msPerStep: 45 },
  };
}

/** An engine that records requests and lets the test play the worker's side. */
export class FakeEngine implements ConnectableEngine {
  calls: ({ type: 'load'; modelUrl: string; backend: BackendPreference } | { type: 'generate'; params: GenerateParams } | { type: 'cancel'; targetId: string })[] = [];
  ids: string[] = [];
  private listeners = new Set<(e: WorkerEvent) => void>();
  private n = 0;

  load(modelUrl: string, backend: BackendPreference): string {
    this.calls.push({ type: 'load', modelUrl, backend });
    return this.id('load');
  }
  generate(params: GenerateParams): string {
    this.calls.push({ type: 'generate', params });
    return this.id('gen');
  }
  cancel(targetId: string): string {
    this.calls.push({ type: 'cancel', targetId });
    return this.id('cancel');
  }
  subscribe(listener: (e: WorkerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(event: WorkerEvent): void {
    for (const l of this.listeners) l(event);
  }
  get lastId(): string {
    return this.ids[this.ids.length - 1];
  }
  private id(kind: string): string {
    const id = `${kind}-${this.n++}`;
    this.ids.push(id);
    return id;
  }
}
