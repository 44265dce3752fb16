import type { ModelInfo } from '../engine/protocol';
import { fieldRange, GENERATE_FIELDS } from '../engine/schema';
import { formatSeconds } from './format';
import { clampGuidance, clampInt } from './params';
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

/**
 * Generate is a button for one run at a time (a UI affordance; the engine's queue has the real
 * busy rule). Pressed while the model loads, the run is sent and waits in the engine's queue.
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

/** A run sent before the engine could start it: it waits behind the model load (or another job). */
export const selectWaiting = (s: StudioData): boolean =>
  s.generation.status !== 'idle' && s.generation.step === 0 && (s.model.status === 'loading' || s.generation.queued);

/** The live region's sentence. */
export function selectStatusText(s: StudioData): string {
  const { generation, model } = s;
  if (generation.status === 'cancelling') return 'Cancelling…';
  if (generation.status === 'running') {
    if (selectWaiting(s)) return model.status === 'loading' ? 'Waiting for the model…' : 'Queued…';
    // per-step counts live in the progress bar: announcing each one would flood screen readers
    return generation.total > 0 ? `Generating ${generation.total} steps…` : 'Generating…';
  }
  if (model.status === 'idle') return 'Starting…';
  if (model.status === 'loading') {
    const fraction = selectLoadFraction(s);
    // Once the bytes are in, the engine's own message ("Starting WebGPU sessions") says more than 100%.
    if (fraction !== null && (fraction < 1 || !model.message)) return `Loading model… ${Math.floor(fraction * 100)}%`;
    return model.message ? `Loading model… ${model.message}` : 'Loading model…';
  }
  if (model.status === 'error') return 'The model could not be loaded';
  return s.notice ?? 'Ready';
}

/** "~1.2 s left", or null while unknown. */
export function selectTimeLeft(s: StudioData): string | null {
  const { etaMs, status } = s.generation;
  return status !== 'idle' && etaMs !== null ? `~${formatSeconds(etaMs)} left` : null;
}
