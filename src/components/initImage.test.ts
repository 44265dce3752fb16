import { describe, expect, it } from 'vitest';
import { copyText } from './clipboard';
import { centerCrop } from './initImage';

describe('centerCrop', () => {
  it.each([
    // source w, h -> target w, h: the largest centered part with the target's aspect ratio
    [[64, 64], [64, 64], { sx: 0, sy: 0, sw: 64, sh: 64 }],
    [[200, 100], [64, 64], { sx: 50, sy: 0, sw: 100, sh: 100 }],
    [[100, 300], [64, 64], { sx: 0, sy: 100, sw: 100, sh: 100 }],
    [[1920, 1080], [512, 512], { sx: 420, sy: 0, sw: 1080, sh: 1080 }],
    [[1000, 1000], [768, 512], { sx: 0, sy: 166, sw: 1000, sh: 667 }],
    [[3, 1], [1, 1], { sx: 1, sy: 0, sw: 1, sh: 1 }],
  ] as const)('%j to %j', ([sw, sh], [w, h], want) => {
    expect(centerCrop(sw, sh, w, h)).toEqual(want);
  });
});

describe('copyText', () => {
  it('says whether the clipboard took the text', async () => {
    const written: string[] = [];
    expect(await copyText('a', { writeText: async (t) => void written.push(t) })).toBe(true);
    expect(written).toEqual(['a']);
    expect(await copyText('b', { writeText: () => Promise.reject(new DOMException('denied', 'NotAllowedError')) })).toBe(false);
    expect(await copyText('c', undefined)).toBe(false);
  });
});
