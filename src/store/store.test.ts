import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connectEngine } from './connect';
import { backendFromSearch, MAX_SEED } from './params';
import { selectAppState, selectStatusText } from './selectors';
import { createStudioStore, resetStudio, studioStore } from './store';
import { FakeEngine, generateResult, loadDone } from './testUtils';

let engine: FakeEngine;
let disconnect: () => void;
const state = () => studioStore.getState();

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

/** Load the model and answer it, as the worker would. */
function ready(): void {
  state().loadModel('/models/webdit-tiny/manifest.json');
  engine.emit(loadDone(engine.lastId));
}

describe('setters', () => {
  it('clamps steps to integers in 1..50', () => {
    const cases: [number, number][] = [[0, 1], [-3, 1], [51, 50], [3.6, 4], [20, 20]];
    for (const [input, expected] of cases) {
      state().setNumInferenceSteps(input);
      expect(state().numInferenceSteps).toBe(expected);
    }
    state().setNumInferenceSteps(NaN);
    expect(state().numInferenceSteps).toBe(20);
  });

  it('rounds guidance to 0.5 in 1..12', () => {
    const cases: [number, number][] = [[0, 1], [13, 12], [4.3, 4.5], [4.2, 4], [7.5, 7.5]];
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

  it('remembers which settings the user changed, so model defaults leave them alone', () => {
    state().setNumInferenceSteps(10);
    ready();
    expect(state().numInferenceSteps).toBe(10);
    expect(state().guidanceScale).toBe(4.5); // the model's default
    expect(state().negativePrompt).toBe('blurry');
  });

  it('resets between cases', () => {
    expect(state().numInferenceSteps).toBe(20);
    expect(state().model.status).toBe('idle');
    expect(state().touched.numInferenceSteps).toBe(false);
  });
});

describe('loadModel', () => {
  it('asks the engine with the backend preference and goes through loading to ready', () => {
    state().loadModel('/m.json');
    expect(engine.calls).toEqual([{ type: 'load', modelUrl: '/m.json', backend: 'auto' }]);
    expect(selectAppState(state())).toBe('loading');
    engine.emit({ type: 'download', id: engine.lastId, file: 'transformer.onnx', loaded: 42, total: 100 });
    expect(selectStatusText(state())).toBe('Loading model… 42%');
    engine.emit(loadDone(engine.lastId));
    expect(selectAppState(state())).toBe('ready');
    expect(state().model.info?.id).toBe('webdit-tiny');
  });

  it('shows a banner when there is no engine', () => {
    disconnect();
    state().loadModel('/m.json');
    expect(state().error?.name).toBe('EngineMissingError');
  });
});

describe('generate', () => {
  it('refuses with a banner until the model is ready', () => {
    state().generate();
    expect(engine.calls).toEqual([]);
    expect(state().error?.name).toBe('NotReadyError');
    state().loadModel('/m.json');
    state().generate();
    expect(engine.calls.map((c) => c.type)).toEqual(['load']);
    engine.emit(loadDone(engine.lastId));
    expect(state().error).toBeNull(); // the refusal is obsolete now
  });

  it('sends the current settings, including an empty (unconditional) prompt', () => {
    ready();
    state().setSeed(99);
    state().setGuidanceScale(6);
    state().generate();
    expect(engine.calls[1]).toEqual({
      type: 'generate',
      params: { prompt: '', negativePrompt: 'blurry', numInferenceSteps: 24, guidanceScale: 6, seed: 99 },
    });
    expect(state().generation).toMatchObject({ status: 'running', requestId: engine.lastId, step: 0, total: 24 });
    expect(selectAppState(state())).toBe('running');
  });

  it('rolls a new seed first when "new seed each time" is on', () => {
    ready();
    state().setRandomizeSeed(true);
    const seeds = new Set<number>();
    for (let i = 0; i < 5; i++) {
      state().generate();
      const call = engine.calls[engine.calls.length - 1];
      if (call.type !== 'generate') throw new Error('expected a generate call');
      expect(call.params.seed).toBe(state().seed); // the field shows the seed that was used
      seeds.add(call.params.seed);
      engine.emit({ type: 'done', id: engine.lastId, result: generateResult(call.params) });
    }
    expect(seeds.size).toBeGreaterThan(1);
  });

  it('keeps the seed when "new seed each time" is off', () => {
    ready();
    state().setSeed(1234);
    state().generate();
    engine.emit({ type: 'done', id: engine.lastId, result: generateResult(generateCalls()[0]) });
    state().generate();
    expect(generateCalls().map((p) => p.seed)).toEqual([1234, 1234]);
  });

  it('refuses a second run while one is going', () => {
    ready();
    state().generate();
    const runId = engine.lastId;
    state().generate();
    expect(engine.calls.filter((c) => c.type === 'generate')).toHaveLength(1);
    expect(state().error?.name).toBe('BusyError');
    expect(state().generation.requestId).toBe(runId);
  });

  it('shows steps, then the image and timings', () => {
    ready();
    state().setNumInferenceSteps(20);
    state().generate();
    const id = engine.lastId;
    engine.emit({ type: 'step', id, step: 3, total: 20, msPerStep: 45 });
    expect(selectStatusText(state())).toBe('Generating 20 steps…');
    const call = engine.calls[1];
    if (call.type !== 'generate') throw new Error('expected a generate call');
    engine.emit({ type: 'done', id, result: generateResult(call.params) });
    expect(state().lastImage?.params).toEqual(call.params);
    expect(state().lastImage?.timings.totalMs).toBe(1234);
    expect(selectStatusText(state())).toBe('Done in 1.2 s');
    expect(selectAppState(state())).toBe('ready');
  });
});

describe('cancel', () => {
  it('cancels the running request and returns to idle without a banner', () => {
    ready();
    state().setNumInferenceSteps(20);
    state().generate();
    const runId = engine.lastId;
    engine.emit({ type: 'step', id: runId, step: 2, total: 20, msPerStep: 45 });
    state().cancel();
    expect(engine.calls[engine.calls.length - 1]).toEqual({ type: 'cancel', targetId: runId });
    expect(state().generation.status).toBe('cancelling');
    expect(selectAppState(state())).toBe('running');
    engine.emit({ type: 'done', id: engine.lastId, result: { request: 'cancel', cancelled: true } });
    engine.emit({ type: 'error', id: runId, error: { name: 'CancelledError', message: 'Cancelled', action: '' } });
    expect(state().error).toBeNull();
    expect(state().generation.status).toBe('idle');
    expect(selectStatusText(state())).toBe('Cancelled at step 2/20');
    expect(selectAppState(state())).toBe('ready');
    // And the next run works.
    state().generate();
    expect(state().generation.status).toBe('running');
  });

  it('does nothing when nothing runs, or twice', () => {
    ready();
    state().cancel();
    expect(engine.calls.map((c) => c.type)).toEqual(['load']);
    state().generate();
    state().cancel();
    state().cancel();
    expect(engine.calls.map((c) => c.type)).toEqual(['load', 'generate', 'cancel']);
  });
});

describe('errors', () => {
  it('shows engine errors with their action and dismisses them', () => {
    ready();
    state().generate();
    const error = { name: 'OutOfMemoryError', message: 'The GPU ran out of memory.', action: 'Switch to WASM.' };
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
    engine.emit({ type: 'error', id: engine.lastId, error: { name: 'X', message: 'x', action: 'y' } });
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

  it('updates the URL and reloads the model with the new backend', () => {
    const replaceState = stubBrowser('http://localhost:5173/studio/?prompt=x');
    ready();
    state().setBackendPreference('wasm');
    expect(state().backendPreference).toBe('wasm');
    expect(String(replaceState.mock.calls[0][2])).toBe('http://localhost:5173/studio/?prompt=x&backend=wasm');
    expect(engine.calls[engine.calls.length - 1]).toEqual({ type: 'load', modelUrl: '/models/webdit-tiny/manifest.json', backend: 'wasm' });
    expect(selectAppState(state())).toBe('loading');

    engine.emit(loadDone(engine.lastId));
    state().setBackendPreference('auto');
    expect(String(replaceState.mock.calls[1][2])).toBe('http://localhost:5173/studio/?prompt=x');
  });

  it('ignores events from the load it replaced', () => {
    ready();
    const firstLoad = engine.lastId;
    state().setBackendPreference('wasm');
    engine.emit({ type: 'error', id: firstLoad, error: { name: 'ModelError', message: 'old', action: '' } });
    engine.emit({ type: 'download', id: firstLoad, file: 'old.onnx', loaded: 1, total: 2 });
    expect(state().error).toBeNull();
    expect(state().model).toMatchObject({ status: 'loading', files: {} });
    engine.emit(loadDone(engine.lastId));
    expect(state().model.status).toBe('ready');
  });

  it('refuses to switch or reload while a load is in flight (the engine would say busy)', () => {
    state().loadModel('/m.json');
    const loadId = engine.lastId;
    state().setBackendPreference('wasm');
    state().loadModel('/m.json');
    expect(engine.calls.filter((c) => c.type === 'load')).toHaveLength(1);
    expect(state().backendPreference).toBe('auto');
    expect(state().error?.message).toBe('The model is still loading.');
    expect(state().model.requestId).toBe(loadId);
  });

  it('refuses to switch during a run and ignores unknown values', () => {
    ready();
    state().generate();
    state().setBackendPreference('wasm');
    expect(state().backendPreference).toBe('auto');
    expect(state().error?.name).toBe('BusyError');
    state().setBackendPreference('cuda' as never);
    expect(state().backendPreference).toBe('auto');
  });
});

describe('connectEngine', () => {
  it('stops applying events after disconnecting', () => {
    state().loadModel('/m.json');
    const id = engine.lastId;
    disconnect();
    engine.emit(loadDone(id));
    expect(state().model.status).toBe('loading');
  });
});
