import { describe, expect, it } from 'vitest';
import { assembleSD3Conditioning } from './adapters';

const t = (dims: number[], f: (i: number) => number) => ({ dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => f(i)) });

describe('SD3 conditioning layout', () => {
  const L = t([2, 3, 4], (i) => 1 + i); // B=2, 3 tokens, width 4 ("CLIP-L")
  const G = t([2, 3, 5], (i) => 1000 + i); // width 5 ("CLIP-G")
  const pl = t([2, 4], (i) => -1 - i), pg = t([2, 5], (i) => -100 - i);

  it('puts L then G on the feature axis, zero-pads to the T5 width, then appends T5 tokens', () => {
    const T5 = t([2, 2, 12], (i) => 5000 + i);
    const c = assembleSD3Conditioning({ hidden: L, pooled: pl }, { hidden: G, pooled: pg }, T5, 12);
    expect(c.context.dims).toEqual([2, 5, 12]);
    const at = (b: number, tok: number, f: number) => c.context.data[(b * 5 + tok) * 12 + f];
    expect(at(1, 2, 0)).toBe(L.data[(1 * 3 + 2) * 4]);
    expect(at(1, 2, 4)).toBe(G.data[(1 * 3 + 2) * 5]);
    expect(at(1, 2, 9)).toBe(0);
    expect(at(1, 2, 11)).toBe(0);
    expect(at(1, 3, 0)).toBe(T5.data[(1 * 2 + 0) * 12]);
    expect(c.pooled.dims).toEqual([2, 9]);
    expect(Array.from(c.pooled.data.subarray(9, 18))).toEqual([...pl.data.subarray(4, 8), ...pg.data.subarray(5, 10)]);
  });

  it('without T5 appends zero tokens of the CLIP length', () => {
    const c = assembleSD3Conditioning({ hidden: L, pooled: pl }, { hidden: G, pooled: pg }, null, 12);
    expect(c.context.dims).toEqual([2, 6, 12]);
    expect(c.context.data.subarray((0 * 6 + 3) * 12, (0 * 6 + 6) * 12).every((x) => x === 0)).toBe(true);
  });

  it('refuses encoders that disagree', () => {
    const G2 = t([2, 4, 5], () => 0);
    expect(() => assembleSD3Conditioning({ hidden: L, pooled: pl }, { hidden: G2, pooled: pg }, null, 12)).toThrow(/disagree/);
  });
});
