/**
 * The whole engine in Node on the shipped model (onnxruntime-web's WASM build for the graphs,
 * transformers.js for text), against the PyTorch golden runs from training/fixtures.py.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from './engine';
import { MemoryCache } from './cache';
import { createRunner } from './sessions';
import { f32, fileFetcher, loadFixtures, MANIFEST_PATH, MODEL_DIR, maxAbsDiff, psnr, rgbOf, u8 } from './testing/fixtures';
import { PromptEncoder } from './textEncoder';
import fs from 'node:fs';
import path from 'node:path';

const fx = loadFixtures();
const engine = new Engine({ cache: new MemoryCache(), fetcher: fileFetcher });

beforeAll(async () => {
  await engine.load(MANIFEST_PATH, 'wasm');
});
afterAll(() => engine.dispose());

function readFolder(dir: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.set(path.relative(dir, p), new Uint8Array(fs.readFileSync(p)));
    }
  };
  walk(dir);
  return files;
}

describe('text encoder (transformers.js)', () => {
  let enc: PromptEncoder;
  beforeAll(async () => {
    const dir = path.join(MODEL_DIR, 'text_encoder');
    enc = await PromptEncoder.load({ root: path.dirname(MODEL_DIR) + '/', folder: `${path.basename(MODEL_DIR)}/text_encoder`, files: readFolder(dir) }, fx.max_length);
  });
  afterAll(() => enc.dispose());

  it('gives the same token ids as the Python tokenizer for every fixture prompt', () => {
    for (const t of fx.tokens) expect(enc.tokenize([t.prompt])[0], JSON.stringify(t.prompt.slice(0, 40))).toEqual(t.ids);
  });

  it('gives the same embeddings as PyTorch', async () => {
    for (const t of fx.text) {
      const out = await enc.encode([t.prompt]);
      expect(out.hiddenStates.dims).toEqual(t.last_hidden_state.dims);
      expect(maxAbsDiff(out.hiddenStates.data, f32(t.last_hidden_state))).toBeLessThan(1e-4);
      expect(maxAbsDiff(out.pooled.data, f32(t.text_embeds))).toBeLessThan(1e-4);
    }
  });
});

describe('graphs in onnxruntime-web (WASM)', () => {
  it('transformer forward matches PyTorch', async () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(MODEL_DIR, 'transformer.onnx')));
    const r = await createRunner(bytes, 'transformer.onnx', 'wasm', ['hidden_states']);
    const feeds = Object.fromEntries(Object.entries(fx.transformer.inputs).map(([k, t]) => [k, { data: f32(t), dims: t.dims }]));
    const out = await r.run(feeds);
    expect(out.out_hidden_states.dims).toEqual(fx.transformer.out_hidden_states.dims);
    expect(maxAbsDiff(out.out_hidden_states.data, f32(fx.transformer.out_hidden_states))).toBeLessThan(1e-4);
    await r.dispose();
  });

  it('VAE decoder matches PyTorch', async () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(MODEL_DIR, 'vae_decoder.onnx')));
    const r = await createRunner(bytes, 'vae_decoder.onnx', 'wasm', ['latent_sample']);
    const out = await r.run({ latent_sample: { data: f32(fx.vae.latent_sample), dims: fx.vae.latent_sample.dims } });
    expect(maxAbsDiff(out.sample.data, f32(fx.vae.sample))).toBeLessThan(1e-4);
    await r.dispose();
  });
});

describe('full pipeline', () => {
  it.each(fx.runs.map((r, i) => [i, r] as const))('golden run %i matches PyTorch (latents and image)', async (_i, run) => {
    const steps: number[] = [];
    const out = await engine.generate(
      { prompt: run.prompt, negativePrompt: run.negativePrompt, seed: run.seed, numInferenceSteps: run.numInferenceSteps, guidanceScale: run.guidanceScale },
      { onStep: (s) => steps.push(s) },
    );
    expect(run.shift).toBe(engine.manifest!.scheduler.shift);
    expect(steps).toEqual(Array.from({ length: run.numInferenceSteps }, (_, i) => i + 1));
    const diff = maxAbsDiff(out.latents, f32(run.latents));
    expect(diff).toBeLessThanOrEqual(1e-3);
    const p = psnr(rgbOf(out.image.pixels), u8(run.rgb));
    expect(p).toBeGreaterThanOrEqual(40);
    console.log(`run ${_i}: latents max abs diff ${diff.toExponential(2)}, image PSNR ${p.toFixed(1)} dB, ${out.timings.msPerStep.toFixed(1)} ms/step`);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const p = { prompt: fx.runs[0].prompt, negativePrompt: '', numInferenceSteps: 2, guidanceScale: 1 };
    const a = await engine.generate({ ...p, seed: 1 });
    const b = await engine.generate({ ...p, seed: 1 });
    const c = await engine.generate({ ...p, seed: 2 });
    expect(Buffer.from(a.image.pixels).equals(Buffer.from(b.image.pixels))).toBe(true);
    expect(Buffer.from(a.image.pixels).equals(Buffer.from(c.image.pixels))).toBe(false);
  });
});
