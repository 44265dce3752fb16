import type {
  BackendInfo,
  BackendPreference,
  EngineErrorInfo,
  GenerateParams,
  GenerateTimings,
  GeneratedImage,
  ModelInfo,
} from '../engine/protocol';

export interface FileProgress {
  file: string;
  loaded: number;
  total: number;
}

export interface ModelState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  /** Id of the load request in flight or last finished; events from older loads are ignored. */
  requestId: string | null;
  /** Manifest URL of the current load, kept so a backend switch can reload it. */
  url: string | null;
  /** Download progress per file, in the order the engine reported them. */
  files: Record<string, FileProgress>;
  /** Latest `status` message from the engine ("Compiling shaders…"). */
  message: string | null;
  info: ModelInfo | null;
  backend: BackendInfo | null;
  loadMs: number | null;
}

export interface GenerationState {
  status: 'idle' | 'running' | 'cancelling';
  requestId: string | null;
  cancelRequestId: string | null;
  /** Steps finished so far (the engine's last `step` event), out of `total`. */
  step: number;
  total: number;
  msPerStep: number | null;
  /** (total - step) * msPerStep; null until the first step reports its speed. */
  etaMs: number | null;
  message: string | null;
}

export interface LastImage {
  image: GeneratedImage;
  params: GenerateParams;
  modelId: string;
  shift: number;
  timings: GenerateTimings;
}

/** The store's data; the actions live in store.ts. */
export interface StudioData {
  prompt: string;
  negativePrompt: string;
  numInferenceSteps: number;
  guidanceScale: number;
  seed: number;
  /** "New seed each time": roll before every generate(). */
  randomizeSeed: boolean;
  backendPreference: BackendPreference;
  /** Which settings the user changed, so a model's defaults do not overwrite them. */
  touched: { numInferenceSteps: boolean; guidanceScale: boolean; negativePrompt: boolean };
  model: ModelState;
  generation: GenerationState;
  lastImage: LastImage | null;
  /** The banner; a CancelledError never lands here. */
  error: EngineErrorInfo | null;
  /** One-line outcome of the last action ("Done in 1.2 s", "Cancelled at step 2/20"). */
  notice: string | null;
}

export const idleGeneration: GenerationState = {
  status: 'idle',
  requestId: null,
  cancelRequestId: null,
  step: 0,
  total: 0,
  msPerStep: null,
  etaMs: null,
  message: null,
};

export function initialData(backendPreference: BackendPreference = 'auto'): StudioData {
  return {
    prompt: '',
    negativePrompt: '',
    // Placeholders until the model's manifest brings its own defaults.
    numInferenceSteps: 20,
    guidanceScale: 4,
    seed: 42,
    randomizeSeed: false,
    backendPreference,
    touched: { numInferenceSteps: false, guidanceScale: false, negativePrompt: false },
    model: {
      status: 'idle',
      requestId: null,
      url: null,
      files: {},
      message: null,
      info: null,
      backend: null,
      loadMs: null,
    },
    generation: idleGeneration,
    lastImage: null,
    error: null,
    notice: null,
  };
}
