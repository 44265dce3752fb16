/**
 * The whole engine in Node on a model folder (the shipped one, or CI's freshly trained toy model
 * via WEBDIT_MODEL_DIR / WEBDIT_FIXTURES): onnxruntime-web's WASM build for the graphs,
 * transformers.js for the tokenizer, against the PyTorch golden values from training/fixtures.py.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILIES } from '../families';
import { resolveParams, openModel, settleSteps, type Current } from './engine';
import { FileStore } from './files';
import { img2imgStart, runPipeline } from './pipeline';
import { createRunner } from './sessions';
import { MemoryStorage } from './storage';
import { f32, fileFetcher, loadFixtures, MODEL_DIR, MODEL_URL, maxAbsDiff, psnr, readManifest, rgbaOf, rgbOf, u8, type FixtureRun } from '../testing/fixtures';
import { sha256Hex } from './sha256';
import type { GeneratedImage } from '../protocol';
import { CancelledError } from '../errors';
import type { InitImage } from '../schema';

const fx = loadFixtures();
let loaded: Current;

beforeAll(async () => {
  loaded = await openModel({ modelUrl: MODEL_URL, backend: 'wasm' }, { store: new FileStore(new MemoryStorage(), fileFetcher), fetcher: fileFetcher, families: FAMILIES, storageFree: async () => null }, new AbortController().signal);
});
afterAll(() => loaded.model.dispose());

const graph = (component: string) => ({ name: component, model: new Uint8Array(fs.readFileSync(path.join(MODEL_DIR, component, 'model.onnx'))) });

/** One run through the engine's own pipeline; returns each image with its final latents. */
async function run(r: FixtureRun, extra: { numImagesPerPrompt?: number; image?: InitImage; strength?: number } = {}) {
  const params = resolveParams(
    { prompt: r.prompt, negativePrompt: r.negativePrompt, seed: r.seed, numInferenceSteps: r.numInferenceSteps, guidanceScale: r.guidanceScale, numImagesPerPrompt: extra.numImagesPerPrompt ?? 1, strength: extra.strength ?? 0.6, previewEvery: 0, image: extra.image },
    { id: 'm', name: 'm', family: 'webdit', ...loaded.model.info },
  );
  const images: { image: GeneratedImage; latents: Float32Array }[] = [];
  const steps: number[] = [];
  const out = await runPipeline(loaded.model, params, extra.image, { onImage: (i, image, latents) => (images[i] = { image, latents }), onStep: (s) => steps.push(s) });
  return { images, steps, out };
}

describe('the fixtures belong to this model folder', () => {
  it('were computed with exactly these graphs (sha256 of each file)', () => {
    const files = readManifest().files;
    expect(Object.keys(fx.model_files).length).toBeGreaterThanOrEqual(3);
    for (const [p, sha] of Object.entries(fx.model_files)) {
      expect(files[p]?.sha256, p).toBe(sha);
      expect(sha256Hex(new Uint8Array(fs.readFileSync(path.join(MODEL_DIR, p)))), p).toBe(sha);
    }
  });
});

