import { describe, expect, it } from 'vitest';
import { resolved } from '../store/testUtils';
import { entriesToEvict, formFromEntry, restoreNotes, storageLine } from './entries';

const sized = (...bytes: number[]) => bytes.map((b, i) => ({ id: i + 1, bytes: b }));

describe('entriesToEvict', () => {
  it('keeps everything within both limits', () => {
    expect(entriesToEvict(sized(10, 10, 10), { maxImages: 3, maxBytes: 30 })).toEqual([]);
  });
  it('drops the oldest beyond the image count', () => {
    expect(entriesToEvict(sized(1, 1, 1, 1, 1), { maxImages: 3, maxBytes: 1000 })).toEqual([1, 2]);
  });
  it('drops the oldest until the bytes fit', () => {
    // 50+40+30+20 = 140 > 60: dropping 50 and 40 leaves 50
    expect(entriesToEvict(sized(50, 40, 30, 20), { maxImages: 10, maxBytes: 60 })).toEqual([1, 2]);
  });
  it('never drops the newest, even when it alone is over the byte cap', () => {
    expect(entriesToEvict(sized(5, 500), { maxImages: 10, maxBytes: 100 })).toEqual([1]);
    expect(entriesToEvict([], { maxImages: 1, maxBytes: 1 })).toEqual([]);
  });
});

describe('formFromEntry', () => {
  it('puts back the settings of exactly this image: its seed, fixed, as a batch of one', () => {
    const params = { ...resolved({ prompt: 'a red apple', negativePrompt: 'blurry', numInferenceSteps: 7, guidanceScale: 3.5, seed: 40, numImagesPerPrompt: 3 }, 2), width: 64, height: 48 };
    expect(formFromEntry({ params })).toEqual({
      prompt: 'a red apple',
      negativePrompt: 'blurry',
      numInferenceSteps: 7,
      guidanceScale: 3.5,
      seed: 42,
      randomizeSeed: false,
      numImagesPerPrompt: 1,
      size: [64, 48],
    });
  });
  it('brings back the strength of an image-to-image run', () => {
    const params = { ...resolved({ seed: 1, strength: 0.35 }), imageToImage: true };
    expect(formFromEntry({ params }).strength).toBe(0.35);
  });
});

describe('restoreNotes', () => {
  const params = resolved({ seed: 1 });
  it('says nothing when the same model is loaded (or none yet)', () => {
    expect(restoreNotes({ params, modelId: 'webdit-tiny' }, 'webdit-tiny')).toBe('');
    expect(restoreNotes({ params, modelId: 'webdit-tiny' }, null)).toBe('');
  });
  it('names both models when another one is loaded, and the missing init image', () => {
    const text = restoreNotes({ params: { ...params, imageToImage: true }, modelId: 'sd3-tiny' }, 'webdit-tiny');
    expect(text).toContain('"sd3-tiny"');
    expect(text).toContain('"webdit-tiny" is loaded');
    expect(text).toContain('init image, which history does not keep');
  });
});

describe('storageLine', () => {
  it('says what history holds and what the whole site uses', () => {
    expect(storageLine(1, 900, null)).toBe('1 image, 900 B');
    expect(storageLine(12, 123_456, { usage: 28_100_000, quota: 10_200_000_000 })).toBe('12 images, 123.5 kB · this site uses 28.1 MB of 10.2 GB (the model cache included)');
  });
});
