import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EngineErrorInfo, WorkerEvent } from '../engine/protocol';
import { GENERATE_FIELDS } from '../engine/schema';
import { connectEngine } from './connect';
import { backendFromSearch, MAX_SEED, PREVIEW_EVERY } from './params';
import { selectAppState, selectCanGenerate, selectNumInferenceSteps, selectShownImage, selectStatusText, WAITING_FOR_MODEL } from './selectors';
import { idleGeneration } from './state';
import { createStudioStore, resetStudio, studioStore } from './store';
import { FakeEngine, loadDone, modelInfo } from './testUtils';

let engine: FakeEngine;
let disconnect: () => void;
const state = () => studioStore.getState();
const MODEL_URL = '/models/webdit-tiny/';

beforeEach(() => {
  resetStudio();
  engine = new FakeEngine();
  disconnect = connectEngine(studioStore, engine);
});

afterEach(() => {
  disconnect();
  vi.unstubAllGlobals();
});

const generateCalls = () => engine.calls.flatMap((c) => (c.type === 'generate' ? [c.params] : []));
const callTypes = () => engine.calls.map((c) => c.type);
const denoise = (id: string, step: number, total: number): WorkerEvent => ({ type: 'progress', stage: 'denoise', id, step, total, msPerStep: 45 });
const cancelled: EngineErrorInfo = { name: 'CancelledError', message: 'Generation was cancelled.', action: '' };

/** Load the model and answer it, as the worker would. */
function ready(): void {
  state().loadModel(MODEL_URL);
  engine.emit(loadDone(engine.lastId));
}

describe('setters', () => {
  it("clamps steps to integers in the schema's range before a model is loaded", () => {
    const { min, max } = GENERATE_FIELDS.numInferenceSteps;
    const cases: [number, number][] = [[0, min], [-3, min], [max + 1, max], [3.6, 4], [20, 20]];
    for (const [input, expected] of cases) {
      state().setNumInferenceSteps(input);
      expect(state().numInferenceSteps).toBe(expected);
    }
    state().setNumInferenceSteps(NaN);
    expect(state().numInferenceSteps).toBe(20);
  });

  it("clamps to the loaded model's limits", () => {
    ready();
    state().setNumInferenceSteps(45);
    expect(state().numInferenceSteps).toBe(modelInfo.limits.numInferenceSteps.max);
    state().setGuidanceScale(13);
    expect(state().guidanceScale).toBe(modelInfo.limits.guidanceScale.max);
    state().setNumImagesPerPrompt(9);
    expect(state().numImagesPerPrompt).toBe(modelInfo.limits.numImagesPerPrompt.max);
    state().setNumImagesPerPrompt(0);
    expect(state().numImagesPerPrompt).toBe(1);
  });

  it('rounds guidance to the slider step', () => {
    const cases: [number, number][] = [[0, 1], [4.3, 4.5], [4.2, 4], [7.5, 7.5]];
    for (const [input, expected] of cases) {
      state().setGuidanceScale(input);
      expect(state().guidanceScale).toBe(expected);
    }
    state().setGuidanceScale(Number('abc'));
    expect(state().guidanceScale).toBe(7.5);
  });

  it('keeps seeds a uint32', () => {
    const cases: [number, number][] = [[-5, 0], [2 ** 32, MAX_SEED], [12.9, 12], [MAX_SEED, 4294967295]];
    for (const [input, expected] of cases) {
      state().setSeed(input);
      expect(state().seed).toBe(expected);
    }
    state().setSeed(NaN);
    expect(state().seed).toBe(MAX_SEED);
  });

  it('rolls random seeds in range', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      state().rollSeed();
      const { seed } = state();
      expect(Number.isInteger(seed) && seed >= 0 && seed <= MAX_SEED).toBe(true);
      seen.add(seed);
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('keeps what the user chose over the model defaults, and the rest follows the model', () => {
    state().setNumInferenceSteps(10);
    ready();
    expect(selectNumInferenceSteps(state())).toBe(10);
    expect(state().guidanceScale).toBeNull(); // the model's default applies
    state().generate();
    expect(generateCalls()[0]).toMatchObject({ numInferenceSteps: 10, guidanceScale: 4.5, negativePrompt: 'blurry' });
  });

  it('resets between cases', () => {
    expect(state().numInferenceSteps).toBeNull();
    expect(state().model.status).toBe('idle');
    expect(state().images).toEqual([]);
    expect(selectAppState(state())).toBe('starting');
  });
});

describe('image-to-image', () => {
  const i2i = { ...modelInfo, imageToImage: true };
  const init = (w = 4, h = 4) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4).fill(9) });

  it('rounds strength to the slider step within 0..1 and ignores NaN', () => {
    const cases: [number, number][] = [[0.33, 0.35], [-1, 0], [2, 1], [0.3, 0.3], [0.05, 0.05]];
    for (const [input, expected] of cases) {
      state().setStrength(input);
      expect(state().strength).toBe(expected);
    }
    state().setStrength(NaN);
    expect(state().strength).toBe(0.05);
  });

  it('sends the init image with the strength, and none once it is removed', () => {
    state().loadModel(MODEL_URL);
    engine.emit(loadDone(engine.lastId, i2i));
    const image = init();
    state().setInitImage(image, 'a.png');
    state().generate();
    expect(generateCalls()[0]).toMatchObject({ image, strength: modelInfo.defaults.strength, width: 4, height: 4 });
    engine.finish();
    state().setStrength(0.3);
    state().generate();
    expect(generateCalls()[1]).toMatchObject({ image, strength: 0.3 });
    engine.finish();
    state().clearInitImage();
    state().generate();
    expect(generateCalls()[2]).not.toHaveProperty('image');
    expect(generateCalls()[2]).not.toHaveProperty('strength');
  });

  it("never sends an init image to a model that cannot use it, nor one of the wrong size or byte count", () => {
    ready(); // imageToImage: false
    state().setInitImage(init(), 'a.png');
    state().generate();
    expect(generateCalls()[0]).not.toHaveProperty('image');
    state().setInitImage({ width: 4, height: 4, data: new Uint8ClampedArray(3) }, 'broken');
    expect(state().initImage?.source).toBe('a.png');
    engine.finish();
    state().loadModel(MODEL_URL);
    engine.emit(loadDone(engine.lastId, i2i));
    state().setInitImage(init(8, 8), 'big.png');
    state().generate();
    expect(generateCalls()[1]).not.toHaveProperty('image');
  });
});

