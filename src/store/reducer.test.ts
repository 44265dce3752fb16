import { describe, expect, it } from 'vitest';
import { WORKER_ID, type EngineErrorInfo, type EngineErrorName, type GenerateRequestParams, type ModelInfo, type WorkerEvent } from '../engine/protocol';
import { applyEvent } from './reducer';
import {
  selectAppState,
  selectCanGenerate,
  selectGuidanceScale,
  selectImageToImageBlocker,
  selectInitImage,
  selectLimits,
  selectLoadFraction,
  selectNegativePrompt,
  selectNumImagesPerPrompt,
  selectNumInferenceSteps,
  selectShownBatch,
  selectShownImage,
  selectSize,
  selectStatusText,
  selectStrength,
  selectTimeLeft,
  WAITING_FOR_MODEL,
} from './selectors';
import { idleGeneration, initialData, MAX_IMAGES, type StudioData } from './state';
import { generateDone, imageEvent, loadDone, modelInfo, pixels, timings } from './testUtils';

const params: GenerateRequestParams = { prompt: 'a cat', negativePrompt: '', numInferenceSteps: 20, guidanceScale: 4, seed: 7, numImagesPerPrompt: 1 };

function loading(): StudioData {
  const s = initialData();
  return { ...s, model: { ...s.model, status: 'loading', requestId: 'load-1', url: '/m/' } };
}

function running(): StudioData {
  const s = apply(loading(), loadDone('load-1'));
  return { ...s, generation: { ...idleGeneration, status: 'running', requestId: 'gen-1', total: 20 } };
}

const apply = (s: StudioData, e: WorkerEvent): StudioData => ({ ...s, ...applyEvent(s, e) });
const applyAll = (s: StudioData, events: WorkerEvent[]) => events.reduce(apply, s);
const err = (name: EngineErrorName): EngineErrorInfo => ({ name, message: `${name} happened`, action: 'Do something.' });
const download = (id: string, file: string, loaded: number, total: number): WorkerEvent => ({ type: 'progress', stage: 'download', id, file, loaded, total });
const denoise = (id: string, step: number, total: number, msPerStep: number): WorkerEvent => ({ type: 'progress', stage: 'denoise', id, step, total, msPerStep });

