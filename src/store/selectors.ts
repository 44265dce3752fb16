import type { ModelInfo } from '../engine/protocol';
import { fieldRange, GENERATE_FIELDS, type InitImage } from '../engine/schema';
import { formatBytes, formatSeconds } from './format';
import { clampGuidance, clampInt, clampStrength, parseSeedText } from './params';
import type { FileProgress, ImageRecord, StudioData } from './state';

export type AppState = 'starting' | 'loading' | 'ready' | 'running' | 'error';

/** The root's data-state, which e2e tests wait on. A run outranks everything; a banner outranks ready. */
export function selectAppState(s: StudioData): AppState {
  if (s.generation.status !== 'idle') return 'running';
  if (s.model.status === 'loading') return 'loading';
  if (s.model.status === 'error' || s.error !== null) return 'error';
  // idle: the load has not been sent yet
  return s.model.status === 'idle' ? 'starting' : 'ready';
}

// ---- settings: the user's choice, else the model's default, within the model's limits ----

export type Limits = Pick<ModelInfo['limits'], 'numInferenceSteps' | 'guidanceScale' | 'numImagesPerPrompt'>;

/** The request table's ranges: what sliders allow before a model narrows them. */
const SCHEMA_LIMITS: Limits = {
  numInferenceSteps: fieldRange('numInferenceSteps'),
  guidanceScale: fieldRange('guidanceScale'),
  numImagesPerPrompt: fieldRange('numImagesPerPrompt'),
};

export const selectLimits = (s: StudioData): Limits => s.model.info?.limits ?? SCHEMA_LIMITS;

/** null before a model says its default and the user has not picked one. */
export function selectNumInferenceSteps(s: StudioData): number | null {
  const value = s.numInferenceSteps ?? s.model.info?.defaults.numInferenceSteps ?? null;
  return value === null ? null : clampInt(value, selectLimits(s).numInferenceSteps);
}

export function selectGuidanceScale(s: StudioData): number | null {
  const value = s.guidanceScale ?? s.model.info?.defaults.guidanceScale ?? null;
  return value === null ? null : clampGuidance(value, selectLimits(s).guidanceScale);
}

export const selectNegativePrompt = (s: StudioData): string =>
  s.negativePrompt ?? s.model.info?.defaults.negativePrompt ?? '';

export const selectNumImagesPerPrompt = (s: StudioData): number =>
  clampInt(s.numImagesPerPrompt, selectLimits(s).numImagesPerPrompt) ?? GENERATE_FIELDS.numImagesPerPrompt.default;

/** Why the seed field's text is not a seed (shown under it; generate() refuses), or null. */
export function selectSeedError(s: StudioData): string | null {
  const parsed = parseSeedText(s.seedText);
  return 'error' in parsed ? parsed.error : null;
}

/** Image-to-image strength: the user's, else the model's default; null before either is known. */
export function selectStrength(s: StudioData): number | null {
  const value = s.strength ?? s.model.info?.defaults.strength ?? null;
  return value === null ? null : clampStrength(value);
}

const sameSize = (a: readonly [number, number], w: number, h: number) => a[0] === w && a[1] === h;

/**
 * [width, height] of the next run: the user's pick when the model offers it, else the model's
 * default; before a model is loaded, the user's pick (or null: the model's default). Returns an
 * array the state already holds, so a hook can select it without re-rendering on every change.
 */
export function selectSize(s: StudioData): readonly [number, number] | null {
  const info = s.model.info;
  if (!info) return s.size;
  const { sizes } = info.limits;
  const picked = s.size && sizes.find((size) => sameSize(size, s.size![0], s.size![1]));
  return picked ?? sizes.find((size) => sameSize(size, info.defaults.width, info.defaults.height)) ?? sizes[0] ?? null;
}

/** Why image-to-image is off (shown next to the disabled control), or null when it is on. */
export function selectImageToImageBlocker(s: StudioData): string | null {
  const info = s.model.info;
  if (!info) return 'Available once the model has loaded.';
  if (!info.imageToImage) return `${info.name} has no VAE encoder, so it cannot start from an image.`;
  return null;
}

/** The init image the next run starts from: null when there is none, the model cannot, or it was made for another size. */
export function selectInitImage(s: StudioData): InitImage | null {
  const { initImage } = s;
  if (!initImage || selectImageToImageBlocker(s) !== null) return null;
  const size = selectSize(s);
  return size && sameSize(size, initImage.image.width, initImage.image.height) ? initImage.image : null;
}

