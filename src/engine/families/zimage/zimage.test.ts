/**
 * The zimage family on tiny random Z-Image-Turbo replicas in the webnn layout, one per graph contract
 * (training/replicas/zimage.py): zimage-tiny (older: fp32 I/O, 5-D latents, `unified_results`) and
 * zimage-tiny-fp16 (newer: fp16 I/O, 4-D latents, `sample`, two weight shards), served by a local
 * server in Hub layout, against PyTorch goldens: the chat-templated token ids, the conditioning, and
 * whole 9-step runs at two sizes; then the repo without its configs, and malformed repos.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectFamily, FAMILIES } from '..';
import { familyContext, openModel, resolveParams, type Current } from '../../core/engine';
import type { LoadedModel } from '../../core/family';
import { FileStore, type Fetcher } from '../../core/files';
import { openFolder } from '../../core/folder';
import { runPipeline } from '../../core/pipeline';
import { getSigmas } from '../../core/scheduler';
import { MemoryStorage } from '../../core/storage';
import { TextTokenizer } from '../../core/tokenizer';
import { f32, maxAbsDiff, psnr, rgbOf, u8, type FixtureTensor } from '../../testing/fixtures';
import { startHubServer, type HubServer } from '../../testing/hubServer';
import type { ResolvedGenerateParams } from '../../schema';
import { chatText, conditioningOutput, MAX_SEQUENCE_LENGTH, transformerT, zimage } from '.';

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), '__replica__');
type Version = 'zimage-tiny' | 'zimage-tiny-fp16';
const VERSIONS: Version[] = ['zimage-tiny', 'zimage-tiny-fp16'];
interface Run {
  name: string;
  version: Version;
  prompt: string;
  negativePrompt: string;
  seed: number;
  numInferenceSteps: number;
  guidanceScale: number;
  width: number;
  height: number;
  sigmas: number[];
  t: number[];
  transformerPasses: number;
  latents: FixtureTensor;
  rgb: FixtureTensor;
}
const golden = JSON.parse(fs.readFileSync(path.join(DIR, 'zimage-golden.json'), 'utf8')) as {
  tokens: { prompt: string; text: string; ids: number[]; untruncated_length: number }[];
  conditioning: { prompt: string; version: Version; encoder_hidden_states: FixtureTensor }[];
  sigmas: { steps: number; shift: number; sigmas: number[]; t: number[] }[];
  runs: Run[];
  sensitivity_psnr_db: Record<string, number>;
};

let hub: HubServer;
const opened = {} as Record<Version, Current>;
const repoUrl = (v: Version) => `${hub.url}/webdit/${v}/resolve/main/`;

async function open(v: Version) {
  const store = new FileStore(new MemoryStorage(), (u, i) => fetch(u, i));
  return openModel({ modelUrl: repoUrl(v), backend: 'wasm' }, { store, fetcher: (u, i) => fetch(u, i), families: FAMILIES, storageFree: async () => null }, new AbortController().signal);
}

/** The error a load ends with (or null when it loads). */
async function loadError(v: Version): Promise<{ name?: string; message: string; action?: string } | null> {
  try {
    const m = await open(v);
    await m.model.dispose();
    return null;
  } catch (e) {
    return e as { name?: string; message: string; action?: string };
  }
}

beforeAll(async () => {
  hub = await startHubServer(Object.fromEntries(VERSIONS.map((v) => [`webdit/${v}`, path.join(DIR, v)])));
  for (const v of VERSIONS) opened[v] = await open(v);
});
afterAll(async () => {
  for (const v of VERSIONS) await opened[v]?.model.dispose();
  await hub.close();
});

