import { useStore } from 'zustand';
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { EngineClient } from '../engine/client';
import type { BackendPreference, EngineErrorInfo, GenerateParams } from '../engine/protocol';
import { NOT_READY_ERROR } from './reducer';
import { backendFromSearch, clampGuidance, clampSeed, clampSteps, isBackendPreference, randomSeed } from './params';
import { idleGeneration, initialData, type StudioData } from './state';

/** What the store needs from the engine; tests pass a fake that records calls. */
export type EnginePort = Pick<EngineClient, 'load' | 'generate' | 'cancel'>;

export interface StudioActions {
  /** Routes requests to this engine (connectEngine does it; null detaches). */
  attachEngine(engine: EnginePort | null): void;
  setPrompt(prompt: string): void;
  setNegativePrompt(negativePrompt: string): void;
  /** Rounded and clamped to 1..50; NaN is ignored. */
  setNumInferenceSteps(steps: number): void;
  /** Rounded to 0.5 and clamped to 1..12; NaN is ignored. */
  setGuidanceScale(scale: number): void;
  /** Truncated and clamped to a uint32; NaN is ignored. */
  setSeed(seed: number): void;
  setRandomizeSeed(on: boolean): void;
  rollSeed(): void;
  /** Loads a model manifest with the current backend preference. */
  loadModel(modelUrl: string): void;
  generate(): void;
  cancel(): void;
  /** Remembers the choice in `?backend=` and reloads the model with it. */
  setBackendPreference(preference: BackendPreference): void;
  /** Shows a banner for a failure outside the engine (a download that could not be saved). */
  reportError(error: EngineErrorInfo): void;
  dismissError(): void;
}

export type StudioState = StudioData & StudioActions;
export type StudioStore = StoreApi<StudioState>;

const errors = {
  noEngine: {
    name: 'EngineMissingError',
    message: 'The image engine has not started.',
    action: 'Reload the page. If this keeps happening, use a recent Chrome, Edge or Firefox (module Web Workers are needed).',
  },
  notReady: (modelFailed: boolean): EngineErrorInfo => ({
    name: NOT_READY_ERROR,
    message: 'The model is not loaded yet.',
    action: modelFailed
      ? 'Loading failed: pick another backend in the header to try again, or reload the page.'
      : 'Wait for the download to finish, then press Generate.',
  }),
  busy: {
    name: 'BusyError',
    message: 'An image is still being generated.',
    action: 'Wait for it to finish, or press Cancel (Esc) first.',
  },
  // The engine runs one load at a time and would answer a second with BusyError.
  stillLoading: {
    name: 'BusyError',
    message: 'The model is still loading.',
    action: 'Wait for it to finish, or reload the page with ?backend=wasm (or webgpu) to start over with another backend.',
  },
} satisfies Record<string, EngineErrorInfo | ((...args: never[]) => EngineErrorInfo)>;

/** The URL's `?backend=` in a browser, 'auto' elsewhere (tests, SSR). */
function backendFromUrl(): BackendPreference {
  return typeof location === 'undefined' ? 'auto' : backendFromSearch(location.search);
}

/** Shareable links keep the forced backend; replaceState so Back still leaves the page. */
function writeBackendToUrl(preference: BackendPreference): void {
  if (typeof location === 'undefined' || typeof history === 'undefined') return;
  const url = new URL(location.href);
  if (preference === 'auto') url.searchParams.delete('backend');
  else url.searchParams.set('backend', preference);
  history.replaceState(history.state, '', url);
}

export function createStudioStore(backendPreference: BackendPreference = backendFromUrl()): StudioStore {
  // Outside the state: the engine is a handle, not data to render or reset.
  let engine: EnginePort | null = null;

  return createStore<StudioState>()((set, get) => {
    const refuse = (error: EngineErrorInfo) => set({ error });

    return {
      ...initialData(backendPreference),

      attachEngine: (next) => {
        engine = next;
      },

      setPrompt: (prompt) => set({ prompt }),
      setNegativePrompt: (negativePrompt) => set({ negativePrompt, touched: { ...get().touched, negativePrompt: true } }),
      setNumInferenceSteps: (steps) => {
        const numInferenceSteps = clampSteps(steps);
        if (numInferenceSteps !== null) set({ numInferenceSteps, touched: { ...get().touched, numInferenceSteps: true } });
      },
      setGuidanceScale: (scale) => {
        const guidanceScale = clampGuidance(scale);
        if (guidanceScale !== null) set({ guidanceScale, touched: { ...get().touched, guidanceScale: true } });
      },
      setSeed: (value) => {
        const seed = clampSeed(value);
        if (seed !== null) set({ seed });
      },
      setRandomizeSeed: (randomizeSeed) => set({ randomizeSeed }),
      rollSeed: () => set({ seed: randomSeed() }),

      loadModel: (modelUrl) => {
        if (!engine) return refuse(errors.noEngine);
        if (get().model.status === 'loading') return refuse(errors.stillLoading);
        if (get().generation.status !== 'idle') return refuse(errors.busy);
        const requestId = engine.load(modelUrl, get().backendPreference);
        set({
          model: { ...initialData().model, status: 'loading', requestId, url: modelUrl },
          error: null,
          notice: null,
        });
      },

      generate: () => {
        const state = get();
        if (!engine) return refuse(errors.noEngine);
        if (state.generation.status !== 'idle') return refuse(errors.busy);
        if (state.model.status !== 'ready') return refuse(errors.notReady(state.model.status === 'error'));
        // An empty prompt is valid: it asks for an unconditional sample.
        const seed = state.randomizeSeed ? randomSeed() : state.seed;
        const params: GenerateParams = {
          prompt: state.prompt,
          negativePrompt: state.negativePrompt,
          numInferenceSteps: state.numInferenceSteps,
          guidanceScale: state.guidanceScale,
          seed,
        };
        const requestId = engine.generate(params);
        set({
          seed,
          generation: { ...idleGeneration, status: 'running', requestId, total: params.numInferenceSteps },
          error: null,
          notice: null,
        });
      },

      cancel: () => {
        const { generation } = get();
        if (!engine || generation.status !== 'running' || generation.requestId === null) return;
        const cancelRequestId = engine.cancel(generation.requestId);
        set({ generation: { ...generation, status: 'cancelling', cancelRequestId } });
      },

      setBackendPreference: (preference) => {
        if (!isBackendPreference(preference)) return;
        // The engine takes one request at a time: a switch mid-run or mid-load would be refused.
        if (get().generation.status !== 'idle') return refuse(errors.busy);
        if (get().model.status === 'loading') return refuse(errors.stillLoading);
        set({ backendPreference: preference });
        writeBackendToUrl(preference);
        const { url } = get().model;
        if (url !== null) get().loadModel(url);
      },

      reportError: (error) => set({ error }),
      dismissError: () => set({ error: null }),
    };
  });
}

/** The app's one store. */
export const studioStore = createStudioStore();

/** React hook with a narrow selector: `useStudio((s) => s.generation.step)`. */
export function useStudio<T>(selector: (state: StudioState) => T): T {
  return useStore(studioStore, selector);
}

/** Back to the first state with no engine attached (tests call it between cases). */
export function resetStudio(store: StudioStore = studioStore): void {
  store.getState().attachEngine(null);
  store.setState(store.getInitialState(), true);
}
