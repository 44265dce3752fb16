import type { BackendPreference, Range } from '../engine/protocol';
import { fieldRange, GENERATE_FIELDS } from '../engine/schema';
import { cleanText } from '../text';

/** Largest seed: the engine's noise generator (mulberry32) takes a uint32. */
export const MAX_SEED = GENERATE_FIELDS.seed.max;
/** The guidance slider's step; clamps round to it so the slider and the store agree. */
export const GUIDANCE_STEP = GENERATE_FIELDS.guidanceScale.step;

/**
 * The strength slider's step. The request table gives strength's range (0..1) but no step: 0.05
 * is fine enough to feel continuous and coarse enough that a keyboard crosses the range in 20 presses.
 */
export const STRENGTH_STEP = 0.05;

/** A preview every 5 steps costs one small VAE decode each time... */
export const PREVIEW_EVERY = 5;
/** ...and shorter runs finish before a preview would help. */
export const MIN_STEPS_FOR_PREVIEW = 10;

const clamp = (x: number, { min, max }: Range) => Math.min(max, Math.max(min, x));

/** Integer in `range`, or null when `value` is not a number (e.g. an emptied field). */
export function clampInt(value: number, range: Range): number | null {
  if (!Number.isFinite(value)) return null;
  return clamp(Math.round(value), range);
}

/** Nearest multiple of `step` in `range`, without float noise (0.3, not 0.30000000000000004). */
export function clampToStep(value: number, range: Range, step: number): number | null {
  if (!Number.isFinite(value)) return null;
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return clamp(Number((Math.round(value / step) * step).toFixed(decimals)), range);
}

/** Nearest multiple of GUIDANCE_STEP in `range`, matching the slider. */
export function clampGuidance(value: number, range: Range): number | null {
  return clampToStep(value, range, GUIDANCE_STEP);
}

/** Image-to-image strength: the schema's range, rounded to the slider's STRENGTH_STEP. */
export function clampStrength(value: number): number | null {
  return clampToStep(value, fieldRange('strength'), STRENGTH_STEP);
}

/** A prompt as the text field would take it: cleaned (no control characters but \n and \t; src/text.ts) and cut at the schema's maxLength. */
export const clampText = (value: string, field: 'prompt' | 'negativePrompt') => cleanText(value).slice(0, GENERATE_FIELDS[field].maxLength);

/**
 * The seed field's text as a seed, or why it is not one. Only digits (with white space around)
 * are a seed: "1e20", "12.7" and "-5" would otherwise run with some other number than the one shown.
 */
export function parseSeedText(text: string): { seed: number } | { error: string } {
  const t = text.trim();
  const range = `a whole number from 0 to ${MAX_SEED}`;
  if (t === '') return { error: `Seed is empty: type ${range}, roll the dice, or tick "New seed each time".` };
  if (!/^\d+$/.test(t)) return { error: `Seed "${t.length > 24 ? `${t.slice(0, 24)}…` : t}" is not ${range} (digits only).` };
  const seed = Number(t);
  if (seed > MAX_SEED) return { error: `Seed ${t.length > 24 ? `${t.slice(0, 24)}…` : t} is larger than ${MAX_SEED}, the largest seed.` };
  return { seed };
}

export function clampSeed(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return clamp(Math.trunc(value), { min: 0, max: MAX_SEED });
}

/** Live previews may cost at most this share of a run's denoise time. */
export const MAX_PREVIEW_SHARE = 0.1;

/** What the last run measured: one decode of its batch, its steps, and how often it previewed. */
export interface RunCost {
  decodeMs: number;
  msPerStep: number;
  stepMs?: number[];
  previewEvery?: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The fewest steps between previews that keep their cost under MAX_PREVIEW_SHARE of the denoise
 * time: a preview every k steps costs preview / (k * step). A preview decodes the batch like the
 * final decode (decodeMs); when the last run previewed, what its preview steps took beyond its
 * plain ones counts if that was more. The step is a plain step's median. null when the last run
 * measured nothing usable.
 */
export function costBoundEvery(last: RunCost): number | null {
  const stepMs = last.stepMs ?? [];
  const every = last.previewEvery ?? 0;
  // stepMs[i] is the run's (i+1)-th step; it previewed after every `every` steps but the last
  const previewed = (i: number) => every > 0 && (i + 1) % every === 0 && i < stepMs.length - 1;
  const plain = stepMs.filter((_, i) => !previewed(i));
  const withPreview = stepMs.filter((_, i) => previewed(i));
  const step = plain.length ? median(plain) : last.msPerStep;
  const preview = Math.max(last.decodeMs, withPreview.length && plain.length ? median(withPreview) - step : 0);
  if (!(step > 0) || !(preview >= 0)) return null;
  return Math.min(GENERATE_FIELDS.previewEvery.max, Math.max(1, Math.ceil(preview / (MAX_PREVIEW_SHARE * step))));
}

/**
 * previewEvery for a run of `steps` (null: the model's default, not known yet). With the last
 * run's costs, k keeps previews under MAX_PREVIEW_SHARE (at least one preview per run); before
 * any run, PREVIEW_EVERY. "Record trajectory" previews every step, whatever it costs.
 */
export function previewEvery(livePreview: boolean, steps: number | null, opts: { record?: boolean; last?: RunCost | null } = {}): number {
  if (opts.record) return 1;
  if (!livePreview) return 0;
  if (steps !== null && steps < MIN_STEPS_FOR_PREVIEW) return 0;
  const k = opts.last ? costBoundEvery(opts.last) : null;
  if (k === null) return PREVIEW_EVERY;
  return steps === null ? k : Math.min(k, steps - 1);
}

export function randomSeed(): number {
  // crypto exists in browsers, workers and Node 20; Math.random is only a fallback.
  if (globalThis.crypto?.getRandomValues) return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
  return Math.floor(Math.random() * (MAX_SEED + 1));
}

const PREFERENCES: readonly BackendPreference[] = ['auto', 'webgpu', 'wasm'];

export function isBackendPreference(value: unknown): value is BackendPreference {
  return PREFERENCES.includes(value as BackendPreference);
}

/** The `?backend=` URL parameter when it names a valid preference, else 'auto'. */
export function backendFromSearch(search: string): BackendPreference {
  const value = new URLSearchParams(search).get('backend');
  return isBackendPreference(value) ? value : 'auto';
}

export const DEFAULT_HUB = 'https://huggingface.co';

/**
 * The model to load from the page URL: `?model=<owner/repo>` (with `?revision=`, default main, and
 * `?hub=`, default the Hugging Face Hub) or `?model=<folder URL>`; without it, the embedded model.
 * Returns a folder URL ending in '/', or an error text for a value that names no model.
 */
export function modelUrlFromSearch(search: string, embedded: string): { url: string } | { error: string } {
  const q = new URLSearchParams(search);
  const model = q.get('model')?.trim();
  if (!model) return { url: embedded };
  if (/^(https?:)?\/\//.test(model) || model.startsWith('/')) return { url: model.endsWith('/') ? model : `${model}/` };
  if (!/^[\w.-]+\/[\w.-]+$/.test(model)) return { error: `"${model}" is neither a Hub repo id (owner/name) nor a model folder URL.` };
  const revision = q.get('revision')?.trim() || 'main';
  const hub = (q.get('hub')?.trim() || DEFAULT_HUB).replace(/\/+$/, '');
  return { url: `${hub}/${model}/resolve/${encodeURIComponent(revision)}/` };
}