/**
 * Generate is a button for one run at a time (a UI affordance; the engine's queue has the real
 * busy rule). Pressed while the model loads, the run waits in the store until the model is ready.
 */
export const selectCanGenerate = (s: StudioData) =>
  s.generation.status === 'idle' && (s.model.status === 'loading' || s.model.info !== null);

// ---- images ----

/** The image shown large: the picked thumbnail, else the newest batch's first image (its seed is the seed field's). */
export function selectShownImage(s: StudioData): ImageRecord | null {
  const { images, shown } = s;
  if (shown) {
    const picked = images.find((r) => r.jobId === shown.jobId && r.index === shown.index);
    if (picked) return picked;
  }
  const newest = images.at(-1);
  if (!newest) return null;
  return images.find((r) => r.jobId === newest.jobId) ?? newest;
}

/** The shown image's batch, when it has more than one image (a new array: select it with useShallow). */
export function selectShownBatch(s: StudioData): ImageRecord[] {
  const shown = selectShownImage(s);
  if (!shown) return [];
  const batch = s.images.filter((r) => r.jobId === shown.jobId);
  return batch.length > 1 ? batch : [];
}

// ---- progress ----

/** Bytes over the files whose size is known; the bar and the "X of Y" text both read this. */
export function loadBytes(files: Record<string, FileProgress>): { loaded: number; total: number } {
  let loaded = 0;
  let total = 0;
  for (const f of Object.values(files)) {
    if (f.total > 0) {
      loaded += Math.min(f.loaded, f.total);
      total += f.total;
    }
  }
  return { loaded, total };
}

/** Download progress as 0..1; null before any size is known. */
export function selectLoadFraction(s: StudioData): number | null {
  const { loaded, total } = loadBytes(s.model.files);
  return total > 0 ? loaded / total : null;
}

/** A run that has not started: held until the model is ready, or queued in the engine behind another job. */
export const selectWaiting = (s: StudioData): boolean =>
  s.generation.status !== 'idle' && s.generation.step === 0 && (s.generation.pending || s.generation.queued);

/** The status line (and the progress row) while a run waits for the model. */
export const WAITING_FOR_MODEL = 'Will start when the model is ready';

/** The live region's sentence. */
export function selectStatusText(s: StudioData): string {
  const { generation, model } = s;
  if (generation.status === 'cancelling') return 'Cancelling…';
  if (generation.status === 'running') {
    if (selectWaiting(s)) return generation.pending ? WAITING_FOR_MODEL : 'Queued…';
    // per-step counts live in the progress bar: announcing each one would flood screen readers
    return generation.total > 0 ? `Generating ${generation.total} steps…` : 'Generating…';
  }
  if (model.status === 'idle') return 'Starting…';
  if (model.status === 'loading') {
    // the file being fetched (files come one after another): named, so a stalled one is visible (fault table 1b)
    const current = Object.values(model.files).find((f) => f.total > 0 && f.loaded < f.total);
    if (current) {
      const size = formatBytes(current.total);
      return current.loaded === 0
        ? `Loading model… waiting for ${current.file} (0 of ${size})`
        : `Loading model… downloading ${current.file}, ${Math.floor((current.loaded / current.total) * 100)}% of ${size}`;
    }
    const fraction = selectLoadFraction(s);
    // Once the bytes are in, the engine's own message ("Starting WebGPU sessions") says more than 100%.
    if (fraction !== null && (fraction < 1 || !model.message)) return `Loading model… ${Math.floor(fraction * 100)}%`;
    return model.message ? `Loading model… ${model.message}` : 'Loading model…';
  }
  // the status line agrees with the banner: never "Ready" while an error stands
  if (model.status === 'error') return s.error ? `The model could not be loaded: ${s.error.message}` : 'The model could not be loaded';
  if (s.error) return `Error: ${s.error.message}`;
  return s.notice ?? 'Ready';
}

/** "~1.2 s left", or null while unknown. */
export function selectTimeLeft(s: StudioData): string | null {
  const { etaMs, status } = s.generation;
  return status !== 'idle' && etaMs !== null ? `~${formatSeconds(etaMs)} left` : null;
}
