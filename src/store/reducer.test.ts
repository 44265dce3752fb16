import { describe, expect, it } from 'vitest';
import type { EngineErrorInfo, GenerateParams, WorkerEvent } from '../engine/protocol';
import { applyEvent, WORKER_ERROR_ID } from './reducer';
import { selectAppState, selectLoadFraction, selectStatusText, selectTimeLeft } from './selectors';
import { idleGeneration, initialData, type StudioData } from './state';
import { generateResult, loadDone, modelInfo } from './testUtils';

const params: GenerateParams = { prompt: 'a cat', negativePrompt: '', numInferenceSteps: 20, guidanceScale: 4, seed: 7 };

function loading(): StudioData {
  const s = initialData();
  return { ...s, model: { ...s.model, status: 'loading', requestId: 'load-1', url: '/m.json' } };
}

function running(): StudioData {
  const s = apply(loading(), loadDone('load-1'));
  return { ...s, generation: { ...idleGeneration, status: 'running', requestId: 'gen-1', total: 20 } };
}

const apply = (s: StudioData, e: WorkerEvent): StudioData => ({ ...s, ...applyEvent(s, e) });
const err = (name: string): EngineErrorInfo => ({ name, message: `${name} happened`, action: 'Do something.' });

describe('applyEvent: load', () => {
  it('tracks download progress per file and overall', () => {
    let s = apply(loading(), { type: 'download', id: 'load-1', file: 'a.onnx', loaded: 10, total: 100 });
    s = apply(s, { type: 'download', id: 'load-1', file: 'b.onnx', loaded: 0, total: 300 });
    s = apply(s, { type: 'download', id: 'load-1', file: 'a.onnx', loaded: 100, total: 100 });
    expect(s.model.files).toEqual({
      'a.onnx': { file: 'a.onnx', loaded: 100, total: 100 },
      'b.onnx': { file: 'b.onnx', loaded: 0, total: 300 },
    });
    expect(selectLoadFraction(s)).toBe(0.25);
    expect(selectStatusText(s)).toBe('Loading model… 25%');
    expect(selectAppState(s)).toBe('loading');
  });

  it('shows status messages and the backend', () => {
    let s = apply(loading(), { type: 'status', id: 'load-1', message: 'Compiling shaders…' });
    expect(s.model.message).toBe('Compiling shaders…');
    expect(selectStatusText(s)).toBe('Loading model… Compiling shaders…');
    s = apply(s, { type: 'backend', id: 'load-1', info: { backend: 'wasm', threads: 4, fallbackReason: 'no adapter' } });
    expect(s.model.backend).toEqual({ backend: 'wasm', threads: 4, fallbackReason: 'no adapter' });
  });

  it('becomes ready with the model and applies its defaults', () => {
    const s = apply(loading(), loadDone('load-1'));
    expect(s.model.status).toBe('ready');
    expect(s.model.info).toEqual(modelInfo);
    expect(s.model.backend?.backend).toBe('webgpu');
    expect(s.model.loadMs).toBe(1500);
    expect([s.numInferenceSteps, s.guidanceScale, s.negativePrompt]).toEqual([24, 4.5, 'blurry']);
    expect(selectAppState(s)).toBe('ready');
    expect(selectStatusText(s)).toBe('Ready');
  });

  it('keeps settings the user already changed', () => {
    const before = { ...loading(), numInferenceSteps: 8, guidanceScale: 2, negativePrompt: '' };
    const s = apply({ ...before, touched: { numInferenceSteps: true, guidanceScale: false, negativePrompt: true } }, loadDone('load-1'));
    expect([s.numInferenceSteps, s.guidanceScale, s.negativePrompt]).toEqual([8, 4.5, '']);
  });

  it('clamps out-of-range model defaults', () => {
    const e = loadDone('load-1');
    if (e.type !== 'done' || e.result.request !== 'load') throw new Error('fixture');
    e.result.model = { ...modelInfo, defaults: { steps: 80, guidanceScale: 7.3, negativePrompt: '' } };
    const s = apply(loading(), e);
    expect([s.numInferenceSteps, s.guidanceScale]).toEqual([50, 7.5]);
  });

  it('clears a not-ready refusal once loaded, but not other banners', () => {
    const notReady = apply({ ...loading(), error: err('NotReadyError') }, loadDone('load-1'));
    expect(notReady.error).toBeNull();
    const other = apply({ ...loading(), error: err('QuotaError') }, loadDone('load-1'));
    expect(other.error?.name).toBe('QuotaError');
  });

  it('turns a load error into a banner and the error state', () => {
    const s = apply(loading(), { type: 'error', id: 'load-1', error: err('ModelError') });
    expect(s.model.status).toBe('error');
    expect(s.error).toEqual(err('ModelError'));
    expect(selectAppState(s)).toBe('error');
  });

  it('forgets the backend a failed load was trying, so the badge never shows one that did not run', () => {
    const tried = apply(loading(), { type: 'backend', id: 'load-1', info: { backend: 'webgpu', threads: 1 } });
    expect(tried.model.backend?.backend).toBe('webgpu');
    const s = apply(tried, { type: 'error', id: 'load-1', error: err('ModelError') });
    expect(s.model.backend).toBeNull();
  });

  it('ignores events from an older load', () => {
    const s = loading();
    const stale: WorkerEvent[] = [
      { type: 'download', id: 'load-0', file: 'a', loaded: 1, total: 2 },
      { type: 'status', id: 'load-0', message: 'x' },
      { type: 'backend', id: 'load-0', info: { backend: 'wasm', threads: 1 } },
      loadDone('load-0'),
      { type: 'error', id: 'load-0', error: err('ModelError') },
    ];
    for (const e of stale) expect(applyEvent(s, e)).toEqual({});
  });
});

