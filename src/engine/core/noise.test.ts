import { describe, expect, it } from 'vitest';
import { gaussianNoise, initialLatents, mulberry32 } from './noise';
import { f32, loadFixtures } from '../testing/fixtures';

describe('seeded noise', () => {
  it('is bit-identical to the Python generator for every fixture seed', () => {
    for (const n of loadFixtures().noise) {
      const ours = initialLatents(n.seed, n.shape);
      const ref = f32(n.latents);
      expect(ours.length).toBe(ref.length);
      expect(Buffer.from(ours.buffer).equals(Buffer.from(ref.buffer)), `seed ${n.seed}`).toBe(true);
    }
  });

  it('uses seed + b for image b of a batch', () => {
    const batch = initialLatents(9, [2, 2, 2, 2]);
    expect(Array.from(batch.subarray(8))).toEqual(Array.from(gaussianNoise(10, 8)));
  });

  it('draws uniforms in [0, 1) and normals with unit variance', () => {
    const next = mulberry32(123);
    for (let i = 0; i < 1000; i++) {
      const u = next();
      expect(u >= 0 && u < 1).toBe(true);
    }
    const z = gaussianNoise(5, 20000);
    const mean = z.reduce((a, b) => a + b, 0) / z.length;
    const variance = z.reduce((a, b) => a + (b - mean) ** 2, 0) / z.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });
});
