/**
 * Loading over HTTP from a model folder in Hugging Face Hub layout (<owner>/<repo>/resolve/main/...),
 * served by a local server: real fetch, byte progress, hashes, storage, and a repo without our
 * manifest read through the Hub's tree API (/api/models/<owner>/<repo>/tree/main?recursive=true).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from './engine';
import { MemoryStorage } from './storage';
import type { Job, JobEvent } from '../protocol';
import { loadFixtures, MODEL_DIR, psnr, readManifest, rgbOf, u8 } from '../testing/fixtures';

const REPO = 'webdit/webdit-tiny';
const PREFIX = `/${REPO}/resolve/main/`;
const requests: string[] = [];
let server: http.Server;
let host = '';
/** When set, the server acts as a Hub repo without our manifest.json. */
let hideManifest = false;

function walk(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

/** The tree listing as the Hub gives it: graphs in LFS with their sha256, small files with their git blob id. */
function treeListing() {
  return walk(MODEL_DIR).map((p) => {
    const bytes = fs.readFileSync(path.join(MODEL_DIR, p));
    const oid = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    const lfs = p.endsWith('.onnx') ? { oid: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, pointerSize: 134 } : undefined;
    return { type: 'file', oid, size: lfs ? 134 : bytes.length, path: p, ...(lfs ? { lfs } : {}) };
  });
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    requests.push(url);
    if (url === `/api/models/${REPO}/tree/main?recursive=true`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(treeListing()));
      return;
    }
    const rel = url.startsWith(PREFIX) ? url.slice(PREFIX.length) : null;
    const file = rel && !rel.includes('..') && !(hideManifest && rel === 'manifest.json') ? path.join(MODEL_DIR, rel) : null;
    if (!file || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

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
    hideManifest = true;
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
      hideManifest = false;
    }
  });

  it('a missing file says the folder is incomplete', async () => {
    const engine = new Engine({ storage: new MemoryStorage(), fetcher: (url, init) => fetch(url.replace('vae_decoder/model.onnx', 'vae_decoder/gone.onnx'), init) });
    await expect(engine.load({ modelUrl: host + PREFIX, backend: 'wasm' }).result).rejects.toMatchObject({ name: 'ModelError', action: expect.stringMatching(/incomplete/) });
  });
});