describe('size', () => {
  it("keeps integers in the schema's range before a load, and only sizes the model offers after", () => {
    state().setSize(32.4, 100_000);
    expect(state().size).toEqual([32, GENERATE_FIELDS.height.max]);
    state().setSize(NaN, 4);
    expect(state().size).toEqual([32, GENERATE_FIELDS.height.max]);
    ready();
    state().setSize(8, 8);
    expect(state().size).toEqual([32, GENERATE_FIELDS.height.max]);
    state().setSize(4, 4);
    expect(state().size).toEqual([4, 4]);
  });
});

describe('applyForm', () => {
  it('clamps restored and linked values exactly like typed ones', () => {
    state().applyForm({
      prompt: 'x'.repeat(GENERATE_FIELDS.prompt.maxLength + 5),
      negativePrompt: 'dark',
      numInferenceSteps: 999,
      guidanceScale: 4.3,
      seed: -5,
      randomizeSeed: true,
      numImagesPerPrompt: 0,
      livePreview: false,
      strength: 0.42,
      size: [64, 64],
    });
    expect(state()).toMatchObject({
      negativePrompt: 'dark',
      numInferenceSteps: GENERATE_FIELDS.numInferenceSteps.max,
      guidanceScale: 4.5,
      seed: 0,
      randomizeSeed: true,
      numImagesPerPrompt: 1,
      livePreview: false,
      strength: 0.4,
      size: [64, 64],
    });
    expect(state().prompt).toHaveLength(GENERATE_FIELDS.prompt.maxLength);
  });

  it('leaves out what it is not given, and NaN', () => {
    state().setSeed(7);
    state().applyForm({ prompt: 'a cat', numInferenceSteps: NaN });
    expect(state()).toMatchObject({ prompt: 'a cat', seed: 7, numInferenceSteps: null });
  });

  it('switches the backend only when it differs (the same one would load the model again)', () => {
    vi.stubGlobal('location', new URL('http://localhost:5173/'));
    vi.stubGlobal('history', { state: null, replaceState: vi.fn() });
    ready();
    state().applyForm({ backendPreference: 'auto' });
    expect(callTypes()).toEqual(['load']);
    state().applyForm({ backendPreference: 'wasm' });
    expect(engine.calls.at(-1)).toEqual({ type: 'load', modelUrl: MODEL_URL, backend: 'wasm' });
  });
});

