/**
 * Loading over HTTP from a folder in Hugging Face Hub layout (<owner>/<repo>/resolve/main/...),
 * served by a local server: real fetch, byte progress, sha256 checks, the cache, and
 * transformers.js fed from verified bytes (it must not fetch the text encoder itself).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from './cache';
import { Engine } from './engine';
import { f32, loadFixtures, MODEL_DIR, maxAbsDiff, psnr, rgbOf, u8 } from './testing/fixtures';

const PREFIX = '/webdit/webdit-tiny/resolve/main/';
const requests: string[] = [];
let server: http.Server;
let base = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '');
    requests.push(url);
    const rel = url.startsWith(PREFIX) ? url.slice(PREFIX.length) : null;
    const file = rel && !rel.includes('..') ? path.join(MODEL_DIR, rel) : null;
    if (!file || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PREFIX}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('a model folder served in Hub layout', () => {
  const cache = new MemoryCache();

  it('loads over HTTP and matches the PyTorch golden run', async () => {
    const engine = new Engine({ cache });
    const progress = new Map<string, number>();
    await engine.load(base + 'manifest.json', 'wasm', { onDownload: (f, loaded) => progress.set(f, loaded) });
    const manifest = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'manifest.json'), 'utf8'));
    for (const [f, spec] of Object.entries(manifest.files) as [string, { bytes: number }][]) expect(progress.get(f), f).toBe(spec.bytes);
    // exactly one request per file (plus the manifest): transformers.js read the verified bytes
    const files = requests.filter((u) => !u.endsWith('manifest.json')).map((u) => u.slice(PREFIX.length)).sort();
    expect(files).toEqual(Object.keys(manifest.files).sort());

    const run = loadFixtures().runs[1];
    const out = await engine.generate({ prompt: run.prompt, negativePrompt: run.negativePrompt, seed: run.seed, numInferenceSteps: run.numInferenceSteps, guidanceScale: run.guidanceScale });
    expect(maxAbsDiff(out.latents, f32(run.latents))).toBeLessThanOrEqual(1e-3);
    expect(psnr(rgbOf(out.image.pixels), u8(run.rgb))).toBeGreaterThanOrEqual(40);
    await engine.dispose();
  });

  it('a second visit is served from the cache: only the manifest is fetched', async () => {
    requests.length = 0;
    const engine = new Engine({ cache });
    await engine.load(base + 'manifest.json', 'wasm');
    expect(requests).toEqual([PREFIX + 'manifest.json']);
    await engine.dispose();
  });

  it('a missing file says the folder is incomplete', async () => {
    const engine = new Engine({ cache: new MemoryCache(), fetcher: (url, init) => fetch(url.replace('vae_decoder.onnx', 'gone.onnx'), init) });
    await expect(engine.load(base + 'manifest.json', 'wasm')).rejects.toMatchObject({ name: 'ModelError', action: expect.stringMatching(/incomplete/) });
  });
});
