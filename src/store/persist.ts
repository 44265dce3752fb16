/**
 * The form outlives a reload: it is saved to localStorage on every change and restored before the
 * model starts loading. What is read back is only trusted for its type; the values then go through
 * the store's setters (applyForm), so a stale or hand-edited one is clamped like a typed one.
 */
import { isBackendPreference } from './params';
import type { StudioStore } from './store';
import type { FormValues, StudioData } from './state';

/** Versioned: a later shape gets a new key instead of misreading this one. */
export const FORM_STORAGE_KEY = 'webdit.form.v1';

export type FormStorage = Pick<Storage, 'getItem' | 'setItem'>;

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isSize = (v: unknown): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every(isNumber);

/** The type each saved value must have; anything else (a foreign or corrupt value) is dropped. */
const FORM_TYPES: { [K in keyof FormValues]: (v: unknown) => v is FormValues[K] } = {
  prompt: isString,
  negativePrompt: isString,
  numInferenceSteps: isNumber,
  guidanceScale: isNumber,
  seed: isNumber,
  randomizeSeed: isBoolean,
  numImagesPerPrompt: isNumber,
  livePreview: isBoolean,
  strength: isNumber,
  size: isSize,
  backendPreference: isBackendPreference,
};

const FORM_KEYS = Object.keys(FORM_TYPES) as (keyof FormValues)[];

/** The form's values; a setting still at the model's default (null) is left out, so it keeps following the model. */
export function formValuesOf(s: StudioData): Partial<FormValues> {
  const out: Partial<Record<keyof FormValues, unknown>> = {};
  for (const key of FORM_KEYS) if (s[key] !== null) out[key] = s[key];
  return out as Partial<FormValues>;
}

/** The values of a saved form that have the right type; {} for a missing, corrupt or foreign entry. */
export function parseFormValues(json: string | null): Partial<FormValues> {
  if (json === null) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return {};
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return {};
  const out: Partial<Record<keyof FormValues, unknown>> = {};
  for (const key of FORM_KEYS) {
    const value = (raw as Record<string, unknown>)[key];
    if (FORM_TYPES[key](value)) out[key] = value;
  }
  return out as Partial<FormValues>;
}

/** The saved form, or {} when there is none or storage is off (private windows, blocked cookies). */
export function readSavedForm(storage: FormStorage | null): Partial<FormValues> {
  try {
    return parseFormValues(storage?.getItem(FORM_STORAGE_KEY) ?? null);
  } catch {
    return {};
  }
}

/** Saves the form whenever one of its values changes; returns the unsubscribe function. */
export function saveFormOnChange(store: StudioStore, storage: FormStorage | null): () => void {
  if (!storage) return () => undefined;
  return store.subscribe((state, prev) => {
    if (FORM_KEYS.every((key) => state[key] === prev[key])) return;
    try {
      storage.setItem(FORM_STORAGE_KEY, JSON.stringify(formValuesOf(state)));
    } catch {
      // quota or storage turned off: the form still works, it just will not survive a reload
    }
  });
}

/** window.localStorage, or null where reading it throws (storage blocked for this site). */
export function browserStorage(): FormStorage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}
