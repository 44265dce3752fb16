/**
 * Seeded Gaussian noise, bit-identical to training/sample.py so the browser and PyTorch start from
 * the same latents: mulberry32 over a uint32 seed, then Box-Muller in float64, stored as float32.
 */

export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` standard normals filled z0, z1, z0, z1, ... from one seed. */
export function gaussianNoise(seed: number, n: number): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - next();
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Initial latents [B, C, h, w] in NCHW order; image b of the batch uses seed + b. */
export function initialLatents(seed: number, shape: readonly [number, number, number, number]): Float32Array {
  const [b, c, h, w] = shape;
  const per = c * h * w;
  const out = new Float32Array(b * per);
  for (let i = 0; i < b; i++) out.set(gaussianNoise((seed + i) >>> 0, per), i * per);
  return out;
}
