/**
 * Text -> image, written out step by step (DESIGN.md §2-3). No ORT and no DOM here: graphs come
 * in as GraphRunners, text as a FamilyAdapter, so Node tests run this exact code.
 */
import type { FamilyAdapter } from './adapters';
import type { ModelManifest } from './manifest';
import type { GenerateParams, GenerateTimings } from './protocol';
import type { GraphRunner } from './tensor';
import { applyGuidance, duplicateBatch, usesGuidance } from './guidance';
import { initialLatents } from './noise';
import { eulerStep, getSigmas, getTimesteps } from './scheduler';
import { CancelledError } from './errors';

export interface PipelineParts {
  manifest: ModelManifest;
  adapter: FamilyAdapter;
  transformer: GraphRunner;
  vaeDecoder: GraphRunner;
}

export interface PipelineHooks {
  /** Checked before every step; when it says stop, the run ends with CancelledError. */
  isCancelled?: () => boolean;
  onStep?: (step: number, total: number, msPerStep: number) => void;
}

export interface PipelineOutput {
  latents: Float32Array;
  /** RGBA, width * height * 4. */
  pixels: Uint8ClampedArray;
  width: number;
  height: number;
  timings: GenerateTimings;
}

const now = () => performance.now();

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export async function runPipeline(parts: PipelineParts, params: GenerateParams, hooks: PipelineHooks = {}): Promise<PipelineOutput> {
  const { manifest, adapter, transformer, vaeDecoder } = parts;
  const N = params.numInferenceSteps;
  const cfg = usesGuidance(params.guidanceScale);
  const t0 = now();

  // 1. encode the prompt (and the negative prompt, as the uncond half of the CFG batch)
  const cond = await adapter.encode(cfg ? [params.negativePrompt, params.prompt] : [params.prompt]);
  const batch = cfg ? 2 : 1;
  const t1 = now();

  // 2. prepare the seeded initial latents [1, C, h, w]
  const [C, h, w] = adapter.latentShape();
  const latents = initialLatents(params.seed, [1, C, h, w]);

  // 3. shifted sigmas, and the timesteps the model sees
  const sigmas = getSigmas(N, manifest.scheduler.shift, manifest.scheduler.num_train_timesteps);

  const timesteps = getTimesteps(sigmas, manifest.scheduler.num_train_timesteps);

  // 4. denoise: Euler steps along the predicted velocity, CFG as one batch of 2
  for (let i = 0; i < N; i++) {
    // ORT's awaits resolve as microtasks: give the worker a macrotask turn so a cancel message lands
    await yieldToEventLoop();
    if (hooks.isCancelled?.()) throw new CancelledError(i, N);
    const ts = timesteps[i];
    const out = await transformer.run({
      hidden_states: { data: cfg ? duplicateBatch(latents) : latents, dims: [batch, C, h, w] },
      encoder_hidden_states: cond.context,
      pooled_projections: cond.pooled,
      timestep: { data: new Float32Array(batch).fill(ts), dims: [batch] },
    });
    const v = out.out_hidden_states ?? Object.values(out)[0];
    eulerStep(latents, cfg ? applyGuidance(v.data, params.guidanceScale) : v.data, sigmas[i], sigmas[i + 1]);
    hooks.onStep?.(i + 1, N, (now() - t1) / (i + 1));
  }
  const t2 = now();

  // 5. decode: undo the latent normalisation, then the VAE decoder -> [1, 3, H, W] in [-1, 1]
  const z = latents.map((x) => x / manifest.scaling_factor + manifest.shift_factor);
  const dec = await vaeDecoder.run({ latent_sample: { data: z, dims: [1, C, h, w] } });
  const sample = dec.sample ?? Object.values(dec)[0];
  const [, , H, W] = sample.dims;
  const t3 = now();

  // 6. to RGBA bytes for the canvas
  const pixels = toRGBA(sample.data, H, W);
  const total = now() - t0;
  return {
    latents,
    pixels,
    width: W,
    height: H,
    timings: { encodeMs: t1 - t0, denoiseMs: t2 - t1, decodeMs: t3 - t2, totalMs: total, msPerStep: (t2 - t1) / N },
  };
}

/** [3, H, W] in [-1, 1] (planar) -> interleaved RGBA bytes, as training/sample.py's to_uint8. */
export function toRGBA(chw: Float32Array, H: number, W: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(H * W * 4);
  const plane = H * W;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const x = Math.min(1, Math.max(-1, chw[c * plane + p]));
      out[p * 4 + c] = Math.round((x + 1) * 127.5);
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}