describe('applyEvent: generate', () => {
  it('reports steps with time left', () => {
    const s = apply(running(), { type: 'step', id: 'gen-1', step: 3, total: 20, msPerStep: 100 });
    expect(s.generation).toMatchObject({ step: 3, total: 20, msPerStep: 100, etaMs: 1700 });
    expect(selectStatusText(s)).toBe('Generating 20 steps…');
    expect(selectTimeLeft(s)).toBe('~1.7 s left');
    expect(selectAppState(s)).toBe('running');
  });

  it('shows generate status messages before the first step', () => {
    const s = apply(running(), { type: 'status', id: 'gen-1', message: 'Encoding prompt…' });
    expect(selectStatusText(s)).toBe('Encoding prompt…');
  });

  it('stores the image and timings when done', () => {
    const result = generateResult(params);
    const s = apply(running(), { type: 'done', id: 'gen-1', result });
    if (result.request !== 'generate') throw new Error('fixture');
    expect(s.lastImage).toEqual({ image: result.image, params, modelId: 'webdit-tiny', shift: 1, timings: result.timings });
    expect(s.generation.status).toBe('idle');
    expect(s.generation.requestId).toBeNull();
    expect(selectStatusText(s)).toBe('Done in 1.2 s');
    expect(selectAppState(s)).toBe('ready');
  });

  it('returns to idle on CancelledError without a banner', () => {
    let s = apply(running(), { type: 'step', id: 'gen-1', step: 2, total: 20, msPerStep: 50 });
    s = { ...s, generation: { ...s.generation, status: 'cancelling', cancelRequestId: 'cancel-1' } };
    s = apply(s, { type: 'done', id: 'cancel-1', result: { request: 'cancel', cancelled: true } });
    expect(s.generation.status).toBe('cancelling');
    expect(s.generation.cancelRequestId).toBeNull();
    s = apply(s, { type: 'error', id: 'gen-1', error: err('CancelledError') });
    expect(s.error).toBeNull();
    expect(s.generation.status).toBe('idle');
    expect(selectStatusText(s)).toBe('Cancelled at step 2/20');
    expect(selectAppState(s)).toBe('ready');
  });

  it('still shows the image when the run finished before the cancel landed', () => {
    const s = { ...running(), generation: { ...running().generation, status: 'cancelling' as const, cancelRequestId: 'cancel-1' } };
    const done = apply(s, { type: 'done', id: 'gen-1', result: generateResult(params) });
    expect(done.lastImage).not.toBeNull();
    expect(done.generation.status).toBe('idle');
  });

  it('shows a failed cancel as a banner and keeps the run', () => {
    const s = { ...running(), generation: { ...running().generation, status: 'cancelling' as const, cancelRequestId: 'cancel-1' } };
    const next = apply(s, { type: 'error', id: 'cancel-1', error: err('BadRequestError') });
    expect(next.error?.name).toBe('BadRequestError');
    expect(next.generation.requestId).toBe('gen-1');
  });

  it('turns other generate errors into a banner', () => {
    const s = apply(running(), { type: 'error', id: 'gen-1', error: err('OutOfMemoryError') });
    expect(s.error).toEqual(err('OutOfMemoryError'));
    expect(s.generation.status).toBe('idle');
    expect(selectAppState(s)).toBe('error');
  });

  it('ignores events from an older generation', () => {
    const s = running();
    const stale: WorkerEvent[] = [
      { type: 'step', id: 'gen-0', step: 5, total: 20, msPerStep: 1 },
      { type: 'status', id: 'gen-0', message: 'x' },
      { type: 'done', id: 'gen-0', result: generateResult(params) },
      { type: 'error', id: 'gen-0', error: err('CancelledError') },
      { type: 'done', id: 'cancel-0', result: { request: 'cancel', cancelled: false } },
      // A result whose kind does not match the request the id belongs to.
      { type: 'done', id: 'gen-1', result: (loadDone('x') as Extract<WorkerEvent, { type: 'done' }>).result },
      { type: 'download', id: 'gen-1', file: 'a', loaded: 1, total: 1 },
    ];
    for (const e of stale) expect(applyEvent(s, e)).toEqual({});
  });
});

describe('applyEvent: worker crash', () => {
  it('unblocks a running generation with a banner', () => {
    const s = apply(running(), { type: 'error', id: WORKER_ERROR_ID, error: err('WorkerError') });
    expect(s.error?.name).toBe('WorkerError');
    expect(s.generation.status).toBe('idle');
    expect(s.model.status).toBe('ready');
  });

  it('fails a load in progress', () => {
    const s = apply(loading(), { type: 'error', id: WORKER_ERROR_ID, error: err('WorkerError') });
    expect(s.model.status).toBe('error');
    expect(selectAppState(s)).toBe('error');
  });
});
