import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GENERATE_FIELDS } from '../engine/schema';
import { FORM_STORAGE_KEY, formValuesOf, parseFormValues, readSavedForm, saveFormOnChange, type FormStorage } from './persist';
import { createStudioStore, type StudioStore } from './store';
import { initialData } from './state';

/** localStorage in memory; `failWrites` plays a full quota, `failReads` a blocked one. */
class MemoryStorage implements FormStorage {
  items = new Map<string, string>();
  failWrites = false;
  failReads = false;
  getItem(key: string) {
    if (this.failReads) throw new DOMException('blocked', 'SecurityError');
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    if (this.failWrites) throw new DOMException('full', 'QuotaExceededError');
    this.items.set(key, value);
  }
}

let storage: MemoryStorage;
let store: StudioStore;
let stop: () => void;

beforeEach(() => {
  storage = new MemoryStorage();
  store = createStudioStore('auto');
  stop = saveFormOnChange(store, storage);
});

afterEach(() => {
  stop();
  vi.unstubAllGlobals();
});

/** A reload: a fresh store with the saved form applied, as main.tsx does. */
function reload(): StudioStore {
  const next = createStudioStore('auto');
  next.getState().applyForm(readSavedForm(storage));
  return next;
}

describe('the form across a reload', () => {
  it('comes back with every value the user set', () => {
    const s = store.getState();
    s.setPrompt('a red apple');
    s.setNegativePrompt('blurry');
    s.setNumInferenceSteps(12);
    s.setGuidanceScale(3.5);
    s.setSeed(1234);
    s.setRandomizeSeed(true);
    s.setNumImagesPerPrompt(3);
    s.setLivePreview(false);
    s.setStrength(0.35);
    s.setSize(64, 64);
    const after = reload().getState();
    expect(formValuesOf(after)).toEqual({
      prompt: 'a red apple',
      negativePrompt: 'blurry',
      numInferenceSteps: 12,
      guidanceScale: 3.5,
      seed: 1234,
      randomizeSeed: true,
      numImagesPerPrompt: 3,
      livePreview: false,
      strength: 0.35,
      size: [64, 64],
      backendPreference: 'auto',
    });
  });

  it("keeps model defaults as defaults: an untouched setting follows the next model's", () => {
    store.getState().setPrompt('x');
    const saved = JSON.parse(storage.items.get(FORM_STORAGE_KEY)!);
    expect(saved).not.toHaveProperty('numInferenceSteps');
    expect(saved).not.toHaveProperty('negativePrompt');
    expect(reload().getState().numInferenceSteps).toBeNull();
  });

  it('saves only when the form changes, not on engine events', () => {
    const setItem = vi.spyOn(storage, 'setItem');
    store.setState({ notice: 'Done in 1.0 s' });
    expect(setItem).not.toHaveBeenCalled();
    store.getState().setSeed(5);
    expect(setItem).toHaveBeenCalledTimes(1);
  });

  it('clamps saved values like typed ones', () => {
    storage.items.set(FORM_STORAGE_KEY, JSON.stringify({ numInferenceSteps: 500, guidanceScale: 4.3, seed: -1, numImagesPerPrompt: 99, strength: 3, prompt: 'y'.repeat(GENERATE_FIELDS.prompt.maxLength + 1) }));
    const s = reload().getState();
    expect(s).toMatchObject({ numInferenceSteps: GENERATE_FIELDS.numInferenceSteps.max, guidanceScale: 4.5, seed: 0, numImagesPerPrompt: GENERATE_FIELDS.numImagesPerPrompt.max, strength: 1 });
    expect(s.prompt).toHaveLength(GENERATE_FIELDS.prompt.maxLength);
  });

  it.each([
    ['not JSON', '{"prompt": '],
    ['an array', '[1, 2]'],
    ['a string', '"hello"'],
    ['null', 'null'],
  ])('ignores a corrupt entry (%s)', (_, json) => {
    storage.items.set(FORM_STORAGE_KEY, json);
    expect(formValuesOf(reload().getState())).toEqual(formValuesOf(initialData()));
  });

  it('drops values of the wrong type and keeps the rest', () => {
    expect(
      parseFormValues(JSON.stringify({ prompt: 5, negativePrompt: 'ok', seed: '12', numInferenceSteps: null, guidanceScale: Infinity, randomizeSeed: 'yes', size: [64], backendPreference: 'cuda', livePreview: false, extra: 1 })),
    ).toEqual({ negativePrompt: 'ok', livePreview: false });
    expect(parseFormValues(JSON.stringify({ size: [64, '64'] }))).toEqual({});
  });

  it('works on without storage: blocked reads, full quota', () => {
    storage.failReads = true;
    expect(readSavedForm(storage)).toEqual({});
    expect(readSavedForm(null)).toEqual({});
    storage.failWrites = true;
    expect(() => store.getState().setPrompt('still works')).not.toThrow();
    expect(store.getState().prompt).toBe('still works');
  });

  it('restores a saved backend preference', () => {
    vi.stubGlobal('location', new URL('http://localhost:5173/'));
    vi.stubGlobal('history', { state: null, replaceState: vi.fn() });
    store.getState().setBackendPreference('wasm');
    expect(reload().getState().backendPreference).toBe('wasm');
  });
});