describe('applyEvent: load', () => {
  it('tracks download progress per file and overall', () => {
    const s = applyAll(loading(), [download('load-1', 'a.onnx', 10, 100), download('load-1', 'b.onnx', 0, 300), download('load-1', 'a.onnx', 100, 100)]);
    expect(s.model.files).toEqual({
      'a.onnx': { file: 'a.onnx', loaded: 100, total: 100 },
      'b.onnx': { file: 'b.onnx', loaded: 0, total: 300 },
    });
    expect(selectLoadFraction(s)).toBe(0.25);
    // the status line names the file it waits for
    expect(selectStatusText(s)).toBe('Loading model… waiting for b.onnx (0 of 300 B)');
    expect(selectAppState(s)).toBe('loading');
  });

  it('names the file whose response has not started, not the last message or the done files (fault table 1b)', () => {
    let s = apply(loading(), { type: 'progress', stage: 'prepare', id: 'load-1', message: 'Checking what this model needs' });
    s = applyAll(s, [download('load-1', 'text_model/model.onnx', 2_000_000, 2_000_000), download('load-1', 'transformer/model.onnx', 0, 36_630_442)]);
    expect(selectStatusText(s)).toBe('Loading model… waiting for transformer/model.onnx (0 of 36.6 MB)');
    s = apply(s, download('load-1', 'transformer/model.onnx', 9_200_000, 36_630_442));
    expect(selectStatusText(s)).toBe('Loading model… downloading transformer/model.onnx, 25% of 36.6 MB');
    s = applyAll(s, [download('load-1', 'transformer/model.onnx', 36_630_442, 36_630_442), { type: 'progress', stage: 'prepare', id: 'load-1', message: 'Starting WASM sessions' }]);
    expect(selectStatusText(s)).toBe('Loading model… Starting WASM sessions');
  });

  it('shows prepare messages and the backend it is trying', () => {
    let s = apply(loading(), { type: 'progress', stage: 'prepare', id: 'load-1', message: 'Starting WebGPU sessions' });
    expect(s.model.message).toBe('Starting WebGPU sessions');
    expect(selectStatusText(s)).toBe('Loading model… Starting WebGPU sessions');
    s = apply(s, { type: 'backend', id: 'load-1', info: { backend: 'wasm', threads: 4, fallbackReason: 'no adapter' } });
    expect(s.model.loadingBackend).toEqual({ backend: 'wasm', threads: 4, fallbackReason: 'no adapter' });
    expect(s.model.backend).toBeNull(); // nothing ran yet
  });

  it('becomes ready with the model, whose defaults and limits the settings now use', () => {
    const before = loading();
    expect([selectNumInferenceSteps(before), selectGuidanceScale(before), selectNegativePrompt(before)]).toEqual([null, null, '']);
    expect(selectLimits(before).numInferenceSteps).toEqual({ min: 1, max: 50 }); // the schema's, until a model says
    const s = apply(before, loadDone('load-1'));
    expect(s.model).toMatchObject({ status: 'ready', info: modelInfo, loadingBackend: null, loadMs: 1500, message: null });
    expect(s.model.backend?.backend).toBe('webgpu');
    expect([selectNumInferenceSteps(s), selectGuidanceScale(s), selectNegativePrompt(s)]).toEqual([24, 4.5, 'blurry']);
    expect(selectLimits(s)).toBe(modelInfo.limits);
    expect(selectAppState(s)).toBe('ready');
    expect(selectStatusText(s)).toBe('Ready');
  });

  it("keeps the user's choices, clamped to the new model's limits", () => {
    const s = apply({ ...loading(), numInferenceSteps: 45, guidanceScale: 2, negativePrompt: '', numImagesPerPrompt: 8 }, loadDone('load-1'));
    // the model allows at most 40 steps and 4 images
    expect([selectNumInferenceSteps(s), selectGuidanceScale(s), selectNegativePrompt(s), selectNumImagesPerPrompt(s)]).toEqual([40, 2, '', 4]);
  });

  it('clamps out-of-range model defaults', () => {
    const odd: ModelInfo = { ...modelInfo, defaults: { ...modelInfo.defaults, numInferenceSteps: 80, guidanceScale: 7.3 } };
    const s = apply(loading(), loadDone('load-1', odd));
    expect([selectNumInferenceSteps(s), selectGuidanceScale(s)]).toEqual([40, 7.5]);
  });

  it('clears a not-ready refusal once loaded, but not other banners', () => {
    const notReady = apply({ ...loading(), error: err('NotReadyError') }, loadDone('load-1'));
    expect(notReady.error).toBeNull();
    const other = apply({ ...loading(), error: err('DownloadSaveError') }, loadDone('load-1'));
    expect(other.error?.name).toBe('DownloadSaveError');
  });

  it('turns a load error into a banner and the error state', () => {
    const s = apply(loading(), { type: 'error', id: 'load-1', error: err('ModelError') });
    expect(s.model.status).toBe('error');
    expect(s.error).toEqual(err('ModelError'));
    expect(selectAppState(s)).toBe('error');
    expect(selectCanGenerate(s)).toBe(false); // no model to run
  });

  it('forgets the backend a failed load was trying, and keeps the model that was already loaded', () => {
    const ready = apply(loading(), loadDone('load-1'));
    let s: StudioData = { ...ready, model: { ...ready.model, status: 'loading', requestId: 'load-2' } };
    s = apply(s, { type: 'backend', id: 'load-2', info: { backend: 'wasm', threads: 1 } });
    expect(s.model.loadingBackend?.backend).toBe('wasm');
    s = apply(s, { type: 'error', id: 'load-2', error: err('ModelError') });
    expect(s.model.loadingBackend).toBeNull();
    // the engine still holds the first model: the badge and Generate keep working with it
    expect(s.model.info).toBe(modelInfo);
    expect(s.model.backend?.backend).toBe('webgpu');
    expect(selectCanGenerate(s)).toBe(true);
  });

  it('ignores events from an older load', () => {
    const s = loading();
    const stale: WorkerEvent[] = [
      download('load-0', 'a', 1, 2),
      { type: 'progress', stage: 'prepare', id: 'load-0', message: 'x' },
      { type: 'backend', id: 'load-0', info: { backend: 'wasm', threads: 1 } },
      loadDone('load-0'),
      { type: 'error', id: 'load-0', error: err('ModelError') },
    ];
    for (const e of stale) expect(applyEvent(s, e)).toEqual({});
  });
});