describe('loadModel', () => {
  it('asks the engine with the backend preference and goes through loading to ready', () => {
    state().loadModel(MODEL_URL);
    expect(engine.calls).toEqual([{ type: 'load', modelUrl: MODEL_URL, backend: 'auto' }]);
    expect(state().model.requestId).toBe(engine.lastId);
    expect(selectAppState(state())).toBe('loading');
    engine.emit({ type: 'progress', stage: 'download', id: engine.lastId, file: 'transformer/model.onnx', loaded: 42, total: 100 });
    expect(selectStatusText(state())).toBe('Loading model… downloading transformer/model.onnx, 42% of 100 B');
    engine.emit(loadDone(engine.lastId));
    expect(selectAppState(state())).toBe('ready');
    expect(state().model.info?.id).toBe('webdit-tiny');
  });

  it('cancels a load in flight before loading again; the old model stays until the new one loads', async () => {
    ready();
    state().loadModel(MODEL_URL);
    const second = engine.lastId;
    state().loadModel(MODEL_URL);
    expect(engine.calls.slice(1)).toEqual([
      { type: 'load', modelUrl: MODEL_URL, backend: 'auto' },
      { type: 'cancel', targetId: second },
      { type: 'load', modelUrl: MODEL_URL, backend: 'auto' },
    ]);
    expect(state().model).toMatchObject({ status: 'loading', requestId: engine.lastId, info: modelInfo });
    expect(selectCanGenerate(state())).toBe(true);
    engine.emit({ type: 'error', id: second, error: { name: 'CancelledError', message: 'Loading the model was cancelled.', action: '' } });
    expect(state().error).toBeNull();
    await Promise.resolve();
    expect(state().error).toBeNull();
  });

  it('shows a banner when there is no engine', () => {
    disconnect();
    state().loadModel(MODEL_URL);
    expect(state().error?.name).toBe('EngineMissingError');
  });

  it('marks the model failed when the engine could not start', () => {
    disconnect();
    state().engineUnavailable({ name: 'EngineMissingError', message: 'No workers.', action: 'Use a newer browser.' });
    expect(state().model.status).toBe('error');
    expect(selectAppState(state())).toBe('error');
    expect(state().error?.message).toBe('No workers.');
  });
});

