import { useStore } from 'zustand';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { isErrorName, toErrorInfo } from '../engine/errors';
import type { BackendPreference, EngineErrorInfo, ErrorFix, GenerateRequestParams, ImageEngine, WorkerEvent } from '../engine/protocol';
import { fieldRange, GENERATE_FIELDS, type InitImage } from '../engine/schema';
import { deleteCachedModels, EMBEDDED_MODEL_URL, otherBackend } from './fixes';
import { backendFromSearch, clampGuidance, clampInt, clampSeed, clampStrength, clampText, isBackendPreference, parseSeedText, previewEvery, randomSeed } from './params';
import {
  selectGuidanceScale,
  selectInitImage,
  selectLimits,
  selectNegativePrompt,
  selectNumImagesPerPrompt,
  selectNumInferenceSteps,
  selectSeedError,
  selectSize,
  selectStrength,
} from './selectors';
import { idleGeneration, initialData, type FormValues, type StudioData } from './state';

/**
 * The one seam between the store and an engine: the ImageEngine calls for the actions, plus every
 * job's events for the reducer (EngineClient in the app, FakeEngine in tests).
 */
export type StudioEngine = ImageEngine & {
  subscribe(listener: (event: WorkerEvent) => void): () => void;
  /** A new engine worker with the model loaded again (the supervised engine has it). */
  restart?(): void;
};

export interface StudioActions {
  /** Routes requests to this engine (connectEngine does it; null detaches). */
  attachEngine(engine: StudioEngine | null): void;
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
  /** Truncated and clamped to a uint32; NaN is ignored. The field then shows it. */
  setSeed(seed: number): void;
  /** What the seed field shows, as typed: a seed when it reads as one (parseSeedText), else kept and marked invalid. */
  setSeedText(text: string): void;
  setRandomizeSeed(on: boolean): void;
  rollSeed(): void;
  setLivePreview(on: boolean): void;
  /** Previews after every step for the filmstrip (else every k steps, k bounded by their cost). */
  setRecordTrajectory(on: boolean): void;
  /** Rounded to the slider's step and clamped to the schema's 0..1; NaN is ignored. */
  setStrength(strength: number): void;
  /** Once a model is loaded, only a size it offers (else ignored); before, integers clamped to the schema's range. */
  setSize(width: number, height: number): void;
  /** The picture image-to-image starts from (already cropped and scaled); one with the wrong byte count is ignored. */
  setInitImage(image: InitImage, source: string): void;
  clearInitImage(): void;
  /** Fills the form from saved or linked values, each through its setter (so clamped like typed ones). */
  applyForm(values: Partial<FormValues>): void;
  /** Says what the form could not take (a link's unreadable values). */
  reportFormNotice(text: string): void;
  dismissFormNotice(): void;
  /**
   * Loads a model folder (URL ending in '/') with the current backend preference; a load in flight is
   * cancelled first. `skipComponents` (e.g. SD3's T5) is kept for later loads of the same folder
   * (retry, backend switch); without options the engine decides what fits.
   */
  loadModel(modelUrl: string, options?: { skipComponents?: string[] }): void;
  /** Sends a generate; pressed while the model loads, the run waits in the store until the model is ready. */
  generate(): void;
  /** Sends the run that waits for the model, once the model is ready (connectEngine calls it after each event). */
  runPending(): void;
  /** Cancels the run: a waiting one at once, a sent one through the engine. */
  cancel(): void;
  /** Shows this image of the newest batches large. */
  showImage(jobId: string, index: number): void;
  /** Remembers the choice in `?backend=` and loads the model again with it. */
  setBackendPreference(preference: BackendPreference): void;
  /** Shows a banner for a failure outside the engine (a download that could not be saved). */
  reportError(error: EngineErrorInfo): void;
  dismissError(): void;
  /** The banner's button: retry the load, switch the backend, free storage, load the small model, run again, restart the engine. */
  applyFix(fix: ErrorFix): void;
}

export type StudioState = StudioData & StudioActions;
export type StudioStore = StoreApi<StudioState>;

const noEngine: EngineErrorInfo = {
  name: 'EngineMissingError',
  message: 'The image engine has not started.',
  action: 'Use a recent Chrome, Edge or Firefox: module Web Workers are needed.',
};