describe('applyEvent: generate', () => {
  it('reports steps with time left', () => {
    const s = apply(running(), denoise('gen-1', 3, 20, 100));
    expect(s.generation).toMatchObject({ step: 3, total: 20, msPerStep: 100, etaMs: 1700 });
    expect(selectStatusText(s)).toBe('Generating 20 steps…');
    expect(selectTimeLeft(s)).toBe('~1.7 s left');
    expect(selectAppState(s)).toBe('running');
  });

  it('shows a run the engine queued behind a load as queued, until the load is done', () => {
    const s0: StudioData = { ...loading(), generation: { ...idleGeneration, status: 'running', requestId: 'gen-1' } };
    let s = apply(s0, { type: 'progress', stage: 'queued', id: 'gen-1', position: 1 });
    expect(s.generation.queued).toBe(true);
    expect(selectStatusText(s)).toBe('Queued…');
    expect(selectAppState(s)).toBe('running');
    s = apply(s, loadDone('load-1'));
    expect(s.generation.queued).toBe(false);
    expect(selectStatusText(s)).toBe('Generating…'); // steps not known until the first one
    s = apply(s, denoise('gen-1', 1, 24, 50));
    expect(selectStatusText(s)).toBe('Generating 24 steps…');
  });

  it('draws previews of the first image of the batch only', () => {
    const first = { width: 4, height: 4, pixels: pixels(0) };
    let s = apply(running(), { type: 'preview', id: 'gen-1', step: 5, total: 20, index: 0, image: first });
    expect(s.preview).toBe(first);
    s = apply(s, { type: 'preview', id: 'gen-1', step: 5, total: 20, index: 1, image: { width: 4, height: 4, pixels: pixels(1) } });
    expect(s.preview).toBe(first);
    expect(applyEvent(s, { type: 'preview', id: 'gen-0', step: 5, total: 20, index: 0, image: first })).toEqual({});
  });

  it('stores each image with its own params, clears the preview, and is done with the timings', () => {
    let s = apply(running(), { type: 'preview', id: 'gen-1', step: 5, total: 20, index: 0, image: { width: 4, height: 4, pixels: pixels(9) } });
    s = apply(s, imageEvent('gen-1', params));
    expect(s.preview).toBeNull();
    expect(s.images).toHaveLength(1);
    expect(s.images[0]).toMatchObject({ jobId: 'gen-1', index: 0, modelId: 'webdit-tiny', shift: 2, timings });
    expect(s.images[0].params).toMatchObject({ prompt: 'a cat', seed: 7, numInferenceSteps: 20, guidanceScale: 4, width: 4, height: 4 });
    expect(s.images[0].image.pixels).toEqual(pixels(0));
    expect(s.generation.status).toBe('running'); // until done
    s = apply(s, generateDone('gen-1', params));
    expect(s.generation).toMatchObject({ status: 'idle', requestId: null, step: 20, total: 20 });
    expect(selectShownImage(s)).toBe(s.images[0]);
    expect(selectStatusText(s)).toBe('Done in 1.2 s');
    expect(selectAppState(s)).toBe('ready');
  });

  it('shows the first image of the newest batch, or the one picked, and lists the batch', () => {
    const batch = { ...params, numImagesPerPrompt: 3 };
    let s = applyAll(running(), [imageEvent('gen-1', batch, 0), imageEvent('gen-1', batch, 1), imageEvent('gen-1', batch, 2), generateDone('gen-1', batch)]);
    expect(s.images.map((r) => r.params.seed)).toEqual([7, 8, 9]);
    expect(selectShownImage(s)?.params.seed).toBe(7);
    expect(selectShownBatch(s).map((r) => r.index)).toEqual([0, 1, 2]);
    s = { ...s, shown: { jobId: 'gen-1', index: 2 } };
    expect(selectShownImage(s)?.params.seed).toBe(9);
    // a new single image: shown large, and no thumbnail row for a batch of one
    s = { ...s, generation: { ...idleGeneration, status: 'running', requestId: 'gen-2', total: 20 } };
    s = applyAll(s, [imageEvent('gen-2', { ...params, seed: 100 }), generateDone('gen-2', params)]);
    expect(s.shown).toBeNull();
    expect(selectShownImage(s)?.params.seed).toBe(100);
    expect(selectShownBatch(s)).toEqual([]);
  });

  it(`keeps the newest ${MAX_IMAGES} images`, () => {
    let s = running();
    for (let i = 0; i < MAX_IMAGES + 3; i++) s = apply(s, imageEvent('gen-1', { ...params, seed: i }));
    expect(s.images).toHaveLength(MAX_IMAGES);
    expect(s.images[0].params.seed).toBe(3);
    expect(s.images.at(-1)?.params.seed).toBe(MAX_IMAGES + 2);
  });

  it('returns to idle on CancelledError without a banner, and drops the preview', () => {
    let s = apply(running(), denoise('gen-1', 2, 20, 50));
    s = apply(s, { type: 'preview', id: 'gen-1', step: 2, total: 20, index: 0, image: { width: 4, height: 4, pixels: pixels(0) } });
    s = { ...s, generation: { ...s.generation, status: 'cancelling' } };
    s = apply(s, { type: 'error', id: 'gen-1', error: err('CancelledError') });
    expect(s.error).toBeNull();
    expect(s.preview).toBeNull();
    expect(s.generation.status).toBe('idle');
    expect(selectStatusText(s)).toBe('Cancelled at step 2/20');
    expect(selectAppState(s)).toBe('ready');
  });

  it('says a run cancelled while it waited never started', () => {
    const s0: StudioData = { ...loading(), generation: { ...idleGeneration, status: 'cancelling', requestId: 'gen-1', queued: true } };
    const s = apply(s0, { type: 'error', id: 'gen-1', error: err('CancelledError') });
    expect(s.notice).toBe('Cancelled before it started');
  });

  it('still shows the images when the run finished before the cancel landed', () => {
    const s = { ...running(), generation: { ...running().generation, status: 'cancelling' as const } };
    const done = applyAll(s, [imageEvent('gen-1', params), generateDone('gen-1', params)]);
    expect(selectShownImage(done)).not.toBeNull();
    expect(done.generation.status).toBe('idle');
  });

  it('turns other generate errors into a banner', () => {
    const s = apply(running(), { type: 'error', id: 'gen-1', error: err('RuntimeError') });
    expect(s.error).toEqual(err('RuntimeError'));
    expect(s.generation.status).toBe('idle');
    expect(selectAppState(s)).toBe('error');
  });

  it('drops a run held for a load that fails: the load\'s banner says why', () => {
    const s0: StudioData = { ...loading(), generation: { ...idleGeneration, status: 'running', pending: true } };
    expect(selectStatusText(s0)).toBe(WAITING_FOR_MODEL);
    const s = apply(s0, { type: 'error', id: 'load-1', error: err('ModelError') });
    expect(s.generation).toEqual(idleGeneration);
    expect(s.error?.name).toBe('ModelError');
    // a load that succeeds leaves it for the store to send (runPending)
    expect(apply(s0, loadDone('load-1')).generation).toMatchObject({ status: 'running', pending: true });
  });

  it("keeps the load's banner when a run that waited for it hears NotReadyError", () => {
    const s0: StudioData = { ...loading(), generation: { ...idleGeneration, status: 'running', requestId: 'gen-1', queued: true } };
    const s = applyAll(s0, [
      { type: 'error', id: 'load-1', error: err('ModelError') },
      { type: 'error', id: 'gen-1', error: err('NotReadyError') },
    ]);
    expect(s.error?.name).toBe('ModelError');
    expect(s.generation.status).toBe('idle');
  });

  it('ignores events from other jobs', () => {
    const s = running();
    const stale: WorkerEvent[] = [
      denoise('gen-0', 5, 20, 1),
      imageEvent('gen-0', params),
      generateDone('gen-0', params),
      { type: 'error', id: 'gen-0', error: err('CancelledError') },
      // the answer to a cancel request: the store follows the target's own final event instead
      { type: 'done', id: 'cancel-0', result: { request: 'cancel', cancelled: true } },
      // a result whose kind does not match the job the id belongs to
      { ...(loadDone('x') as Extract<WorkerEvent, { type: 'done' }>), id: 'gen-1' },
      download('gen-1', 'a', 1, 1),
      { type: 'progress', stage: 'prepare', id: 'gen-1', message: 'x' },
    ];
    for (const e of stale) expect(applyEvent(s, e)).toEqual({});
  });
});

