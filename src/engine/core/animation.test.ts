/**
 * Animations (seed slerp, prompt lerp) through the engine's own pipeline on the shipped model
 * (onnxruntime-web WASM), against PyTorch's goldens from training/animation_fixtures.py; the
 * request checks; the per-step timings; and the cost of live previews, measured and printed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILIES } from '../families';
import { parseGenerateParams, type AnimationSpec, type GenerateRequestParams } from '../schema';
import { Engine, openModel, resolveParams, type Current } from './engine';
import { FileStore } from './files';
import { animationTs, batchConditioning, batchNoise, lerp, slerp, SLERP_DOT_THRESHOLD } from './animation';
import { deviceReport, wasmSimd } from './deviceReport';
import { gaussianNoise } from './noise';
import { runPipeline } from './pipeline';
import { costBoundEvery, PREVIEW_EVERY } from '../../store/params';
import { MemoryStorage } from './storage';
import { f32, fileFetcher, MODEL_DIR, MODEL_URL, maxAbsDiff, psnr, readManifest, rgbOf, u8, type FixtureTensor } from '../testing/fixtures';
import type { GeneratedImage, ImageResult } from '../protocol';

interface AnimationCase {
  kind: 'seed' | 'prompt';
  prompt: string;
  to: number | string;
  negativePrompt: string;
  seed: number;
  frames: number;
  numInferenceSteps: number;
  guidanceScale: number;
  shift: number;
  initial_latents?: FixtureTensor;
  interior_conditioning?: { encoder_hidden_states: FixtureTensor; pooled_projections: FixtureTensor };
  latents: FixtureTensor;
  rgb: FixtureTensor;
}

const FIXTURES = path.resolve(MODEL_DIR, '../../../src/engine/__fixtures__', `${readManifest().id}-animation.json`);
const fx: { model_files: Record<string, string>; animations: AnimationCase[] } = JSON.parse(fs.readFileSync(process.env.WEBDIT_ANIMATION_FIXTURES ?? FIXTURES, 'utf8'));
let loaded: Current;

beforeAll(async () => {
  loaded = await openModel({ modelUrl: MODEL_URL, backend: 'wasm' }, { store: new FileStore(new MemoryStorage(), fileFetcher), fetcher: fileFetcher, families: FAMILIES, storageFree: async () => null }, new AbortController().signal);
});
afterAll(() => loaded.model.dispose());

const info = () => ({ id: 'm', name: 'WebDiT tiny', family: 'webdit', ...loaded.model.info });
const spec = (c: AnimationCase): AnimationSpec => (c.kind === 'seed' ? { kind: 'seed', to: Number(c.to), frames: c.frames } : { kind: 'prompt', to: String(c.to), frames: c.frames });
const request = (c: AnimationCase, extra: GenerateRequestParams = {}): GenerateRequestParams => ({
  prompt: c.prompt, negativePrompt: c.negativePrompt, seed: c.seed, numInferenceSteps: c.numInferenceSteps, guidanceScale: c.guidanceScale, ...extra,
});

async function run(req: GenerateRequestParams) {
  const params = resolveParams(parseGenerateParams(req), info());
  const images: { image: GeneratedImage; latents: Float32Array }[] = [];
  const previews: { index: number; step: number }[] = [];
  // each step's own duration, from the running average the pipeline reports (as the engine does)
  const stepMs: number[] = [];
  let elapsed = 0;
  const out = await runPipeline(loaded.model, params, undefined, {
    onImage: (i, image, latents) => (images[i] = { image, latents }),
    onPreview: (index, step) => previews.push({ index, step }),
    onStep: (step, _total, avg) => {
      stepMs.push(avg * step - elapsed);
      elapsed = avg * step;
    },
  });
  return { params, images, previews, out, stepMs };
}

const seedCases = fx.animations.filter((c) => c.kind === 'seed');
const promptCases = fx.animations.filter((c) => c.kind === 'prompt');

describe('animation goldens belong to this model folder', () => {
  it('were computed with exactly these graphs, and cover both kinds', () => {
    const files = readManifest().files;
    for (const [p, sha] of Object.entries(fx.model_files)) expect(files[p]?.sha256, `${p}: re-run training/animation_fixtures.py`).toBe(sha);
    expect(seedCases.length).toBeGreaterThanOrEqual(2);
    expect(promptCases.length).toBeGreaterThanOrEqual(2);
  });
});

describe('slerp and lerp', () => {
  it('slerp gives exactly a at t=0 and exactly b at t=1, and keeps the norm of two independent noises', () => {
    const a = gaussianNoise(1, 2048);
    const b = gaussianNoise(2, 2048);
    expect(slerp(a, b, 0)).toEqual(a);
    expect(slerp(a, b, 1)).toEqual(b);
    const norm = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
    // independent Gaussians are nearly orthogonal: the midpoint keeps their norm, a lerp loses ~29%
    expect(norm(slerp(a, b, 0.5)) / norm(a)).toBeGreaterThan(0.97);
    expect(norm(lerp(a, b, 0.5)) / norm(a)).toBeLessThan(0.75);
  });

  it('nearly parallel vectors fall back to the straight line', () => {
    const a = new Float32Array([1, 0, 0]);
    const b = new Float32Array([1, 0.001, 0]);
    expect(1 / Math.hypot(1, 0.001)).toBeGreaterThan(SLERP_DOT_THRESHOLD);
    expect(Array.from(slerp(a, b, 0.5))).toEqual(Array.from(lerp(a, b, 0.5)));
  });

  it('frame times are i / (N - 1)', () => {
    expect(animationTs(3)).toEqual([0, 0.5, 1]);
    expect(animationTs(5)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });
});

describe('seed animation', () => {
  it.each(seedCases.map((c, i) => [i, c] as const))('case %i: initial noise equals PyTorch slerp', (_, c) => {
    const params = resolveParams(parseGenerateParams(request(c, { animation: spec(c) })), info());
    const noise = batchNoise(params, loaded.model.latentShape(params.width, params.height));
    expect(maxAbsDiff(noise, f32(c.initial_latents!))).toBeLessThan(1e-6);
  });

  it.each(seedCases.map((c, i) => [i, c] as const))('case %i: every frame equals PyTorch (latents < 1e-4, PSNR >= 45 dB)', async (i, c) => {
    const { images } = await run(request(c, { animation: spec(c) }));
    const per = f32(c.latents).length / c.frames;
    const rgb = u8(c.rgb);
    const px = rgb.length / c.frames;
    expect(images).toHaveLength(c.frames);
    for (let k = 0; k < c.frames; k++) {
      const d = maxAbsDiff(images[k].latents, f32(c.latents).subarray(k * per, (k + 1) * per));
      const p = psnr(rgbOf(images[k].image.pixels), rgb.subarray(k * px, (k + 1) * px));
      console.log(`seed case ${i} frame ${k}: latents max abs diff ${d.toExponential(2)}, PSNR ${p.toFixed(1)} dB`);
      expect(d, `frame ${k}`).toBeLessThan(1e-4);
      expect(p, `frame ${k}`).toBeGreaterThanOrEqual(45);
    }
  });

  it('frame 0 and frame N-1 equal the single runs with seed A and seed B; the middle differs from both', async () => {
    const c = seedCases[0];
    const anim = await run(request(c, { animation: spec(c) }));
    const a = await run(request(c));
    const b = await run(request(c, { seed: Number(c.to) }));
    const last = c.frames - 1;
    expect(maxAbsDiff(anim.images[0].latents, a.images[0].latents)).toBeLessThan(1e-4);
    expect(maxAbsDiff(anim.images[last].latents, b.images[0].latents)).toBeLessThan(1e-4);
    expect(psnr(rgbOf(anim.images[0].image.pixels), rgbOf(a.images[0].image.pixels))).toBeGreaterThanOrEqual(50);
    expect(psnr(rgbOf(anim.images[last].image.pixels), rgbOf(b.images[0].image.pixels))).toBeGreaterThanOrEqual(50);
    const mid = rgbOf(anim.images[1].image.pixels);
    expect(psnr(mid, rgbOf(a.images[0].image.pixels))).toBeLessThan(40);
    expect(psnr(mid, rgbOf(b.images[0].image.pixels))).toBeLessThan(40);
  });
});

describe('prompt animation', () => {
  it.each(promptCases.map((c, i) => [i, c] as const))('case %i: the lerped conditioning equals PyTorch (hidden states and pooled)', async (_, c) => {
    const params = resolveParams(parseGenerateParams(request(c, { animation: spec(c) })), info());
    const cond = await batchConditioning(loaded.model, params, c.guidanceScale > 1);
    const B = c.frames;
    const offset = c.guidanceScale > 1 ? B : 0; // the cond half after the uncond half
    for (const key of ['encoder_hidden_states', 'pooled_projections'] as const) {
      const t = cond[key];
      const n = t.data.length / t.dims[0];
      expect(t.dims[0]).toBe(offset + B);
      const interior = t.data.subarray((offset + 1) * n, (offset + B - 1) * n);
      expect(maxAbsDiff(interior, f32(c.interior_conditioning![key])), key).toBeLessThan(1e-4);
    }
  });

  it.each(promptCases.map((c, i) => [i, c] as const))('case %i: every frame equals PyTorch (latents < 1e-4, PSNR >= 45 dB), all from one seed', async (i, c) => {
    const { images, params } = await run(request(c, { animation: spec(c) }));
    expect(params.numImagesPerPrompt).toBe(c.frames);
    const per = f32(c.latents).length / c.frames;
    const rgb = u8(c.rgb);
    const px = rgb.length / c.frames;
    for (let k = 0; k < c.frames; k++) {
      const d = maxAbsDiff(images[k].latents, f32(c.latents).subarray(k * per, (k + 1) * per));
      const p = psnr(rgbOf(images[k].image.pixels), rgb.subarray(k * px, (k + 1) * px));
      console.log(`prompt case ${i} frame ${k}: latents max abs diff ${d.toExponential(2)}, PSNR ${p.toFixed(1)} dB`);
      expect(d, `frame ${k}`).toBeLessThan(1e-4);
      expect(p, `frame ${k}`).toBeGreaterThanOrEqual(45);
    }
    // the end frames are the two prompts' own images from the same seed
    const b = await run({ ...request(c), prompt: String(c.to) });
    expect(psnr(rgbOf(images[c.frames - 1].image.pixels), rgbOf(b.images[0].image.pixels))).toBeGreaterThanOrEqual(50);
  });
});

describe('animation requests', () => {
  const ok = { prompt: 'a cat', seed: 1 };
  it.each([
    ['1 frame', { ...ok, animation: { kind: 'seed', to: 2, frames: 1 } }, /"animation.frames" must be an integer from 2 to 8, not 1/],
    ['9 frames', { ...ok, animation: { kind: 'seed', to: 2, frames: 9 } }, /from 2 to 8, not 9/],
    ['a negative seed B', { ...ok, animation: { kind: 'seed', to: -1, frames: 3 } }, /must be the second seed, a whole number from 0 to 4294967295, not -1/],
    ['a seed B as text', { ...ok, animation: { kind: 'seed', to: '7', frames: 3 } }, /second seed.*not "7"/],
    ['a prompt B as a number', { ...ok, animation: { kind: 'prompt', to: 5, frames: 3 } }, /must be the second prompt \(a string\), not 5/],
    ['an unknown kind', { ...ok, animation: { kind: 'zoom', to: 5, frames: 3 } }, /"animation.kind" must be 'seed' or 'prompt', not "zoom"/],
    ['an unknown field', { ...ok, animation: { kind: 'seed', to: 2, frames: 3, fps: 4 } }, /Unknown animation field\(s\) "fps"/],
    ['a string', { ...ok, animation: 'seed' }, /"animation" must be an object/],
    ['a batch of 2', { ...ok, numImagesPerPrompt: 2, animation: { kind: 'seed', to: 2, frames: 3 } }, /makes its 3 frames as the batch, so "numImagesPerPrompt" must be 1, not 2/],
    ['seed B = seed A', { ...ok, animation: { kind: 'seed', to: 1, frames: 3 } }, /from seed 1 to the same seed/],
    ['prompt B = prompt A', { ...ok, animation: { kind: 'prompt', to: 'a cat', frames: 3 } }, /from a prompt to the same prompt/],
    ['a 10,001-character prompt B', { ...ok, animation: { kind: 'prompt', to: 'x'.repeat(10_001), frames: 3 } }, /has 10001 characters; the limit is 10000/],
  ])('%s is refused', (_, req, message) => {
    expect(() => parseGenerateParams(req)).toThrow(message);
  });

  it('a model with a smaller batch limit refuses more frames than it makes at once, by name', () => {
    const small = { ...info(), name: 'Small', limits: { ...info().limits, numImagesPerPrompt: { min: 1, max: 4 } } };
    expect(() => resolveParams(parseGenerateParams({ ...ok, animation: { kind: 'seed', to: 2, frames: 6 } }), small)).toThrow(/6 frames is one batch of 6 images; Small makes at most 4 at a time/);
  });

  it('the engine reports each frame with the animation and the first seed, and N step timings', async () => {
    const engine = new Engine({ storage: new MemoryStorage(), fetcher: fileFetcher, storageFree: async () => null });
    await engine.load({ modelUrl: MODEL_URL, backend: 'wasm' }).result;
    const frames: ImageResult[] = [];
    const job = engine.generate({ prompt: 'a cat', seed: 3, numInferenceSteps: 4, guidanceScale: 2, animation: { kind: 'seed', to: 9, frames: 3 } }, (e) => {
      if (e.type === 'image') frames.push(e);
    });
    const result = await job.result;
    expect(result.seeds).toEqual([3, 3, 3]);
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2]);
    for (const f of frames) {
      expect(f.params.animation).toEqual({ kind: 'seed', to: 9, frames: 3 });
      expect(f.params.numImagesPerPrompt).toBe(1);
    }
    const { stepMs } = result.timings;
    expect(stepMs).toHaveLength(4);
    for (const ms of stepMs!) expect(ms).toBeGreaterThan(0);
    // the steps add up to the denoise loop's time up to the last step's report (encode and the final decode are outside it)
    const sum = stepMs!.reduce((s, x) => s + x, 0);
    expect(sum).toBeLessThanOrEqual(result.timings.msPerStep * 4 + 1e-6);
    expect(sum).toBeLessThanOrEqual(result.timings.denoiseMs + 1e-6);
    await engine.dispose();
  });
});

describe('live preview cost', () => {
  it('measures a run with and without previews (printed, not asserted as a timing) and previews every k steps', async () => {
    const steps = loaded.info.defaults.numInferenceSteps;
    const base = { prompt: 'a red apple', seed: 11, numInferenceSteps: steps };
    await run(base); // warm
    // interleaved, best of 2: the machine's load moves while it runs
    const best: Record<number, { ms: number; previews: number; share: number; next: number | null }> = {};
    for (let r = 0; r < 2; r++) {
      for (const previewEvery of [0, PREVIEW_EVERY, 1]) {
        const { out, previews, stepMs } = await run({ ...base, previewEvery });
        // inside the run, where the machine's load is the same: what the preview steps took beyond a plain step
        const plain = stepMs.filter((_, i) => !previews.some((p) => p.step === i + 1)).sort((a, b) => a - b);
        const median = plain[Math.floor(plain.length / 2)];
        const extra = previews.reduce((n, p) => n + Math.max(0, stepMs[p.step - 1] - median), 0);
        if (out.timings.totalMs < (best[previewEvery]?.ms ?? Infinity)) {
          best[previewEvery] = { ms: out.timings.totalMs, previews: previews.length, share: extra / out.timings.totalMs, next: costBoundEvery({ ...out.timings, stepMs, previewEvery }) };
        }
      }
    }
    const [off, every5, every1] = [best[0], best[PREVIEW_EVERY], best[1]];
    const pct = (x: number) => `${(((x - off.ms) / off.ms) * 100).toFixed(1)}%`;
    const share = (x: number) => `${(x * 100).toFixed(1)}%`;
    console.log(
      `preview cost (${steps} steps, WASM, best of 2): none ${off.ms.toFixed(0)} ms; every ${PREVIEW_EVERY} steps (${every5.previews} previews, the studio's first-run default) ${every5.ms.toFixed(0)} ms = ${pct(every5.ms)} wall clock, ${share(every5.share)} of the run measured inside it; ` +
        `every step (${every1.previews} previews, "record trajectory") ${every1.ms.toFixed(0)} ms = ${pct(every1.ms)} wall clock, ${share(every1.share)} inside; the interval the studio picks next (previews <= 10% of the steps): every ${off.next} steps after a run without previews, every ${every5.next} after the default one`,
    );
    expect(off.previews).toBe(0);
    expect(every5.previews).toBe(Math.floor((steps - 1) / 5));
    expect(every1.previews).toBe(steps - 1);
  }, 900_000);
});

describe('device report', () => {
  it('reports WASM SIMD, threads and isolation, and no WebGPU in Node', async () => {
    expect(wasmSimd()).toBe(true);
    const r = await deviceReport(1, undefined);
    expect(r.webgpu).toBeNull();
    expect(r.webgpuMissing).toMatch(/no WebGPU/);
    expect(r.wasm).toMatchObject({ threads: 1, simd: true, crossOriginIsolated: false });
  });

  it('reads the adapter info, features and limits', async () => {
    const gpu = {
      requestAdapter: async () => ({
        info: { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader', isFallbackAdapter: true },
        features: new Set(['timestamp-query', 'shader-f16']),
        limits: { maxBufferSize: 268435456, maxStorageBufferBindingSize: 134217728, maxBindGroups: 4 },
      }),
    };
    const r = await deviceReport(4, gpu);
    expect(r.webgpu).toEqual({
      vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader', isFallbackAdapter: true,
      features: ['shader-f16', 'timestamp-query'], limits: { maxBufferSize: 268435456, maxStorageBufferBindingSize: 134217728 },
    });
    expect((await deviceReport(1, { requestAdapter: async () => null })).webgpuMissing).toBe('no WebGPU adapter available');
  });
});
