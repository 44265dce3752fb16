import { LIMITS, type BackendPreference } from '../engine/protocol';

/** Largest seed: the engine's noise generator (mulberry32) takes a uint32. */
export const MAX_SEED = 0xffffffff;
export const GUIDANCE_STEP = 0.5;

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** Integer in LIMITS.steps, or null when `value` is not a number (e.g. an emptied field). */
export function clampSteps(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return clamp(Math.round(value), LIMITS.steps.min, LIMITS.steps.max);
}

/** Nearest multiple of 0.5 in LIMITS.guidance, matching the slider's step. */
export function clampGuidance(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return clamp(Math.round(value / GUIDANCE_STEP) * GUIDANCE_STEP, LIMITS.guidance.min, LIMITS.guidance.max);
}

export function clampSeed(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return clamp(Math.trunc(value), 0, MAX_SEED);
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
