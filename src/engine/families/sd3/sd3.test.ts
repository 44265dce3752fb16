/**
 * The sd3 family on a tiny random SD3 replica in optimum's layout (training/replicas/sd3.py), served
 * by a local server in Hub layout without our manifest, against PyTorch goldens: token ids as
 * diffusers makes them, conditioning with and without T5, and whole runs at two sizes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILIES } from '..';
import { openModel, resolveParams, type Current } from '../../core/engine';
import { FileStore } from '../../core/files';
import { runPipeline } from '../../core/pipeline';
import { MemoryStorage } from '../../core/storage';
import { TextTokenizer } from '../../core/tokenizer';
import { f32, maxAbsDiff, psnr, rgbOf, u8, type FixtureTensor } from '../../testing/fixtures';
import { startHubServer, type HubServer } from '../../testing/hubServer';
import { CLIP_TOKENS, penultimateHiddenState, T5_TOKENS } from '.';
import { clipTokenizerJson } from './clipTokenizer';

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), '__replica__');
const REPLICA = path.join(DIR, 'sd3-tiny');
interface Run {
  name: string;
  prompt: string;
  negativePrompt: string;
  seed: number;
  numInferenceSteps: number;
  guidanceScale: number;
  width: number;
  height: number;
  useT5: boolean;
  noT5Tokens: number | null;
  latents: FixtureTensor;
  rgb: FixtureTensor;
}
const golden = JSON.parse(fs.readFileSync(path.join(DIR, 'sd3-golden.json'), 'utf8')) as {
  tokens: ({ prompt: string } & Record<'tokenizer' | 'tokenizer_2' | 'tokenizer_3', number[]>)[];
  conditioning: { prompt: string; encoder_hidden_states: FixtureTensor; encoder_hidden_states_no_t5: FixtureTensor; pooled_projections: FixtureTensor }[];
  runs: Run[];
};

let hub: HubServer;
const opened: Record<'t5' | 'noT5', Current | null> = { t5: null, noT5: null };
const repoUrl = () => `${hub.url}/webdit/sd3-tiny/resolve/main/`;

async function open(skipComponents: string[] = []) {
  const store = new FileStore(new MemoryStorage(), (u, i) => fetch(u, i));
  return openModel({ modelUrl: repoUrl(), backend: 'wasm', skipComponents }, { store, fetcher: (u, i) => fetch(u, i), families: FAMILIES, storageFree: async () => null }, new AbortController().signal);
}

beforeAll(async () => {
  hub = await startHubServer({ 'webdit/sd3-tiny': REPLICA });
  opened.t5 = await open();
  opened.noT5 = await open(['text_encoder_3', 'tokenizer_3']);
});
afterAll(async () => {
  await opened.t5?.model.dispose();
  await opened.noT5?.model.dispose();
  await hub.close();
});

/** One golden run through the engine's pipeline: final latents within 1e-3, image >= 45 dB. */
async function expectGoldenRun(m: Current, r: Run, label: string) {
  const params = resolveParams(
    { prompt: r.prompt, negativePrompt: r.negativePrompt, seed: r.seed, numInferenceSteps: r.numInferenceSteps, guidanceScale: r.guidanceScale, width: r.width, height: r.height, numImagesPerPrompt: 1, strength: 0.6, previewEvery: 0 },
    m.info,
  );
  let latents: Float32Array | null = null;
  let pixels: Uint8ClampedArray | null = null;
  await runPipeline(m.model, params, undefined, { onImage: (_i, img, l) => ((pixels = img.pixels), (latents = l)) });
  expect(maxAbsDiff(latents!, f32(r.latents))).toBeLessThanOrEqual(1e-3);
  const p = psnr(rgbOf(pixels!), u8(r.rgb));
  expect(p).toBeGreaterThanOrEqual(45);
  console.log(`${label}${r.name}: image PSNR ${p.toFixed(1)} dB vs PyTorch`);
}