describe('generate', () => {
  it("waits in the store while the model loads, then goes out resolved against that model's limits", () => {
    state().loadModel(MODEL_URL);
    const loadId = engine.lastId;
    expect(selectCanGenerate(state())).toBe(true);
    // before the load, only the schema's range is known: 15 is a valid guidance there, not for this model
    state().setGuidanceScale(15);
    state().generate();
    expect(callTypes()).toEqual(['load']);
    expect(state().generation).toMatchObject({ status: 'running', pending: true, requestId: null });
    expect(selectStatusText(state())).toBe(WAITING_FOR_MODEL);
    expect(selectAppState(state())).toBe('running');
    expect(selectCanGenerate(state())).toBe(false);
    engine.emit({ type: 'progress', stage: 'download', id: loadId, file: 'a.onnx', loaded: 1, total: 2 });
    expect(callTypes()).toEqual(['load']);
    engine.emit(loadDone(loadId));
    expect(callTypes()).toEqual(['load', 'generate']);
    expect(generateCalls()[0]).toEqual({
      prompt: '',
      negativePrompt: 'blurry',
      numInferenceSteps: 24,
      guidanceScale: modelInfo.limits.guidanceScale.max,
      seed: 42,
      numImagesPerPrompt: 1,
      width: 4,
      height: 4,
      previewEvery: PREVIEW_EVERY,
    });
    const runId = engine.lastId;
    expect(state().generation).toMatchObject({ status: 'running', pending: false, requestId: runId, total: 24 });
    engine.emit(denoise(runId, 1, 24));
    expect(selectStatusText(state())).toBe('Generating 24 steps…');
    engine.finish(runId);
    expect(selectShownImage(state())?.params.numInferenceSteps).toBe(24);
    expect(selectAppState(state())).toBe('ready');
  });

  it('cancels a run that waits for the model without asking the engine; the load goes on', () => {
    state().loadModel(MODEL_URL);
    const loadId = engine.lastId;
    state().generate();
    state().cancel();
    expect(callTypes()).toEqual(['load']);
    expect(state().generation).toEqual(idleGeneration);
    engine.emit(loadDone(loadId));
    expect(callTypes()).toEqual(['load']);
    expect(selectAppState(state())).toBe('ready');
  });

  it('drops a waiting run when the load fails, with the load\'s banner', () => {
    state().loadModel(MODEL_URL);
    state().generate();
    engine.emit({ type: 'error', id: engine.lastId, error: { name: 'ModelError', message: 'Broken manifest.', action: 'Re-export.' } });
    expect(state().generation).toEqual(idleGeneration);
    expect(state().error?.name).toBe('ModelError');
    expect(callTypes()).toEqual(['load']);
  });

  it('leaves NotReadyError to the engine, and the banner goes once a model loads', () => {
    state().generate();
    expect(callTypes()).toEqual(['generate']);
    engine.emit({ type: 'error', id: engine.lastId, error: { name: 'NotReadyError', message: 'No model is loaded yet.', action: 'Wait.' } });
    expect(state().error?.name).toBe('NotReadyError');
    expect(state().generation.status).toBe('idle');
    ready();
    expect(state().error).toBeNull();
  });

  it('sends the current settings, including an empty (unconditional) prompt', () => {
    ready();
    state().setSeed(99);
    state().setGuidanceScale(6);
    state().setNumImagesPerPrompt(3);
    state().generate();
    expect(engine.calls[1]).toEqual({
      type: 'generate',
      params: { prompt: '', negativePrompt: 'blurry', numInferenceSteps: 24, guidanceScale: 6, seed: 99, numImagesPerPrompt: 3, width: 4, height: 4, previewEvery: PREVIEW_EVERY },
    });
    expect(state().generation).toMatchObject({ status: 'running', requestId: engine.lastId, step: 0, total: 24 });
    expect(selectAppState(state())).toBe('running');
  });

  it('asks for previews only when on and the run is long enough to need them', () => {
    ready();
    state().setNumInferenceSteps(9);
    state().generate();
    engine.finish();
    state().setNumInferenceSteps(10);
    state().generate();
    engine.finish();
    state().setLivePreview(false);
    state().generate();
    engine.finish();
    expect(generateCalls().map((p) => p.previewEvery)).toEqual([0, PREVIEW_EVERY, 0]);
  });

  it('rolls a new seed first when "new seed each time" is on', () => {
    ready();
    state().setRandomizeSeed(true);
    const seeds = new Set<number>();
    for (let i = 0; i < 5; i++) {
      state().generate();
      const { seed } = generateCalls()[i];
      expect(seed).toBe(state().seed); // the field shows the seed that was used
      seeds.add(seed!);
      engine.finish();
    }
    expect(seeds.size).toBeGreaterThan(1);
  });

  it('keeps the seed when "new seed each time" is off', () => {
    ready();
    state().setSeed(1234);
    state().generate();
    engine.finish();
    state().generate();
    expect(generateCalls().map((p) => p.seed)).toEqual([1234, 1234]);
  });

  it('follows one run at a time: a second call while one runs sends nothing and raises no banner', () => {
    ready();
    state().generate();
    const runId = engine.lastId;
    expect(selectCanGenerate(state())).toBe(false);
    state().generate();
    expect(generateCalls()).toHaveLength(1);
    expect(state().error).toBeNull();
    expect(state().generation.requestId).toBe(runId);
  });

  it('shows steps, a preview, then the batch with each image its own seed', () => {
    ready();
    state().setNumInferenceSteps(20);
    state().setSeed(500);
    state().setNumImagesPerPrompt(2);
    state().generate();
    const id = engine.lastId;
    engine.emit(denoise(id, 5, 20));
    const preview = { width: 4, height: 4, pixels: new Uint8ClampedArray(64) };
    engine.emit({ type: 'preview', id, step: 5, total: 20, index: 0, image: preview });
    expect(state().preview).toBe(preview);
    expect(selectStatusText(state())).toBe('Generating 20 steps…');
    engine.finish(id);
    expect(state().preview).toBeNull();
    expect(state().images.map((r) => [r.index, r.params.seed])).toEqual([[0, 500], [1, 501]]);
    expect(selectShownImage(state())?.params.seed).toBe(500);
    state().showImage(id, 1);
    expect(selectShownImage(state())?.params.seed).toBe(501);
    expect(selectStatusText(state())).toBe('Done in 1.2 s');
    expect(selectAppState(state())).toBe('ready');
  });
});

describe('cancel', () => {
  it('cancels the running job and returns to idle without a banner', () => {
    ready();
    state().setNumInferenceSteps(20);
    state().generate();
    const runId = engine.lastId;
    engine.emit(denoise(runId, 2, 20));
    state().cancel();
    expect(engine.calls.at(-1)).toEqual({ type: 'cancel', targetId: runId });
    expect(state().generation.status).toBe('cancelling');
    expect(selectAppState(state())).toBe('running');
    engine.emit({ type: 'error', id: runId, error: cancelled });
    expect(state().error).toBeNull();
    expect(state().generation.status).toBe('idle');
    expect(selectStatusText(state())).toBe('Cancelled at step 2/20');
    expect(selectAppState(state())).toBe('ready');
    // And the next run works.
    state().generate();
    expect(state().generation.status).toBe('running');
  });

  it('shows a failed cancel as a banner and keeps following the run', async () => {
    ready();
    state().generate();
    const runId = engine.lastId;
    engine.cancelOutcome = () => Promise.reject(Object.assign(new Error('gone'), { info: { name: 'WorkerError', message: 'The engine worker has stopped.', action: 'Reload.' } }));
    state().cancel();
    await vi.waitFor(() => expect(state().error?.name).toBe('WorkerError'));
    expect(state().generation).toMatchObject({ status: 'running', requestId: runId });
  });

  it('does nothing when nothing runs, or twice', () => {
    ready();
    state().cancel();
    expect(callTypes()).toEqual(['load']);
    state().generate();
    state().cancel();
    state().cancel();
    expect(callTypes()).toEqual(['load', 'generate', 'cancel']);
  });
});