/** A job's rejection (EngineClient's JobError carries the protocol payload) as a banner. */
function errorInfoOf(e: unknown): EngineErrorInfo {
  const info = (e as { info?: EngineErrorInfo } | null)?.info;
  return info && isErrorName(info.name) ? info : toErrorInfo(e);
}

/** What the newest image's run measured, for the next run's preview interval. */
function lastRunCost(state: StudioData) {
  const last = state.images.at(-1);
  return last ? { ...last.timings, previewEvery: last.params.previewEvery } : null;
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
  let engine: StudioEngine | null = null;

  return createStore<StudioState>()((set, get) => {
    /** Cancel a job; the store follows its own final event, so only a failed cancel is news. */
    const cancelJob = (jobId: string, onFailure?: () => void) => {
      engine?.cancel(jobId).catch((e: unknown) => {
        set({ error: errorInfoOf(e) });
        onFailure?.();
      });
    };

    /** Sends the form as a generate request and follows that job. */
    const send = (state: StudioState) => {
      if (!engine) return set({ error: noEngine });
      // An empty prompt is valid: it asks for an unconditional sample.
      const seed = state.randomizeSeed ? randomSeed() : state.seed;
      const numInferenceSteps = selectNumInferenceSteps(state);
      const guidanceScale = selectGuidanceScale(state);
      const size = selectSize(state);
      const image = selectInitImage(state);
      const params: GenerateRequestParams = {
        prompt: state.prompt,
        negativePrompt: selectNegativePrompt(state),
        seed,
        numImagesPerPrompt: selectNumImagesPerPrompt(state),
        previewEvery: previewEvery(state.livePreview, numInferenceSteps, { record: state.recordTrajectory, last: lastRunCost(state) }),
        // before the model has loaded, absent values mean "the model's default" to the engine
        ...(numInferenceSteps !== null && { numInferenceSteps }),
        ...(guidanceScale !== null && { guidanceScale }),
        ...(size !== null && { width: size[0], height: size[1] }),
        // an init image exists only once a model is loaded, so its default strength is known
        ...(image !== null && { image, strength: selectStrength(state) ?? GENERATE_FIELDS.strength.default }),
      };
      const job = engine.generate(params);
      set({
        seed,
        seedText: String(seed),
        generation: { ...idleGeneration, status: 'running', requestId: job.id, total: numInferenceSteps ?? 0 },
        preview: null,
        error: null,
        notice: null,
      });
    };

    return {
      ...initialData(backendPreference),

      attachEngine: (next) => {
        engine = next;
      },

      engineUnavailable: (error) => set({ model: { ...get().model, status: 'error' }, error }),

      setPrompt: (prompt) => set({ prompt: clampText(prompt, 'prompt') }),
      setNegativePrompt: (negativePrompt) => set({ negativePrompt: clampText(negativePrompt, 'negativePrompt') }),
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
        if (seed !== null) set({ seed, seedText: String(seed) });
      },
      setSeedText: (seedText) => {
        const parsed = parseSeedText(seedText);
        set('seed' in parsed ? { seedText, seed: parsed.seed } : { seedText });
      },
      setRandomizeSeed: (randomizeSeed) => set({ randomizeSeed }),
      rollSeed: () => {
        const seed = randomSeed();
        set({ seed, seedText: String(seed) });
      },
      setLivePreview: (livePreview) => set({ livePreview }),
      setRecordTrajectory: (recordTrajectory) => set({ recordTrajectory }),
      setStrength: (value) => {
        const strength = clampStrength(value);
        if (strength !== null) set({ strength });
      },
      setSize: (w, h) => {
        const sizes = get().model.info?.limits.sizes;
        // a loaded model lists its sizes (the select offers only those); before that, the schema's range
        if (sizes) {
          const offered = sizes.find(([sw, sh]) => sw === w && sh === h);
          if (offered) set({ size: offered });
          return;
        }
        const width = clampInt(w, fieldRange('width'));
        const height = clampInt(h, fieldRange('height'));
        if (width !== null && height !== null) set({ size: [width, height] });
      },
      setInitImage: (image, source) => {
        if (image.data.length !== image.width * image.height * 4) return;
        set({ initImage: { image, source } });
      },
      clearInitImage: () => set({ initImage: null }),
      applyForm: (values) => {
        const s = get();
        const apply: { [K in keyof FormValues]: (v: FormValues[K]) => void } = {
          prompt: s.setPrompt,
          negativePrompt: s.setNegativePrompt,
          numInferenceSteps: s.setNumInferenceSteps,
          guidanceScale: s.setGuidanceScale,
          seed: s.setSeed,
          randomizeSeed: s.setRandomizeSeed,
          numImagesPerPrompt: s.setNumImagesPerPrompt,
          livePreview: s.setLivePreview,
          strength: s.setStrength,
          size: ([w, h]) => s.setSize(w, h),
          backendPreference: (v) => {
            // the same preference again would load the model again
            if (v !== get().backendPreference) s.setBackendPreference(v);
          },
        };
        for (const key of Object.keys(apply) as (keyof FormValues)[]) {
          const value = values[key];
          if (value !== undefined) (apply[key] as (v: unknown) => void)(value);
        }
      },
      reportFormNotice: (formNotice) => set({ formNotice }),
      dismissFormNotice: () => set({ formNotice: null }),

      loadModel: (modelUrl, options) => {
        if (!engine) return set({ error: noEngine });
        const { model, backendPreference } = get();
        // The new load replaces the one in flight; the engine keeps its current model until one succeeds.
        if (model.status === 'loading' && model.requestId !== null) cancelJob(model.requestId);
        const skipComponents = options ? options.skipComponents : modelUrl === model.url ? model.skipComponents : undefined;
        const job = engine.load({ modelUrl, backend: backendPreference, ...(skipComponents && { skipComponents }) });
        set({
          model: { ...model, status: 'loading', requestId: job.id, url: modelUrl, skipComponents, files: {}, message: null, loadingBackend: null },
          error: null,
          notice: null,
        });
      },

      generate: () => {
        const state = get();
        if (!engine) return set({ error: noEngine });
        // The store follows one run (the button and shortcut are off meanwhile); this only stops a double call.
        if (state.generation.status !== 'idle') return;
        // the field shows no seed: running with the last good one would make an image nobody asked for
        const seedError = state.randomizeSeed ? null : selectSeedError(state);
        if (seedError !== null) return set({ notice: `Not started: ${seedError}` });
        if (state.model.status === 'loading') {
          // Held here rather than in the engine's queue: sent now, its values could only be checked
          // against the schema, and a loaded model with narrower limits would refuse them.
          // (a banner stays: it may say why the model is being loaded, e.g. an unreadable ?model=)
          return set({ generation: { ...idleGeneration, status: 'running', pending: true }, preview: null, notice: null });
        }
        send(state);
      },

      runPending: () => {
        const state = get();
        if (!state.generation.pending || state.model.status !== 'ready') return;
        // the seed field may have been emptied while the run waited
        const seedError = state.randomizeSeed ? null : selectSeedError(state);
        if (seedError !== null) return set({ generation: idleGeneration, notice: `Not started: ${seedError}` });
        send(state);
      },

      cancel: () => {
        const { generation } = get();
        // never sent: nothing to ask the engine
        if (generation.pending) return set({ generation: idleGeneration, notice: 'Cancelled before it started' });
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

      applyFix: (fix) => {
        const s = get();
        const url = s.model.url ?? EMBEDDED_MODEL_URL;
        set({ error: null });
        switch (fix) {
          case 'retry-load':
            return s.loadModel(url);
          case 'switch-backend':
            return s.setBackendPreference(otherBackend(s));
          case 'free-storage':
            void deleteCachedModels().then(
              () => get().loadModel(url),
              (e: unknown) => set({ error: { name: 'StorageFullError', message: `The cached models could not be deleted: ${e instanceof Error ? e.message : String(e)}`, action: "Delete this site's data in the browser settings, then press Retry.", fix: 'retry-load' } }),
            );
            return;
          case 'smaller-model':
            return s.loadModel(EMBEDDED_MODEL_URL);
          case 'run-again':
            return s.generate();
          case 'restart-engine':
            if (!engine?.restart) return set({ error: noEngine });
            return engine.restart();
        }
      },
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