function tokenizer(name: string) {
  const dir = path.join(REPLICA, name);
  const read = (f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  return TextTokenizer.create(read('tokenizer.json'), read('tokenizer_config.json'), name);
}

describe('sd3 family: loading a Hub repo by its tree listing', () => {
  it('is detected as sd3, with T5 when present and without it when left out', () => {
    expect(opened.t5!.info.family).toBe('sd3');
    expect(opened.t5!.info.id).toBe('webdit/sd3-tiny');
    expect(opened.t5!.info.defaults).toMatchObject({ numInferenceSteps: 28, guidanceScale: 7, width: 64, height: 64 });
    expect(opened.t5!.info.limits.sizes).toContainEqual([128, 128]);
    expect(opened.t5!.info.imageToImage).toBe(true);
    const requested = hub.requests.filter((u) => u.includes('text_encoder_3/'));
    expect(requested.length).toBeGreaterThan(0);
  });

  it('picks the second-to-last hidden state by name, never a fixed index', () => {
    expect(penultimateHiddenState(['text_embeds', 'last_hidden_state', 'hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3'], 'text_encoder')).toBe('hidden_states.2');
    expect(penultimateHiddenState(['hidden_states.10', 'hidden_states.9', 'hidden_states.11', 'hidden_states.12'], 'x')).toBe('hidden_states.11');
    expect(() => penultimateHiddenState(['text_embeds'], 'text_encoder')).toThrow(/no hidden_states\.N outputs/);
  });
});

describe('sd3 tokenizers equal diffusers (PyTorch side) id for id', () => {
  const toks = { tokenizer: tokenizer('tokenizer'), tokenizer_2: tokenizer('tokenizer_2'), tokenizer_3: tokenizer('tokenizer_3') };
  it.each(golden.tokens.map((t, i) => [i, t] as const))('prompt %i', (_i, t) => {
    expect(Array.from(toks.tokenizer.encode([t.prompt], CLIP_TOKENS, { keepEnd: true }).data, Number)).toEqual(t.tokenizer);
    expect(Array.from(toks.tokenizer_2.encode([t.prompt], CLIP_TOKENS, { keepEnd: true }).data, Number)).toEqual(t.tokenizer_2);
    expect(Array.from(toks.tokenizer_3.encode([t.prompt], T5_TOKENS, { keepEnd: true }).data, Number)).toEqual(t.tokenizer_3);
  });
});

describe("CLIP tokenizers built from the slow tokenizer's files (vocab.json + merges.txt), as SD3 repos ship them", () => {
  const fromSlowFiles = (name: string) => {
    const dir = path.join(REPLICA, name);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    const json = clipTokenizerJson(JSON.parse(fs.readFileSync(path.join(dir, 'vocab.json'), 'utf8')), fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8'), config, `${name}/`);
    return TextTokenizer.create(json, config, name);
  };

  it('give diffusers ids for every golden prompt, the pad token "!" of CLIP-G included', () => {
    const l = fromSlowFiles('tokenizer'), g = fromSlowFiles('tokenizer_2');
    for (const t of golden.tokens) {
      expect(Array.from(l.encode([t.prompt], CLIP_TOKENS, { keepEnd: true }).data, Number), t.prompt.slice(0, 30)).toEqual(t.tokenizer);
      expect(Array.from(g.encode([t.prompt], CLIP_TOKENS, { keepEnd: true }).data, Number), t.prompt.slice(0, 30)).toEqual(t.tokenizer_2);
    }
  });

  it('a repo without tokenizer.json loads and conditions exactly as with it', async () => {
    ['tokenizer/tokenizer.json', 'tokenizer_2/tokenizer.json'].forEach((f) => hub.hidden.add(f));
    try {
      const m = await open();
      const c = golden.conditioning[0];
      const cond = await m.model.encodePrompts([c.prompt]);
      expect(maxAbsDiff(cond.encoder_hidden_states.data, f32(c.encoder_hidden_states))).toBeLessThan(1e-4);
      expect(hub.requests.some((u) => u.endsWith('tokenizer_2/merges.txt'))).toBe(true);
      await m.model.dispose();
    } finally {
      hub.hidden.clear();
    }
  });
});

describe('sd3 conditioning equals PyTorch', () => {
  it.each(golden.conditioning.map((c, i) => [i, c] as const))('prompt %i with and without T5', async (_i, c) => {
    const withT5 = await opened.t5!.model.encodePrompts([c.prompt]);
    expect(withT5.encoder_hidden_states.dims).toEqual(c.encoder_hidden_states.dims);
    expect(maxAbsDiff(withT5.encoder_hidden_states.data, f32(c.encoder_hidden_states))).toBeLessThan(1e-4);
    expect(maxAbsDiff(withT5.pooled_projections.data, f32(c.pooled_projections))).toBeLessThan(1e-4);
    const noT5 = await opened.noT5!.model.encodePrompts([c.prompt]);
    expect(noT5.encoder_hidden_states.dims).toEqual(c.encoder_hidden_states_no_t5.dims);
    expect(maxAbsDiff(noT5.encoder_hidden_states.data, f32(c.encoder_hidden_states_no_t5))).toBeLessThan(1e-4);
  });
});

describe('sd3 runs equal PyTorch', () => {
  // diffusers < 0.36 fills a missing T5 with CLIP's 77 zero tokens (DESIGN.md §3); the golden's
  // 256-token variant (diffusers >= 0.36) is a different image, and WebDiT follows DESIGN.md
  const runs = golden.runs.filter((r) => r.noT5Tokens !== 256);
  it.each(runs.map((r) => [r.name, r] as const))('%s', async (_n, r) => {
    await expectGoldenRun(r.useT5 ? opened.t5! : opened.noT5!, r, '');
  });
});

describe("sd3 in TensorStack's layout (unet/, model.onnx.data, out_sample, batch fixed to 1, fp16 weights)", () => {
  const TS_DIR = path.join(DIR, 'sd3-tensorstack-tiny');
  const tsGolden = JSON.parse(fs.readFileSync(path.join(DIR, 'sd3-tensorstack-golden.json'), 'utf8')) as { runs: (Run & { unetPassesPerStep: number })[] };
  let ts: HubServer;
  let m: Current;
  beforeAll(async () => {
    ts = await startHubServer({ 'TensorStack/sd3-tiny-onnx': TS_DIR });
    const store = new FileStore(new MemoryStorage(), (u, i) => fetch(u, i));
    m = await openModel({ modelUrl: `${ts.url}/TensorStack/sd3-tiny-onnx/resolve/main/`, backend: 'wasm' }, { store, fetcher: (u, i) => fetch(u, i), families: FAMILIES, storageFree: async () => null }, new AbortController().signal);
  });
  afterAll(async () => {
    await m?.model.dispose();
    await ts.close();
  });

  it('loads without fetching the tokenizer graphs it never runs', () => {
    expect(m.info.family).toBe('sd3');
    expect(ts.requests.some((u) => u.includes('/unet/model.onnx.data'))).toBe(true);
    expect(ts.requests.filter((u) => /tokenizer(_\d)?\/model\.onnx$/.test(u))).toEqual([]);
  });

  it.each(tsGolden.runs.filter((r) => r.useT5 && r.width === 64).map((r) => [r.name, r] as const))('%s equals PyTorch, CFG as two batch-1 passes per step', async (_n, r) => {
    expect(r.unetPassesPerStep).toBe(2);
    await expectGoldenRun(m, r, 'tensorstack ');
  });
});