describe('text encoding', () => {
  it('gives the same token ids as the Python tokenizer for every fixture prompt', async () => {
    // through the engine's own path: tokenizer + text encoder graph, then compare ids via the graph's input
    const { TextTokenizer } = await import('./tokenizer');
    const dir = path.join(MODEL_DIR, 'tokenizer');
    const tok = TextTokenizer.create(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')), 'tokenizer/');
    for (const t of fx.tokens) expect(Array.from(tok.encode([t.prompt], fx.max_length).data, Number), JSON.stringify(t.prompt.slice(0, 40))).toEqual(t.ids);
  });

  it('gives the same context and pooled embeddings as PyTorch', async () => {
    for (const t of fx.text) {
      const cond = await loaded.model.encodePrompts([t.prompt]);
      expect(cond.encoder_hidden_states.dims).toEqual(t.last_hidden_state.dims);
      expect(maxAbsDiff(cond.encoder_hidden_states.data, f32(t.last_hidden_state))).toBeLessThan(1e-4);
      expect(maxAbsDiff(cond.pooled_projections.data, f32(t.text_embeds))).toBeLessThan(1e-4);
    }
  });
});

describe('graphs in onnxruntime-web (WASM)', () => {
  it('transformer forward matches PyTorch', async () => {
    const r = await createRunner(graph('transformer'), 'wasm', { inputs: ['hidden_states'], outputs: ['out_hidden_states'] });
    const feeds = Object.fromEntries(Object.entries(fx.transformer.inputs).map(([k, t]) => [k, { data: f32(t), dims: t.dims }]));
    const out = await r.run(feeds);
    expect(out.out_hidden_states.dims).toEqual(fx.transformer.out_hidden_states.dims);
    expect(maxAbsDiff(out.out_hidden_states.data, f32(fx.transformer.out_hidden_states))).toBeLessThan(1e-4);
    await r.dispose();
  });

  it('VAE decoder matches PyTorch', async () => {
    const r = await createRunner(graph('vae_decoder'), 'wasm', { inputs: ['latent_sample'], outputs: ['sample'] });
    const out = await r.run({ latent_sample: { data: f32(fx.vae.latent_sample), dims: fx.vae.latent_sample.dims } });
    expect(maxAbsDiff(out.sample.data, f32(fx.vae.sample))).toBeLessThan(1e-4);
    await r.dispose();
  });

  it('VAE encoder matches PyTorch', async () => {
    expect(fx.vae_encoder, 'the fixtures have no vae_encoder: re-run training/fixtures.py').toBeDefined();
    const e = fx.vae_encoder!;
    const r = await createRunner(graph('vae_encoder'), 'wasm', { inputs: ['sample'], outputs: ['latent_sample'] });
    const out = await r.run({ sample: { data: f32(e.sample), dims: e.sample.dims } });
    expect(maxAbsDiff(out.latent_sample.data, f32(e.latent_sample))).toBeLessThan(1e-4);
    await r.dispose();
  });

  it('a graph that breaks the contract is refused with the names it has', async () => {
    await expect(createRunner(graph('vae_decoder'), 'wasm', { inputs: ['latent_sample'], outputs: ['images'] })).rejects.toThrow(/missing output\(s\) images \(it has sample\)/);
  });
});

describe('full pipeline', () => {
  it.each(fx.runs.map((r, i) => [i, r] as const))('golden run %i matches PyTorch (latents and image)', async (i, r) => {
    expect(r.shift).toBe(loaded.info.scheduler.shift);
    const { images, steps, out } = await run(r);
    expect(steps).toEqual(Array.from({ length: r.numInferenceSteps }, (_, k) => k + 1));
    const diff = maxAbsDiff(images[0].latents, f32(r.latents));
    expect(diff).toBeLessThanOrEqual(1e-3);
    const p = psnr(rgbOf(images[0].image.pixels), u8(r.rgb));
    expect(p).toBeGreaterThanOrEqual(40);
    console.log(`run ${i}: latents max abs diff ${diff.toExponential(2)}, image PSNR ${p.toFixed(1)} dB, ${out.timings.msPerStep.toFixed(1)} ms/step`);
  });

  it('a batch of 4 gives seeds seed..seed+3, each equal to the single-image run with that seed', async () => {
    const base = { ...fx.runs[0], numInferenceSteps: 4 };
    const batch = await run(base, { numImagesPerPrompt: 4 });
    expect(batch.images).toHaveLength(4);
    for (let b = 0; b < 4; b++) {
      const single = await run({ ...base, seed: base.seed + b });
      const diff = maxAbsDiff(batch.images[b].latents, single.images[0].latents);
      // one batched forward vs four single ones: the same maths, float rounding apart
      expect(diff, `image ${b}`).toBeLessThan(1e-4);
      expect(psnr(rgbOf(batch.images[b].image.pixels), rgbOf(single.images[0].image.pixels))).toBeGreaterThanOrEqual(50);
    }
    // and the four are different pictures
    expect(psnr(rgbOf(batch.images[0].image.pixels), rgbOf(batch.images[1].image.pixels))).toBeLessThan(40);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const r = { ...fx.runs[0], numInferenceSteps: 2, guidanceScale: 1 };
    const a = await run({ ...r, seed: 1 });
    const b = await run({ ...r, seed: 1 });
    const c = await run({ ...r, seed: 2 });
    expect(Buffer.from(a.images[0].image.pixels).equals(Buffer.from(b.images[0].image.pixels))).toBe(true);
    expect(Buffer.from(a.images[0].image.pixels).equals(Buffer.from(c.images[0].image.pixels))).toBe(false);
  });
});

describe('the warm-up on WASM (settleSteps)', () => {
  const warmParams = () => resolveParams(
    { prompt: '', negativePrompt: '', seed: 0, numInferenceSteps: 8, guidanceScale: 4, numImagesPerPrompt: 1, strength: 0.6, previewEvery: 0 },
    { id: 'm', name: 'm', family: 'webdit', ...loaded.model.info },
  );
  it('runs transformer steps until two in a row are within 15% of the fastest (3 to 8 steps), and leaves the model as it was', async () => {
    const before = await run(fx.runs[0]);
    const times = await settleSteps(loaded.model, warmParams(), new AbortController().signal);
    expect(times.length).toBeGreaterThanOrEqual(3);
    expect(times.length).toBeLessThanOrEqual(8);
    const best = Math.min(...times);
    const n = times.length;
    const settled = times[n - 1] <= 1.15 * best && times[n - 2] <= 1.15 * best;
    const overBudget = times.reduce((a, b) => a + b, 0) > 1500;
    expect(settled || overBudget || n === 8).toBe(true);
    if (n < 8 && !overBudget) expect(settled).toBe(true);
    const after = await run(fx.runs[0]);
    expect(Array.from(after.images[0].image.pixels)).toEqual(Array.from(before.images[0].image.pixels));
  });
  it('a cancel of the load during the warm-up is a CancelledError, not a quiet stop', async () => {
    const outer = new AbortController();
    outer.abort();
    await expect(settleSteps(loaded.model, warmParams(), outer.signal)).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('image to image', () => {
  it('golden img2img runs match PyTorch', async () => {
    expect(fx.img2img?.length, 'the fixtures have no img2img runs').toBeGreaterThan(0);
    for (const r of fx.img2img!) {
      const [H, W] = r.init_image.dims;
      const image = { width: W, height: H, data: rgbaOf(u8(r.init_image)) };
      const { images, steps } = await run(r, { image, strength: r.strength });
      expect(steps.length).toBe(r.numInferenceSteps - img2imgStart(r.numInferenceSteps, r.strength));
      expect(maxAbsDiff(images[0].latents, f32(r.latents))).toBeLessThanOrEqual(1e-3);
      expect(psnr(rgbOf(images[0].image.pixels), u8(r.rgb))).toBeGreaterThanOrEqual(40);
    }
  });

  it('a model without a VAE encoder says it cannot start from an image, and a wrong-size image is refused', () => {
    const info = { id: 'm', name: 'm', family: 'webdit', ...loaded.model.info };
    const { width, height } = info.defaults;
    const image = { width, height, data: new Uint8ClampedArray(width * height * 4) };
    const p = { prompt: '', numImagesPerPrompt: 1, strength: 0.6, previewEvery: 0, image };
    expect(() => resolveParams(p, { ...info, imageToImage: false })).toThrow(/no VAE encoder/);
    const small = { width: width / 2, height: height / 2, data: new Uint8ClampedArray((width * height) / 4 * 4) };
    expect(() => resolveParams({ ...p, image: small, width, height }, info)).toThrow(/init image is/);
  });
});