describe('errors', () => {
  it('shows engine errors with their action and dismisses them', () => {
    ready();
    state().generate();
    const error: EngineErrorInfo = { name: 'RuntimeError', message: 'The GPU ran out of memory.', action: 'Switch to WASM.' };
    engine.emit({ type: 'error', id: engine.lastId, error });
    expect(state().error).toEqual(error);
    expect(selectAppState(state())).toBe('error');
    state().dismissError();
    expect(state().error).toBeNull();
    expect(selectAppState(state())).toBe('ready');
  });

  it('clears the banner when a new run starts', () => {
    ready();
    state().generate();
    engine.emit({ type: 'error', id: engine.lastId, error: { name: 'RuntimeError', message: 'x', action: 'y' } });
    state().generate();
    expect(state().error).toBeNull();
  });
});

describe('backend preference', () => {
  function stubBrowser(href: string) {
    const replaceState = vi.fn();
    vi.stubGlobal('location', new URL(href));
    vi.stubGlobal('history', { state: null, replaceState });
    return replaceState;
  }

  it('reads a valid ?backend= only', () => {
    expect(backendFromSearch('?backend=wasm')).toBe('wasm');
    expect(backendFromSearch('?x=1&backend=webgpu')).toBe('webgpu');
    expect(backendFromSearch('?backend=cuda')).toBe('auto');
    expect(backendFromSearch('')).toBe('auto');
    stubBrowser('http://localhost:5173/?backend=wasm');
    expect(createStudioStore().getState().backendPreference).toBe('wasm');
  });

  it('updates the URL and loads the model folder again with the new backend', () => {
    const replaceState = stubBrowser('http://localhost:5173/studio/?prompt=x');
    ready();
    state().setBackendPreference('wasm');
    expect(state().backendPreference).toBe('wasm');
    expect(String(replaceState.mock.calls[0][2])).toBe('http://localhost:5173/studio/?prompt=x&backend=wasm');
    expect(engine.calls.at(-1)).toEqual({ type: 'load', modelUrl: MODEL_URL, backend: 'wasm' });
    expect(selectAppState(state())).toBe('loading');

    engine.emit(loadDone(engine.lastId));
    state().setBackendPreference('auto');
    expect(String(replaceState.mock.calls[1][2])).toBe('http://localhost:5173/studio/?prompt=x');
  });

  it('switching while loading cancels that load and loads again; its late events are ignored', () => {
    state().loadModel(MODEL_URL);
    const firstLoad = engine.lastId;
    state().setBackendPreference('wasm');
    expect(engine.calls).toEqual([
      { type: 'load', modelUrl: MODEL_URL, backend: 'auto' },
      { type: 'cancel', targetId: firstLoad },
      { type: 'load', modelUrl: MODEL_URL, backend: 'wasm' },
    ]);
    expect(state().backendPreference).toBe('wasm');
    engine.emit({ type: 'progress', stage: 'download', id: firstLoad, file: 'old.onnx', loaded: 1, total: 2 });
    engine.emit({ type: 'error', id: firstLoad, error: { name: 'CancelledError', message: 'Loading the model was cancelled.', action: '' } });
    expect(state().error).toBeNull();
    expect(state().model).toMatchObject({ status: 'loading', files: {} });
    engine.emit(loadDone(engine.lastId));
    expect(state().model.status).toBe('ready');
  });

  it('ignores unknown values', () => {
    ready();
    state().setBackendPreference('cuda' as never);
    expect(state().backendPreference).toBe('auto');
    expect(callTypes()).toEqual(['load']);
  });
});

describe('connectEngine', () => {
  it('stops applying events after disconnecting', () => {
    state().loadModel(MODEL_URL);
    const id = engine.lastId;
    disconnect();
    engine.emit(loadDone(id));
    expect(state().model.status).toBe('loading');
  });
});
