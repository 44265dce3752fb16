/**
 * Retry in place: the banner's buttons for each kind of error, what each button does to the store
 * and the engine, the status line agreeing with the banner, and an engine restart followed by the
 * store (the model loads again under the supervisor's id; the form and the images stay).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EngineErrorInfo, WorkerEvent } from '../engine/protocol';
import { connectEngine } from './connect';
import { EMBEDDED_MODEL_URL, fixesFor, fixLabel, formatMB, otherBackend, storageNotice } from './fixes';
import { selectAppState, selectStatusText } from './selectors';
import { initialData, type StudioData } from './state';
import { resetStudio, studioStore } from './store';
import { FakeEngine, loadDone, readyData } from './testUtils';

const state = () => studioStore.getState();
const OTHER_MODEL = 'http://localhost:9/owner/big/resolve/main/';

function failedLoad(url: string | null = EMBEDDED_MODEL_URL): StudioData {
  const s = initialData();
  return { ...s, model: { ...s.model, status: 'error', requestId: 'load-1', url, loadingBackend: { backend: 'webgpu', threads: 2 } } };
}

const e = (name: EngineErrorInfo['name'], fix?: EngineErrorInfo['fix'], message = `${name} happened`): EngineErrorInfo => ({ name, message, action: 'Do this.', ...(fix && { fix }) });

describe('fixesFor: the buttons each error offers', () => {
  it.each([
    ['a download that broke off', e('DownloadError', 'retry-load'), failedLoad(), ['retry-load']],
    ['a file larger than its manifest', e('ModelError', 'retry-load'), failedLoad(), ['retry-load']],
    ['a manifest size of 2^40 on a big model', e('ModelError', 'smaller-model'), failedLoad(OTHER_MODEL), ['smaller-model', 'retry-load']],
    ['a manifest size of 2^40 on the built-in model (smaller is not offered)', e('ModelError', 'smaller-model'), failedLoad(), ['retry-load']],
    ['storage full, a big model', e('StorageFullError', 'free-storage'), failedLoad(OTHER_MODEL), ['free-storage', 'smaller-model']],
    ['WebGPU forced where there is none', e('BackendUnavailableError', 'switch-backend'), failedLoad(), ['switch-backend']],
    ['a run interrupted by a hung worker', e('WorkerError', 'run-again'), readyData(), ['run-again']],
    ['a worker that could not start', e('WorkerError', 'restart-engine'), failedLoad(), ['restart-engine']],
    ['a worker error without a fix', e('WorkerError'), readyData(), ['restart-engine']],
    ['a lost GPU device', e('DeviceLostError', 'run-again'), readyData(), ['run-again', 'switch-backend']],
    ['a stray error in a run', e('RuntimeError', 'run-again'), readyData(), ['run-again', 'switch-backend']],
    ['a prompt over the limit (the text says what to change)', e('BadRequestError'), readyData(), []],
    ['not loaded yet', e('NotReadyError'), readyData(), []],
  ] as const)('%s', (_what, error, s, fixes) => {
    expect(fixesFor(error, s)).toEqual(fixes);
  });

  it('labels say what the button does', () => {
    const s = failedLoad();
    expect(fixLabel('retry-load', e('DownloadError'), s)).toBe('Retry download');
    expect(fixLabel('retry-load', e('ModelError', 'retry-load', 'Model file x is corrupted'), s)).toBe('Retry');
    expect(fixLabel('switch-backend', e('BackendUnavailableError'), s)).toBe('Use WASM'); // WebGPU was tried
    expect(fixLabel('switch-backend', e('RuntimeError'), readyData())).toBe('Use WebGPU'); // WASM ran
    expect(fixLabel('free-storage', e('StorageFullError'), s)).toBe('Delete cached models');
    expect(fixLabel('smaller-model', e('ModelError'), s)).toBe('Load the small built-in model');
    expect(fixLabel('run-again', e('WorkerError'), s)).toBe('Run again');
    expect(fixLabel('restart-engine', e('WorkerError'), s)).toBe('Restart engine');
  });

  it('otherBackend goes away from the backend that was tried or ran', () => {
    const s = initialData();
    expect(otherBackend({ ...s, backendPreference: 'webgpu' })).toBe('wasm');
    expect(otherBackend({ ...s, backendPreference: 'wasm' })).toBe('webgpu');
    expect(otherBackend(s)).toBe('wasm'); // auto, nothing known yet
  });
});

describe('the status line agrees with the banner (fault table 2g)', () => {
  it('says the error instead of "Ready" while a banner stands', () => {
    const s = { ...readyData(), error: e('BadRequestError', undefined, '"prompt" has 12000 characters; the limit is 10000.') };
    expect(selectStatusText(s)).toBe('Error: "prompt" has 12000 characters; the limit is 10000.');
    expect(selectAppState(s)).toBe('error');
    expect(selectStatusText({ ...s, error: null })).toBe('Ready');
  });

  it('a failed load says why', () => {
    expect(selectStatusText({ ...failedLoad(), error: e('DownloadError', 'retry-load', 'Could not download a.onnx.') })).toBe('The model could not be loaded: Could not download a.onnx.');
  });
});

describe('storage that refuses the model files (fault table 5c)', () => {
  it('names what it costs: every visit downloads the model again', () => {
    const s = readyData();
    expect(storageNotice(s)).toBeNull();
    expect(storageNotice({ ...s, model: { ...s.model, storage: { kept: true, bytes: 27_512_345 } } })).toBeNull();
    expect(storageNotice({ ...s, model: { ...s.model, storage: { kept: false, bytes: 27_512_345, reason: 'QuotaExceededError: quota' } } })).toBe(
      'This browser is not keeping model files (QuotaExceededError: quota): every visit downloads 27.5 MB again. The model runs from memory for now.',
    );
    expect(formatMB(1_234_567)).toBe('1.23 MB');
  });
});

describe('the buttons, on the store and a fake engine', () => {
  let engine: FakeEngine & { restart: () => void; restarts: number };
  let disconnect: () => void;

  beforeEach(() => {
    resetStudio();
    engine = Object.assign(new FakeEngine(), {
      restarts: 0,
      restart() {
        engine.restarts++;
      },
    });
    disconnect = connectEngine(studioStore, engine);
  });
  afterEach(() => disconnect());

  const loadFails = (error: EngineErrorInfo) => {
    state().loadModel(EMBEDDED_MODEL_URL);
    engine.emit({ type: 'error', id: engine.lastId, error });
  };

  it('Retry download loads the same folder again, and the banner goes', () => {
    loadFails(e('DownloadError', 'retry-load'));
    expect(state().error?.name).toBe('DownloadError');
    state().applyFix('retry-load');
    expect(engine.calls.at(-1)).toEqual({ type: 'load', modelUrl: EMBEDDED_MODEL_URL, backend: 'auto' });
    expect(state().error).toBeNull();
    expect(state().model.status).toBe('loading');
  });

  it('Use WASM switches the backend and loads again', () => {
    state().setBackendPreference('webgpu');
    loadFails(e('BackendUnavailableError', 'switch-backend'));
    state().applyFix('switch-backend');
    expect(state().backendPreference).toBe('wasm');
    expect(engine.calls.at(-1)).toMatchObject({ type: 'load', backend: 'wasm' });
  });

  it('Load the small built-in model loads the embedded folder', () => {
    state().loadModel(OTHER_MODEL);
    engine.emit({ type: 'error', id: engine.lastId, error: e('StorageFullError', 'free-storage') });
    state().applyFix('smaller-model');
    expect(engine.calls.at(-1)).toMatchObject({ type: 'load', modelUrl: EMBEDDED_MODEL_URL });
  });

  it('Delete cached models empties the webdit-models caches (nothing else) and loads again', async () => {
    const deleted: string[] = [];
    vi.stubGlobal('caches', { keys: async () => ['webdit-models-v2', 'webdit-models-v1', 'webdit-shell-3'], delete: async (n: string) => (deleted.push(n), true) });
    state().loadModel(OTHER_MODEL);
    engine.emit({ type: 'error', id: engine.lastId, error: e('StorageFullError', 'free-storage') });
    const before = engine.calls.length;
    state().applyFix('free-storage');
    await vi.waitFor(() => expect(engine.calls.length).toBe(before + 1));
    expect(engine.calls.at(-1)).toMatchObject({ type: 'load', modelUrl: OTHER_MODEL });
    expect(deleted).toEqual(['webdit-models-v2', 'webdit-models-v1']);
    vi.unstubAllGlobals();
  });

  it('Run again sends the form again; Restart engine asks the engine', () => {
    state().loadModel(EMBEDDED_MODEL_URL);
    engine.emit(loadDone(engine.lastId));
    state().setPrompt('a red heart');
    state().generate();
    const first = engine.lastId;
    engine.emit({ type: 'error', id: first, error: e('WorkerError', 'run-again') });
    state().applyFix('run-again');
    expect(engine.lastId).not.toBe(first);
    expect(engine.paramsOf(engine.lastId)).toMatchObject({ prompt: 'a red heart', seed: 42 });
    state().applyFix('restart-engine');
    expect(engine.restarts).toBe(1);
  });

  it('a restarted engine: the interrupted run fails with Run again, the model loads again under the new id, the form and images stay', () => {
    state().loadModel(EMBEDDED_MODEL_URL);
    engine.emit(loadDone(engine.lastId));
    state().setPrompt('a red heart');
    state().generate();
    const gen = engine.lastId;
    engine.emit({ type: 'progress', stage: 'denoise', id: gen, step: 2, total: 20, msPerStep: 40 });
    const interrupted = e('WorkerError', 'run-again', 'The engine stopped while this image was being made: it did not answer for 11 s.');
    engine.emit({ type: 'error', id: gen, error: interrupted });
    const restarting: WorkerEvent = { type: 'engine', id: 'worker', state: 'restarting', reason: 'it did not answer for 11 s', loadId: 'load-restart' };
    engine.emit(restarting);
    expect(state().generation.status).toBe('idle');
    expect(state().error).toEqual(interrupted);
    expect(state().model).toMatchObject({ status: 'loading', requestId: 'load-restart', message: 'Restarting the engine: it did not answer for 11 s' });
    expect(selectStatusText(state())).toBe('Loading model… Restarting the engine: it did not answer for 11 s');
    expect(state().prompt).toBe('a red heart');
    // Run again while it reloads waits for the model, then goes out
    state().applyFix('run-again');
    expect(state().generation.pending).toBe(true);
    engine.emit(loadDone('load-restart'));
    expect(state().model.status).toBe('ready');
    expect(engine.calls.at(-1)).toMatchObject({ type: 'generate', params: { prompt: 'a red heart' } });
  });

  it('the other engine events change nothing', () => {
    const before = state();
    for (const ev of [
      { type: 'engine', id: 'worker', state: 'started' },
      { type: 'engine', id: 'worker', state: 'fault', message: 'x' },
      { type: 'engine', id: 'worker', state: 'device-lost', message: 'x' },
      { type: 'engine', id: 'worker', state: 'restarting', reason: 'x', loadId: null },
    ] as WorkerEvent[])
      engine.emit(ev);
    expect(state().model).toEqual(before.model);
    expect(state().error).toBeNull();
  });
});
