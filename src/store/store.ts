import { useStore } from 'zustand';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { isErrorName, toErrorInfo } from '../engine/errors';
import type { BackendPreference, EngineErrorInfo, GenerateRequestParams, ImageEngine, WorkerEvent } from '../engine/protocol';
import { backendFromSearch, clampGuidance, clampInt, clampSeed, isBackendPreference, previewEvery, randomSeed } from './params';
import { selectGuidanceScale, selectLimits, selectNegativePrompt, selectNumImagesPerPrompt, selectNumInferenceSteps } from './selectors';
import { idleGeneration, initialData, type StudioData } from './state';

/**
 * The one seam between the store and an engine: the ImageEngine calls for the actions, plus every
 * job's events for the reducer (EngineClient in the app, FakeEngine in tests).
 */
export type StudioEngine = ImageEngine & { subscribe(listener: (event: WorkerEvent) => void): () => void };

export interface StudioActions {
  /** Routes requests to this engine (connectEngine does it; null detaches). */
  attachEngine(engine: ImageEngine | null): void;
  /** The engine could not start at all: the model cannot load, and the banner says why. */
  engineUnavailable(error: EngineErrorInfo): void;
  setPrompt(prompt: string): void;
  setNegativePrompt(negativePrompt: string): void;
  /** Rounded and clamped to the model's limits (the schema's before a model is loaded); NaN is ignored. */
  setNumInferenceSteps(steps: number): void;
  /** Rounded to the slider's step and clamped like the steps; NaN is ignored. */
  setGuidanceScale(scale: number): void;
  /** Batch size, clamped like the steps; NaN is ignored. */
  setNumImagesPerPrompt(count: number): void;
  /** Truncated and clamped to a uint32; NaN is ignored. */
  setSeed(seed: number): void;
  setRandomizeSeed(on: boolean): void;
  rollSeed(): void;
  setLivePreview(on: boolean): void;
  /** Loads a model folder (URL ending in '/') with the current backend preference; a load in flight is cancelled first. */
  loadModel(modelUrl: string): void;
  /** Sends a generate; while the model loads, the engine queues it behind the load. */
  generate(): void;
  cancel(): void;
  /** Shows this image of the newest batches large. */
  showImage(jobId: string, index: number): void;
  /** Remembers the choice in `?backend=` and loads the model again with it. */
  setBackendPreference(preference: BackendPreference): void;
  /** Shows a banner for a failure outside the engine (a download that could not be saved). */
  reportError(error: EngineErrorInfo): void;
  dismissError(): void;
}

export type StudioState = StudioData & StudioActions;
export type StudioStore = StoreApi<StudioState>;

const noEngine: EngineErrorInfo = {
  name: 'EngineMissingError',
  message: 'The image engine has not started.',
  action: 'Reload the page. If this keeps happening, use a recent Chrome, Edge or Firefox (module Web Workers are needed).',
};

/** A job's rejection (EngineClient's JobError carries the protocol payload) as a banner. */
function errorInfoOf(e: unknown): EngineErrorInfo {
  const info = (e as { info?: EngineErrorInfo } | null)?.info;
  return info && isErrorName(info.name) ? info : toErrorInfo(e);
}

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
  let engine: ImageEngine | null = null;

  return createStore<StudioState>()((set, get) => {
    /** Cancel a job; the store follows its own final event, so only a failed cancel is news. */
    const cancelJob = (jobId: string, onFailure?: () => void) => {
      engine?.cancel(jobId).catch((e: unknown) => {
        set({ error: errorInfoOf(e) });
        onFailure?.();
      });
    };

    return {
      ...initialData(backendPreference),

      attachEngine: (next) => {
        engine = next;
      },

      engineUnavailable: (error) => set({ model: { ...get().model, status: 'error' }, error }),

      setPrompt: (prompt) => set({ prompt }),
      setNegativePrompt: (negativePrompt) => set({ negativePrompt }),
      setNumInferenceSteps: (steps) => {
        const numInferenceSteps = clampInt(steps, selectLimits(get()).numInferenceSteps);
        if (numInferenceSteps !== null) set({ numInferenceSteps });
      },
      setGuidanceScale: (scale) => {
        const guidanceScale = clampGuidance(scale, selectLimits(get()).guidanceScale);
        if (guidanceScale !== null) set({ guidanceScale });
      },
      setNumImagesPerPrompt: (count) => {
        const numImagesPerPrompt = clampInt(count, selectLimits(get()).numImagesPerPrompt);
        if (numImagesPerPrompt !== null) set({ numImagesPerPrompt });
      },
      setSeed: (value) => {
        const seed = clampSeed(value);
        if (seed !== null) set({ seed });
      },
      setRandomizeSeed: (randomizeSeed) => set({ randomizeSeed }),
      rollSeed: () => set({ seed: randomSeed() }),
      setLivePreview: (livePreview) => set({ livePreview }),

      loadModel: (modelUrl) => {
        if (!engine) return set({ error: noEngine });
        const { model, backendPreference } = get();
        // The new load replaces the one in flight; the engine keeps its current model until one succeeds.
        if (model.status === 'loading' && model.requestId !== null) cancelJob(model.requestId);
        const job = engine.load({ modelUrl, backend: backendPreference });
        set({
          model: { ...model, status: 'loading', requestId: job.id, url: modelUrl, files: {}, message: null, loadingBackend: null },
          error: null,
          notice: null,
        });
      },

      generate: () => {
        const state = get();
        if (!engine) return set({ error: noEngine });
        // The store follows one run (the button and shortcut are off meanwhile); this only stops a double call.
        if (state.generation.status !== 'idle') return;
        // An empty prompt is valid: it asks for an unconditional sample.
        const seed = state.randomizeSeed ? randomSeed() : state.seed;
        const numInferenceSteps = selectNumInferenceSteps(state);
        const guidanceScale = selectGuidanceScale(state);
        const params: GenerateRequestParams = {
          prompt: state.prompt,
          negativePrompt: selectNegativePrompt(state),
          seed,
          numImagesPerPrompt: selectNumImagesPerPrompt(state),
          previewEvery: previewEvery(state.livePreview, numInferenceSteps),
          // before the model has loaded, absent values mean "the model's default" to the engine
          ...(numInferenceSteps !== null && { numInferenceSteps }),
          ...(guidanceScale !== null && { guidanceScale }),
        };
        const job = engine.generate(params);
        set({
          seed,
          generation: { ...idleGeneration, status: 'running', requestId: job.id, total: numInferenceSteps ?? 0 },
          preview: null,
          error: null,
          notice: null,
        });
      },

      cancel: () => {
        const { generation } = get();
        if (!engine || generation.status !== 'running' || generation.requestId === null) return;
        const target = generation.requestId;
        set({ generation: { ...generation, status: 'cancelling' } });
        cancelJob(target, () => {
          // the run goes on and will end with its own event
          const now = get().generation;
          if (now.requestId === target && now.status === 'cancelling') set({ generation: { ...now, status: 'running' } });
        });
      },

      showImage: (jobId, index) => set({ shown: { jobId, index } }),

      setBackendPreference: (preference) => {
        if (!isBackendPreference(preference)) return;
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