describe('applyEvent: worker crash', () => {
  it('unblocks a running generation with a banner', () => {
    const s = apply(running(), { type: 'error', id: WORKER_ID, error: err('WorkerError') });
    expect(s.error?.name).toBe('WorkerError');
    expect(s.generation.status).toBe('idle');
    expect(s.model.status).toBe('ready');
  });

  it('fails a load in progress', () => {
    const s = apply(loading(), { type: 'error', id: WORKER_ID, error: err('WorkerError') });
    expect(s.model.status).toBe('error');
    expect(selectAppState(s)).toBe('error');
  });
});

describe('selectors: size, strength and the init image', () => {
  const sizes: [number, number][] = [[4, 4], [8, 4]];
  const i2i: ModelInfo = { ...modelInfo, limits: { ...modelInfo.limits, sizes }, imageToImage: true, defaults: { ...modelInfo.defaults, strength: 0.75 } };
  const withModel = (info: ModelInfo, patch: Partial<StudioData> = {}): StudioData => ({ ...apply(loading(), loadDone('load-1', info)), ...patch });
  const image = (width: number, height: number) => ({ width, height, data: new Uint8ClampedArray(width * height * 4) });

  it("uses a size the model offers, else the model's default; before a load, the user's pick", () => {
    expect(selectSize(initialData())).toBeNull();
    expect(selectSize({ ...initialData(), size: [32, 32] })).toEqual([32, 32]);
    expect(selectSize(withModel(i2i))).toEqual([4, 4]);
    expect(selectSize(withModel(i2i, { size: [8, 4] }))).toEqual([8, 4]);
    expect(selectSize(withModel(i2i, { size: [32, 32] }))).toEqual([4, 4]);
  });

  it("takes the strength the user set, else the model's default, rounded to the slider's step", () => {
    expect(selectStrength(initialData())).toBeNull();
    expect(selectStrength(withModel(i2i))).toBe(0.75);
    expect(selectStrength(withModel(i2i, { strength: 0.3 }))).toBe(0.3);
    expect(selectStrength(withModel(i2i, { strength: 0.33 }))).toBe(0.35);
  });

  it('says why image-to-image is off, and only hands out an init image of the next size', () => {
    expect(selectImageToImageBlocker(initialData())).toBe('Available once the model has loaded.');
    expect(selectImageToImageBlocker(withModel(modelInfo))).toBe('WebDiT tiny has no VAE encoder, so it cannot start from an image.');
    expect(selectImageToImageBlocker(withModel(i2i))).toBeNull();
    const fits = { image: image(4, 4), source: 'a.png' };
    expect(selectInitImage(withModel(modelInfo, { initImage: fits }))).toBeNull();
    expect(selectInitImage(withModel(i2i, { initImage: fits }))).toBe(fits.image);
    expect(selectInitImage(withModel(i2i, { initImage: fits, size: [8, 4] }))).toBeNull();
  });
});
