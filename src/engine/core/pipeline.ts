/**
 * Text (and optionally an image) -> images, written out step by step (DESIGN.md §3). No ORT and
 * no DOM here: the model comes in as a LoadedModel, so Node tests run this exact code.
 */
import { CancelledError, EngineError } from '../errors';
import type { GenerateTimings, GeneratedImage } from '../protocol';
import type { InitImage, ResolvedGenerateParams } from '../schema';
import { doubleBatch, row } from './batch';
import type { Conditioning, LoadedModel } from './family';
import { gpuTraffic } from './device';
import { denoiseOnDevice } from './deviceSampling';
import { applyGuidance, usesGuidance } from './guidance';
import { batchConditioning, batchNoise } from './animation';
import { eulerStep, getSigmas, getTimesteps } from './scheduler';
import { output, type FloatTensor } from './tensor';

export interface PipelineHooks {
  signal?: AbortSignal;
  onStep?: (step: number, total: number, msPerStep: number) => void;
  /** x0_hat of every image, decoded, every `previewEvery` steps. */
  onPreview?: (index: number, step: number, total: number, image: GeneratedImage) => void;
  onImage?: (index: number, image: GeneratedImage, latents: Float32Array) => void;
}

export interface PipelineOutput {
  timings: GenerateTimings;
}

const now = () => performance.now();

// A macrotask turn that costs no 4 ms: setTimeout(0) is clamped to 4 ms once timers nest 5 deep
// (HTML), and every step after the fifth paid it (9 ms per step of the SD3 replica's 16 ms). A hop
// through a MessageChannel first leaves the timer task chain, so the timeout that follows (which a
// cancel arriving as a message or a timer lands before) is not clamped.
const waiting: (() => void)[] = [];
let channel: MessageChannel | null = null;
function messageTurn(): Promise<void> {
  if (!channel) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => waiting.shift()?.();
    // Node: an open port would keep the process alive
    (channel.port1 as { unref?: () => void }).unref?.();
  }
  const turn = new Promise<void>((resolve) => waiting.push(resolve));
  channel.port2.postMessage(null);
  return turn;
}

async function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel !== 'undefined') await messageTurn();
  await new Promise((resolve) => setTimeout(resolve, 0));
}

/** diffusers' img2img start: k = int(max(N - min(N * strength, N), 0)), in float64 like Python. */
export function img2imgStart(numInferenceSteps: number, strength: number): number {
  const N = numInferenceSteps;
  return Math.trunc(Math.max(N - Math.min(N * strength, N), 0));
}

/** RGBA bytes -> [1, 3, H, W] in [-1, 1], as training/webdit's to_tensor. */
export function fromRGBA(img: InitImage): FloatTensor {
  const { width: W, height: H, data } = img;
  const plane = W * H;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = data[p * 4 + c] / 127.5 - 1;
  return { data: out, dims: [1, 3, H, W] };
}

/** [3, H, W] in [-1, 1] (planar) -> interleaved RGBA bytes, as the recipe's to_uint8. */
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

async function decode(model: LoadedModel, latents: FloatTensor): Promise<GeneratedImage[]> {
  const { scalingFactor, shiftFactor } = model.vae;
  const z = latents.data.map((x) => x / scalingFactor + shiftFactor);
  const sample = output(await model.vaeDecoder.run({ latent_sample: { data: z, dims: latents.dims } }), 'sample', 'vae_decoder');
  const [B, , H, W] = sample.dims;
  const n = 3 * H * W;
  return Array.from({ length: B }, (_, b) => ({ width: W, height: H, pixels: toRGBA(sample.data.subarray(b * n, (b + 1) * n), H, W) }));
}