function tokenizer(withTemplate = true) {
  const dir = path.join(DIR, 'zimage-tiny', 'tokenizer');
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  if (!withTemplate) delete config.chat_template;
  return TextTokenizer.create(JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')), config, 'tokenizer/');
}

/** A golden run through the engine's pipeline: latents close to PyTorch's, image >= 45 dB, and the transformer passes counted. */
async function expectGoldenRun(model: LoadedModel, r: Run, latentTolerance: number, label = '') {
  const params: ResolvedGenerateParams = {
    prompt: r.prompt, negativePrompt: r.negativePrompt, seed: r.seed, numInferenceSteps: r.numInferenceSteps, guidanceScale: r.guidanceScale,
    width: r.width, height: r.height, numImagesPerPrompt: 1, strength: 0.6, previewEvery: 0, imageToImage: false,
  };
  const transformer = model.transformer;
  let passes = 0;
  const run = transformer.run.bind(transformer);
  transformer.run = (feeds) => (passes++, run(feeds));
  let latents: Float32Array | null = null;
  let pixels: Uint8ClampedArray | null = null;
  try {
    await runPipeline(model, params, undefined, { onImage: (_i, img, l) => ((pixels = img.pixels), (latents = l)) });
  } finally {
    transformer.run = run;
  }
  expect(passes).toBe(r.transformerPasses);
  const diff = maxAbsDiff(latents!, f32(r.latents));
  const p = psnr(rgbOf(pixels!), u8(r.rgb));
  console.log(`${label}${r.name}: image PSNR ${p.toFixed(1)} dB vs PyTorch, latents max diff ${diff.toExponential(1)}`);
  expect(diff).toBeLessThanOrEqual(latentTolerance);
  expect(p).toBeGreaterThanOrEqual(45);
}

describe('zimage family: webnn-layout Hub repos, both graph contracts', () => {
  it.each(VERSIONS)('%s is detected by its graph files (no model_index.json) and offers the Turbo defaults', (v) => {
    const m = opened[v];
    expect(m.info.family).toBe('zimage');
    expect(m.info.id).toBe(`webdit/${v}`);
    expect(m.info.defaults).toMatchObject({ numInferenceSteps: 9, guidanceScale: 1, width: 128, height: 128 });
    expect(m.info.limits.guidanceScale).toEqual({ min: 1, max: 1 });
    expect(m.info.limits.sizes).toEqual(expect.arrayContaining([[64, 64], [128, 128]]));
    expect(m.info.scheduler).toEqual({ shift: 3, numTrainTimesteps: 1000 });
    expect(m.info.imageToImage).toBe(false);
  });

  it('downloads the graphs it runs with every external data shard, and never the scheduler-step graph', () => {
    const got = (v: Version) => hub.requests.filter((u) => u.startsWith(`/webdit/${v}/resolve/main/onnx/`)).map((u) => u.split('/onnx/')[1]);
    expect(got('zimage-tiny')).not.toContain('scheduler_step_model_f16.onnx');
    expect(got('zimage-tiny')).toContain('transformer_model_q4f16.onnx_data');
    expect(got('zimage-tiny-fp16')).toEqual(expect.arrayContaining(['transformer_model_q4f16.onnx_data', 'transformer_model_q4f16.onnx_data_1', 'text_encoder_model_q4f16.onnx_data_1']));
    expect(got('zimage-tiny-fp16')).not.toContain('scheduler_step_model_f16.onnx');
  });

  it('takes the second-to-last hidden state by name or, for a one-output export, that output', () => {
    expect(conditioningOutput(['encoder_hidden_state'], 'te')).toBe('encoder_hidden_state');
    expect(conditioningOutput(['encoder_hidden_states'], 'te')).toBe('encoder_hidden_states');
    expect(conditioningOutput(['last_hidden_state', 'hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3'], 'te')).toBe('hidden_states.2');
    expect(conditioningOutput(['hidden_states.10', 'hidden_states.36', 'hidden_states.35', 'logits'], 'te')).toBe('hidden_states.35');
    expect(() => conditioningOutput(['logits', 'present.0.key'], 'onnx/te.onnx')).toThrow(/onnx\/te\.onnx.*second-to-last/);
  });

  it.each(golden.sigmas.map((s) => [s.steps, s] as const))('%i steps: sigmas end at sigma_min 0 and t = 1 - sigma as diffusers computes it', (_n, s) => {
    const sigmas = getSigmas(s.steps, s.shift, 1000, 0);
    expect(Array.from(sigmas)).toEqual(s.sigmas);
    expect(Array.from(sigmas.slice(0, -1), (x) => transformerT(Math.fround(x * 1000), 1000))).toEqual(s.t);
  });
});

describe('zimage tokens: the chat template and the tokenizer equal diffusers (PyTorch side) id for id', () => {
  const tok = tokenizer();
  it.each(golden.tokens.map((t, i) => [i, t] as const))('prompt %i', (_i, t) => {
    const text = chatText(tok, t.prompt);
    expect(text).toBe(t.text);
    expect(Array.from(tok.encodeUnpadded(text, MAX_SEQUENCE_LENGTH).data, Number)).toEqual(t.ids);
  });

  it('truncates a long prompt at 512 tokens, and writes the same chat text where a tokenizer has no template', () => {
    const long = golden.tokens.find((t) => t.untruncated_length > MAX_SEQUENCE_LENGTH)!;
    expect(long.ids.length).toBe(MAX_SEQUENCE_LENGTH);
    const plain = tokenizer(false);
    for (const t of golden.tokens) expect(chatText(plain, t.prompt)).toBe(t.text);
  });
});

describe('zimage conditioning equals PyTorch (second-to-last hidden state of the chat text)', () => {
  it.each(golden.conditioning.map((c) => [c.version, c.prompt.slice(0, 24), c] as const))('%s: %s', async (v, _p, c) => {
    const cond = await opened[v].model.encodePrompts([c.prompt]);
    expect(cond.encoder_hidden_states.dims).toEqual(c.encoder_hidden_states.dims);
    const want = f32(c.encoder_hidden_states);
    const got = cond.encoder_hidden_states.data;
    if (v === 'zimage-tiny') {
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
    } else {
      // an fp16 output: within one fp16 step of PyTorch's (both round the same fp32 value)
      for (let k = 0; k < want.length; k++) expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(2 ** (Math.floor(Math.log2(Math.abs(want[k]) || 1e-30)) - 10) + 1e-7);
    }
  });
});

describe('zimage runs equal PyTorch: 9 steps = 8 transformer passes, no CFG', () => {
  it.each(golden.runs.map((r) => [r.name, r] as const))('%s', async (_n, r) => {
    const m = opened[r.version];
    // the studio accepts the run as it is (size, steps, guidance within the model's limits)
    expect(() => resolveParams({ prompt: r.prompt, seed: r.seed, numInferenceSteps: r.numInferenceSteps, guidanceScale: r.guidanceScale, width: r.width, height: r.height, numImagesPerPrompt: 1, strength: 0.6, previewEvery: 0 }, m.info)).not.toThrow();
    await expectGoldenRun(m.model, r, 1e-3);
  });

  it("the golden is sensitive: every known mistake moves the image under the 45 dB bar", () => {
    expect(Object.keys(golden.sensitivity_psnr_db)).toEqual(expect.arrayContaining(['last_hidden_state', 'no_chat_template', 'thinking_disabled', 't_equals_sigma', 'velocity_not_negated']));
    for (const [k, db] of Object.entries(golden.sensitivity_psnr_db)) expect(db, k).toBeLessThan(45);
  });
});

describe('zimage without vae/config.json and scheduler_config.json (only the graphs and the tokenizer)', () => {
  it.each(VERSIONS)("%s decodes through the repo's vae_pre_process graph with the default shift, and makes the same image", async (v) => {
    ['vae/config.json', 'scheduler/scheduler_config.json'].forEach((f) => hub.hidden.add(f));
    const fetcher: Fetcher = (u, i) => fetch(u, i);
    const store = new FileStore(new MemoryStorage(), fetcher);
    try {
      // the family's load alone: the studio's warm-up would run at 1024 px, the default size without the VAE config
      const folder = await openFolder(repoUrl(v), store, fetcher);
      expect(detectFamily(folder).name).toBe('zimage');
      const model = await zimage.load(familyContext(store, folder, 'wasm', new AbortController().signal, () => undefined));
      try {
        expect(model.info.defaults.width).toBe(1024);
        expect(model.info.limits.sizes).toEqual(expect.arrayContaining([[512, 512], [1024, 1024]]));
        expect(model.info.scheduler).toEqual({ shift: 3, numTrainTimesteps: 1000 });
        expect(model.vae).toEqual({ scalingFactor: 1, shiftFactor: 0 });
        expect(hub.requests).toContain(`/webdit/${v}/resolve/main/onnx/vae_pre_process_model_f16.onnx`);
        const r = golden.runs.find((x) => x.version === v && x.width === 64)!;
        await expectGoldenRun(model, r, 1e-3, 'no configs: ');
      } finally {
        await model.dispose();
      }
    } finally {
      hub.hidden.clear();
    }
  });
});

describe('malformed Z-Image repos give an error that names the file', () => {
  it.each([
    ['the transformer graph missing', 'zimage-tiny', 'onnx/transformer_model_q4f16.onnx', /lacks onnx\/transformer_model_q4f16\.onnx/],
    ['the tokenizer missing', 'zimage-tiny', 'tokenizer/tokenizer.json', /lacks tokenizer\/tokenizer\.json/],
    ['the second weight shard missing', 'zimage-tiny-fp16', 'onnx/transformer_model_q4f16.onnx_data_1', /onnx\/transformer_model_q4f16\.onnx keeps its weights in onnx\/transformer_model_q4f16\.onnx_data_1/],
    ['the only weight file missing', 'zimage-tiny', 'onnx/text_encoder_model_q4f16.onnx_data', /onnx\/text_encoder_model_q4f16\.onnx_data\b/],
  ] as const)('%s', async (_what, v, file, pattern) => {
    hub.hidden.add(file);
    const before = hub.requests.length;
    try {
      const err = await loadError(v);
      expect(err?.name).toBe('ModelError');
      expect(err?.message).toMatch(pattern);
      expect(err?.action).toBeTruthy();
      if (file.endsWith('.onnx') || file.endsWith('.json')) {
        // refused before any graph was downloaded
        expect(hub.requests.slice(before).filter((u) => /\.onnx(_data(_\d+)?)?$/.test(u))).toEqual([]);
      }
    } finally {
      hub.hidden.clear();
    }
  });

  it('a folder without model_index.json whose files no family knows says so', async () => {
    ['onnx/transformer_model_q4f16.onnx', 'onnx/text_encoder_model_q4f16.onnx'].forEach((f) => hub.hidden.add(f));
    try {
      const err = await loadError('zimage-tiny');
      expect(err?.message).toMatch(/no model_index\.json.*not those of a model family WebDiT knows/);
    } finally {
      hub.hidden.clear();
    }
  });
});
