import type { BackendInfo, BackendPreference, EngineErrorInfo, GeneratedImage, ImageResult, ModelInfo, StorageReport } from '../engine/protocol';
import { GENERATE_FIELDS, type InitImage } from '../engine/schema';

export interface FileProgress {
  file: string;
  loaded: number;
  total: number;
}

export interface ModelState {
  /** Of the latest load request. */
  status: 'idle' | 'loading' | 'ready' | 'error';
  /** Id of the load job in flight or last finished; events from older loads are ignored. */
  requestId: string | null;
  /** Model folder URL of the latest load, kept so a backend switch can load it again. */
  url: string | null;
  /** Components the latest load was asked to leave out (SD3's T5); undefined: the engine decided. */
  skipComponents?: string[];
  /** Download progress per file of the latest load, in the order the engine reported them. */
  files: Record<string, FileProgress>;
  /** Latest `prepare` progress of the latest load ("Starting WebGPU sessions"). */
  message: string | null;
  /** The backend the load in flight is trying; it becomes `backend` only if the load succeeds. */
  loadingBackend: BackendInfo | null;
  // The model the engine holds. A new load replaces it only when it succeeds (a failed or
  // cancelled one leaves it in place), so these outlive the load that follows them.
  info: ModelInfo | null;
  backend: BackendInfo | null;
  loadMs: number | null;
  /** Whether the browser keeps the model's files for the next visit (from the last successful load). */
  storage: StorageReport | null;
}

export interface GenerationState {
  status: 'idle' | 'running' | 'cancelling';
  /** The generate job the UI started; events of other jobs are ignored. */
  requestId: string | null;
  /** The engine put the job behind another one and it has not started yet. */
  queued: boolean;
  /**
   * Generate was pressed while the model loads: the store holds the run (requestId null) and sends
   * it once the model is ready, so its settings are resolved against that model's limits.
   */
  pending: boolean;
  /** Steps finished so far (the last `denoise` progress), out of `total` (0 until known). */
  step: number;
  total: number;
  msPerStep: number | null;
  /** (total - step) * msPerStep; null until the first step reports its speed. */
  etaMs: number | null;
}

/** One finished image, as its `image` event brought it, plus the job it belongs to. */
export interface ImageRecord extends ImageResult {
  /** The generate job; the images of one job are one batch. */
  jobId: string;
}

/**
 * The store's data; the actions live in store.ts. Settings that a model has a default for are
 * null until the user picks a value: the selectors resolve them against the loaded model, so a
 * reload (another backend, another model) brings its own defaults without overwriting choices.
 */
export interface StudioData {
  prompt: string;
  /** null: the model's default negative prompt. */
  negativePrompt: string | null;
  /** null: the model's default. Clamped to the model's limits by the selectors. */
  numInferenceSteps: number | null;
  /** null: the model's default. */
  guidanceScale: number | null;
  /** Batch size: images per Generate, seeds seed, seed+1, … */
  numImagesPerPrompt: number;
  seed: number;
  /**
   * The seed field's text, exactly as shown. When it reads as a seed, `seed` is that number; when it
   * does not (empty, "1e20", "-5"), `seed` keeps the last good one but no run starts from it
   * (selectSeedError says why) unless "new seed each time" replaces it.
   */
  seedText: string;
  /** "New seed each time": roll before every generate(). */
  randomizeSeed: boolean;
  /** Ask the engine for previews of the expected image while it denoises. */
  livePreview: boolean;
  /** Ask for the x0 estimate after every step (the filmstrip's frames), whatever it costs. */
  recordTrajectory: boolean;
  /** Image-to-image strength; null: the model's default. */
  strength: number | null;
  /** [width, height]; null: the model's default. Only a size the model offers is used. */
  size: [number, number] | null;
  /** The picture image-to-image starts from, already at the size it was picked for. */
  initImage: InitImageRecord | null;
  backendPreference: BackendPreference;
  model: ModelState;
  generation: GenerationState;
  /** Finished images, newest last, at most MAX_IMAGES. */
  images: ImageRecord[];
  /** The thumbnail the user picked; null shows the newest batch's first image. */
  shown: { jobId: string; index: number } | null;
  /** Latest preview of the running job's first image; cleared when its images arrive. */
  preview: GeneratedImage | null;
  /** The banner; a CancelledError never lands here. */
  error: EngineErrorInfo | null;
  /** One-line outcome of the last action ("Done in 1.2 s", "Cancelled at step 2/20"). */
  notice: string | null;
  /** What the form could not take (a share link's garbage values); stays until dismissed. */
  formNotice: string | null;
}

/**
 * The form as a user would type it: what persists across reloads and what a share link carries.
 * Every value goes through the store's setters, so a restored or linked one is clamped exactly
 * like a typed one.
 */
export interface FormValues {
  prompt: string;
  negativePrompt: string;
  numInferenceSteps: number;
  guidanceScale: number;
  seed: number;
  randomizeSeed: boolean;
  numImagesPerPrompt: number;
  livePreview: boolean;
  strength: number;
  size: [number, number];
  backendPreference: BackendPreference;
}

export interface InitImageRecord {
  /** RGBA pixels, center-cropped and scaled to the size it was picked for. */
  image: InitImage;
  /** Where it came from, for the thumbnail's label ("cat.png", "result, seed 42"). */
  source: string;
}

/**
 * Every record keeps its RGBA pixels in memory (16 kB at 64x64, 4 MB at 1024x1024), and nothing
 * shows more than the newest batch yet: 32 bounds that memory and still holds 4 full batches.
 */
export const MAX_IMAGES = 32;

export const idleGeneration: GenerationState = {
  status: 'idle',
  requestId: null,
  queued: false,
  pending: false,
  step: 0,
  total: 0,
  msPerStep: null,
  etaMs: null,
};

export const idleModel: ModelState = {
  status: 'idle',
  requestId: null,
  url: null,
  files: {},
  message: null,
  loadingBackend: null,
  info: null,
  backend: null,
  loadMs: null,
  storage: null,
};

/** A fixed first seed, so a fresh page reproduces the same first image. */
const FIRST_SEED = 42;

export function initialData(backendPreference: BackendPreference = 'auto'): StudioData {
  return {
    prompt: GENERATE_FIELDS.prompt.default,
    negativePrompt: null,
    numInferenceSteps: null,
    guidanceScale: null,
    numImagesPerPrompt: GENERATE_FIELDS.numImagesPerPrompt.default,
    seed: FIRST_SEED,
    seedText: String(FIRST_SEED),
    randomizeSeed: false,
    livePreview: true,
    recordTrajectory: false,
    strength: null,
    size: null,
    initImage: null,
    backendPreference,
    model: idleModel,
    generation: idleGeneration,
    images: [],
    shown: null,
    preview: null,
    error: null,
    notice: null,
    formNotice: null,
  };
}