export async function runPipeline(model: LoadedModel, params: ResolvedGenerateParams, image: InitImage | undefined, hooks: PipelineHooks = {}): Promise<PipelineOutput> {
  const { numInferenceSteps: N, guidanceScale, numImagesPerPrompt: B, width, height, previewEvery } = params;
  const { shift, numTrainTimesteps } = model.info.scheduler;
  const cfg = usesGuidance(guidanceScale);
  const check = (step: number) => {
    if (hooks.signal?.aborted) throw new CancelledError(`Generation (at step ${step} of ${N})`);
  };
  const t0 = now();
  const readbacksAtStart = gpuTraffic.readbacks;

  // 1. encode the prompt (and the negative prompt, as the uncond half of the CFG batch), then
  //    repeat to the batch: [uncond x B, cond x B] with CFG, [cond x B] without (a prompt
  //    animation lerps the cond rows between its two prompts: animation.ts)
  const cond: Conditioning = await batchConditioning(model, params, cfg);
  const t1 = now();

  // 2. seeded initial noise, image b from seed + b (a seed animation slerps two seeds' noise): [B, C, h, w]
  const [C, h, w] = model.latentShape(width, height);
  const per = C * h * w;
  const noise = batchNoise(params, [C, h, w]);
  const latents: FloatTensor = { data: noise, dims: [B, C, h, w] };

  // 3. shifted sigmas and timesteps; image-to-image starts at step k from the noised image
  const sigmas = getSigmas(N, shift, numTrainTimesteps, model.sigmaMin);
  const timesteps = getTimesteps(sigmas, numTrainTimesteps);
  let k = 0;
  if (image) {
    if (!model.vaeEncoder) throw new EngineError('UnsupportedError', 'This model has no VAE encoder, so it cannot start from an image.', 'Remove the init image, or load a model with a vae_encoder.');
    k = img2imgStart(N, params.strength);
    if (k >= N) throw new EngineError('BadRequestError', `Strength ${params.strength} with ${N} steps leaves no step to run.`, 'Raise the strength or the number of steps.');
    // optimum's SD3 encoder returns mean and logvar stacked on channels: the mean is the first C
    const mean = output(await model.vaeEncoder.run({ sample: fromRGBA(image) }), model.vaeEncoderOutput, 'vae_encoder');
    const { scalingFactor, shiftFactor } = model.vae;
    const s = sigmas[k];
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < per; j++) {
        const x0 = (mean.data[j] - shiftFactor) * scalingFactor;
        latents.data[b * per + j] = s * noise[b * per + j] + (1 - s) * x0;
      }
    }
  }

  // 4. denoise: Euler steps along the predicted velocity, CFG as one batch of 2B
  const tDenoise = now();
  const readbacksBeforeDenoise = gpuTraffic.readbacks;
  let denoiseReadbacks = 0;
  const device = model.transformer.device;
  if (device) {
    // WebGPU: latents, noise and conditioning stay on the GPU; CFG + Euler run there (deviceSampling.ts)
    const final = await denoiseOnDevice({
      model, device, latents, cond, cfg, guidanceScale, sigmas, timesteps, k, N,
      wantPreview: (step) => previewEvery > 0 && step < N && (step - k) % previewEvery === 0 && !!hooks.onPreview,
      async beforeStep(i) {
        await yieldToEventLoop();
        check(i);
      },
      async afterStep(step, x0) {
        if (x0) (await decode(model, x0)).forEach((p, b) => hooks.onPreview!(b, step, N, p));
        denoiseReadbacks = gpuTraffic.readbacks - readbacksBeforeDenoise;
        hooks.onStep?.(step, N, (now() - tDenoise) / (step - k));
      },
    });
    latents.data.set(final);
  } else for (let i = k; i < N; i++) {
    // ORT's awaits resolve as microtasks: give the worker a macrotask turn so a cancel message lands
    await yieldToEventLoop();
    check(i);
    if (sigmas[i + 1] === sigmas[i]) {
      // a step from sigma 0 to 0 (sigmaMin 0: Z-Image's 9 steps are 8 passes) moves nothing: no pass
      hooks.onStep?.(i + 1, N, (now() - tDenoise) / (i + 1 - k));
      continue;
    }
    const out = await model.transformer.run(model.transformerFeeds(cfg ? doubleBatch(latents) : latents, timesteps[i], cond));
    const v = output(out, model.velocityOutput, 'transformer').data;
    const velocity = cfg ? applyGuidance(v, guidanceScale) : v;
    const step = i + 1;
    if (previewEvery > 0 && step < N && (step - k) % previewEvery === 0 && hooks.onPreview) {
      // x0_hat = x_i - sigma_i v_i: where this step's straight line lands at sigma 0
      const x0 = latents.data.map((x, j) => x - sigmas[i] * velocity[j]);
      const previews = await decode(model, { data: x0, dims: latents.dims });
      previews.forEach((p, b) => hooks.onPreview!(b, step, N, p));
    }
    eulerStep(latents.data, velocity, sigmas[i], sigmas[i + 1]);
    hooks.onStep?.(step, N, (now() - tDenoise) / (step - k));
  }
  if (!device) denoiseReadbacks = gpuTraffic.readbacks - readbacksBeforeDenoise;
  const t2 = now();
  check(N);

  // 5. decode: undo the latent normalisation, then the VAE decoder -> [B, 3, H, W] in [-1, 1]
  // 6. to RGBA bytes, one image at a time
  const images = await decode(model, latents);
  const t3 = now();
  images.forEach((img, b) => hooks.onImage?.(b, img, row(latents, b).data));
  return {
    timings: {
      encodeMs: t1 - t0, denoiseMs: t2 - t1, decodeMs: t3 - t2, totalMs: now() - t0, msPerStep: (t2 - tDenoise) / Math.max(1, N - k),
      readbacks: gpuTraffic.readbacks - readbacksAtStart, denoiseReadbacks, liveDeviceTensors: gpuTraffic.liveTensors,
    },
  };
}
