/**
 * Loading over HTTP from a model folder in Hugging Face Hub layout (<owner>/<repo>/resolve/main/...),
 * served by a local server: real fetch, byte progress, hashes, storage, and a repo without our
 * manifest read through the Hub's tree API (/api/models/<owner>/<repo>/tree/main?recursive=true).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from './engine';
import { MemoryStorage } from './storage';
import type { Job, JobEvent } from '../protocol';
import { loadFixtures, MODEL_DIR, psnr, readManifest, rgbOf, u8 } from '../testing/fixtures';
import { startHubServer, type HubServer } from '../testing/hubServer';

const REPO = 'webdit/webdit-tiny';
const PREFIX = `/${REPO}/resolve/main/`;
let hub: HubServer;
let host = '';
let requests: string[] = [];

beforeAll(async () => {
  hub = await startHubServer({ [REPO]: MODEL_DIR });
  host = hub.url;
  requests = hub.requests;
});
afterAll(() => hub.close());

async function loadAndRun(engine: Engine, modelUrl: string) {
  const progress = new Map<string, number>();
  const onEvent = (e: JobEvent) => {
    if (e.type === 'progress' && e.stage === 'download') progress.set(e.file, e.loaded);
  };
  const load = await engine.load({ modelUrl, backend: 'wasm' }, onEvent).result;
  const run = loadFixtures().runs[1];
  let pixels: Uint8ClampedArray | null = null;
  const job: Job<unknown> = engine.generate({ prompt: run.prompt, negativePrompt: run.negativePrompt, seed: run.seed, numInferenceSteps: run.numInferenceSteps, guidanceScale: run.guidanceScale }, (e) => {
    if (e.type === 'image') pixels = e.image.pixels;
  });
  await job.result;
  return { load, progress, imagePsnr: psnr(rgbOf(pixels!), u8(run.rgb)) };
}

describe('a model folder served in Hub layout', () => {
  const storage = new MemoryStorage();
  const files = readManifest().files;
  const downloaded = Object.keys(files).filter((f) => f !== 'model_index.json').sort();

  it('loads over HTTP with byte progress, one request per file, and matches the PyTorch golden run', async () => {
    requests.length = 0;
    const engine = new Engine({ storage });
    const { load, progress, imagePsnr } = await loadAndRun(engine, host + PREFIX);
    expect(load.model.id).toBe(readManifest().id);
    for (const f of downloaded) expect(progress.get(f), f).toBe(files[f].bytes);
    expect(requests.map((u) => u.slice(PREFIX.length)).sort()).toEqual(['manifest.json', ...Object.keys(files)].sort());
    expect(imagePsnr).toBeGreaterThanOrEqual(40);
    await engine.dispose();
  });

  it('a second visit is served from storage: only the manifest is fetched', async () => {
    requests.length = 0;
    const engine = new Engine({ storage });
    await engine.load({ modelUrl: host + PREFIX, backend: 'wasm' }).result;
    expect(requests).toEqual([PREFIX + 'manifest.json']);
    await engine.dispose();
  });

  it('a repo without our manifest loads from the Hub tree listing alone, checked by LFS sha256 and git blob ids', async () => {
    hub.hidden.add('manifest.json');
    requests.length = 0;
    try {
      const engine = new Engine({ storage: new MemoryStorage() });
      const { load, progress, imagePsnr } = await loadAndRun(engine, host + PREFIX);
      expect(requests.slice(0, 2)).toEqual([PREFIX + 'manifest.json', `/api/models/${REPO}/tree/main?recursive=true`]);
      expect(load.model.id).toBe(REPO);
      for (const f of downloaded) expect(progress.get(f), f).toBe(files[f].bytes);
      expect(imagePsnr).toBeGreaterThanOrEqual(40);
      await engine.dispose();
    } finally {
      hub.hidden.clear();
    }
  });

  it('a model that cannot fit in the free storage is refused before its first byte', async () => {
    requests.length = 0;
    const total = Object.entries(files).filter(([f]) => f !== 'model_index.json').reduce((n, [, s]) => n + s.bytes, 0);
    const engine = new Engine({ storage: new MemoryStorage(), storageFree: async () => total - 1 });
    await expect(engine.load({ modelUrl: host + PREFIX, backend: 'wasm' }).result).rejects.toMatchObject({ name: 'StorageFullError', message: expect.stringMatching(/needs 0\.\d\d GB more.*only 0\.\d\d GB is free/), action: expect.stringMatching(/Delete cached models/), fix: 'free-storage' });
    expect(requests.filter((u) => u.endsWith('.onnx'))).toEqual([]);
    // what is already stored does not count: a second visit needs no free space
    const stored = new Engine({ storage, storageFree: async () => 0 });
    await stored.load({ modelUrl: host + PREFIX, backend: 'wasm' }).result;
    await stored.dispose();
  });

  it('a missing file says the folder is incomplete', async () => {
    const engine = new Engine({ storage: new MemoryStorage(), fetcher: (url, init) => fetch(url.replace('vae_decoder/model.onnx', 'vae_decoder/gone.onnx'), init) });
    await expect(engine.load({ modelUrl: host + PREFIX, backend: 'wasm' }).result).rejects.toMatchObject({ name: 'ModelError', action: expect.stringMatching(/incomplete/) });
  });
});
