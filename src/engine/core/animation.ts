/**
 * Seed-variation and prompt-interpolation animations, made as one batch (frame i of N at
 * t_i = i / (N - 1)): the initial noise and the text conditioning of each frame. The same formulas
 * as training/webdit/pipeline.py (slerp, lerp, animation_inputs), in float64 and stored float32.
 */
import { EngineError } from '../errors';
import type { ResolvedGenerateParams } from '../schema';
import { gatherRows } from './batch';
import type { Conditioning, LoadedModel } from './family';
import { gaussianNoise } from './noise';
import type { FloatTensor } from './tensor';

/** Nearly parallel noises: the arc is a line, and sin(theta) ~ 0 would divide by ~0. */
export const SLERP_DOT_THRESHOLD = 0.9995;

/** t_i = i / (frames - 1). */
export function animationTs(frames: number): number[] {
  return Array.from({ length: frames }, (_, i) => i / (frames - 1));
}

/** Spherical interpolation of two vectors (the flattened noises): t = 0 gives exactly a, t = 1 exactly b. */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  if (a.length !== b.length) throw new Error(`slerp of ${a.length} and ${b.length} values`);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const cos = dot / (Math.sqrt(na) * Math.sqrt(nb));
  const out = new Float32Array(a.length);
  if (Math.abs(cos) > SLERP_DOT_THRESHOLD) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
    return out;
  }
  const theta = Math.acos(cos);
  const s = Math.sin(theta);
  const wa = Math.sin((1 - t) * theta) / s;
  const wb = Math.sin(t * theta) / s;
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i] + wb * b[i];
  return out;
}

/** (1 - t) a + t b, element-wise. */
export function lerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
  return out;
}

/**
 * The batch's initial noise [B, C, h, w]: image b from seed + b; a seed animation's frame i from
 * slerp(noise(seed), noise(to), t_i); a prompt animation's every frame from noise(seed).
 */
export function batchNoise(params: ResolvedGenerateParams, [C, h, w]: readonly [number, number, number]): Float32Array {
  const { numImagesPerPrompt: B, seed, animation } = params;
  const per = C * h * w;
  const noise = new Float32Array(B * per);
  if (animation?.kind === 'seed') {
    const a = gaussianNoise(seed >>> 0, per);
    const b = gaussianNoise(animation.to >>> 0, per);
    animationTs(B).forEach((t, i) => noise.set(slerp(a, b, t), i * per));
  } else if (animation?.kind === 'prompt') {
    const a = gaussianNoise(seed >>> 0, per);
    for (let i = 0; i < B; i++) noise.set(a, i * per);
  } else {
    for (let b = 0; b < B; b++) noise.set(gaussianNoise((seed + b) >>> 0, per), b * per);
  }
  return noise;
}

/**
 * The batch's conditioning, as the transformer takes it: [uncond x B, cond x B] with CFG, [cond x B]
 * without. A prompt animation's cond row i is lerp(encode(prompt), encode(to), t_i) for every tensor
 * the family's text encoders give (hidden states and pooled alike).
 */
export async function batchConditioning(model: LoadedModel, params: ResolvedGenerateParams, cfg: boolean): Promise<Conditioning> {
  const { numImagesPerPrompt: B, animation } = params;
  const uncond = cfg ? [params.negativePrompt] : [];
  if (animation?.kind !== 'prompt') {
    const encoded = await model.encodePrompts([...uncond, params.prompt]);
    const rows = cfg ? [...Array(B).fill(0), ...Array(B).fill(1)] : Array(B).fill(0);
    return Object.fromEntries(Object.entries(encoded).map(([k, t]) => [k, gatherRows(t, rows)]));
  }
  const encoded = await model.encodePrompts([...uncond, params.prompt, animation.to]);
  const a = uncond.length;
  const ts = animationTs(B);
  return Object.fromEntries(
    Object.entries(encoded).map(([k, t]): [string, FloatTensor] => {
      const [, ...rest] = t.dims;
      const n = t.data.length / t.dims[0];
      const from = t.data.subarray(a * n, (a + 1) * n);
      const to = t.data.subarray((a + 1) * n, (a + 2) * n);
      if (from.length !== to.length || to.length !== n) {
        throw new EngineError('RuntimeError', `The text encoder gave "${k}" of different sizes for the two prompts.`, 'Use a model whose text conditioning has a fixed length.');
      }
      const data = new Float32Array((a + 1) * B * n);
      if (cfg) for (let i = 0; i < B; i++) data.set(t.data.subarray(0, n), i * n);
      ts.forEach((ti, i) => data.set(lerp(from, to, ti), (a * B + i) * n));
      return [k, { data, dims: [data.length / n, ...rest] }];
    }),
  );
}
