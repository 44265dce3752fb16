import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../engine/core/files';
import { MemoryStorage } from '../engine/core/storage';
import { routeFor, shellCacheName, staleModelEntries, staleShellCaches, type SwConfig } from './swCore';

const SCOPE = 'https://studio.example/app/';
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const cfg: SwConfig = {
  version: '0123456789abcdef',
  shell: ['', 'assets/index-abc.js', 'assets/ort.wasm', 'favicon.ico', 'models/tiny/manifest.json'],
  mutable: ['', 'favicon.ico', 'models/tiny/manifest.json'],
  model: { base: 'models/tiny/', files: { 'model_index.json': SHA_A, 'transformer/model.onnx': SHA_B } },
};
const get = (url: string, mode = 'cors') => routeFor({ method: 'GET', url, mode }, SCOPE, cfg);

describe('routeFor', () => {
  it('answers page navigations inside the scope from the shell, whatever the query', () => {
    expect(get(SCOPE, 'navigate')).toBe('shell');
    expect(get(`${SCOPE}?backend=wasm&model=webdit/sd3-tiny`, 'navigate')).toBe('shell');
    expect(get(`${SCOPE}index.html`, 'navigate')).toBe('shell');
    expect(get(`${SCOPE}some/route`, 'navigate')).toBe('shell');
  });

  it('leaves navigations to files, outside the scope and to other origins to the browser', () => {
    expect(get(`${SCOPE}models/tiny/README.md`, 'navigate')).toBe('pass');
    expect(get('https://studio.example/other/', 'navigate')).toBe('pass');
    expect(get('https://huggingface.co/webdit/x', 'navigate')).toBe('pass');
  });

  it('serves precached files cache-first and the embedded model manifest network-first', () => {
    expect(get(`${SCOPE}assets/index-abc.js`)).toBe('cache-first');
    expect(get(`${SCOPE}assets/ort.wasm`)).toBe('cache-first');
    expect(get(`${SCOPE}favicon.ico`, 'no-cors')).toBe('cache-first');
    expect(get(`${SCOPE}models/tiny/manifest.json`)).toBe('network-first');
  });

  it('never answers model files (the engine stores them), cross-origin requests, non-GETs or unknown files', () => {
    expect(get(`${SCOPE}models/tiny/transformer/model.onnx`)).toBe('pass');
    expect(get(`${SCOPE}models/tiny/model_index.json`)).toBe('pass');
    expect(get('https://huggingface.co/webdit/sd3-tiny/resolve/main/model_index.json')).toBe('pass');
    expect(get('https://cas-bridge.xethub.hf.co/xet-bridge-us/abc')).toBe('pass');
    expect(get('https://studio.example.evil.com/app/assets/index-abc.js')).toBe('pass');
    expect(routeFor({ method: 'POST', url: `${SCOPE}assets/index-abc.js`, mode: 'cors' }, SCOPE, cfg)).toBe('pass');
    expect(routeFor({ method: 'HEAD', url: SCOPE, mode: 'navigate' }, SCOPE, cfg)).toBe('pass');
    expect(get(`${SCOPE}assets/index-abc.js?v=2`)).toBe('pass');
    expect(get(`${SCOPE}assets/index-old.js`)).toBe('pass');
    expect(get(SCOPE)).toBe('pass'); // a fetch() of the page itself, not a navigation
  });
});

describe('staleShellCaches', () => {
  it('names every other build of the shell and nothing else', () => {
    const current = shellCacheName(cfg.version);
    const names = [current, 'webdit-shell-old1', 'webdit-shell-old2', 'webdit-models-v2', 'someone-else'];
    expect(staleShellCaches(names, cfg.version)).toEqual(['webdit-shell-old1', 'webdit-shell-old2']);
    expect(staleShellCaches([current], cfg.version)).toEqual([]);
  });
});

describe('staleModelEntries', () => {
  const base = `${SCOPE}models/tiny/`;
  it('drops embedded-model files the manifest no longer lists or lists with another sha256, keeps the rest', () => {
    const urls = [
      `${base}model_index.json#sha256=${SHA_A}`, // current
      `${base}transformer/model.onnx#sha256=${SHA_A}`, // an older transformer
      `${base}unet/model.onnx#sha256=${SHA_B}`, // a component the model no longer has
      `${SCOPE}models/other/model.onnx#sha256=${SHA_B}`, // another model folder
      `https://huggingface.co/webdit/sd3-tiny/resolve/main/unet/model.onnx#sha256=${SHA_B}`, // a Hub model
      `${base}model_index.json#git=${'c'.repeat(40)}`, // a key by git blob id: not the embedded model's format, kept
      `${base}transformer/model.onnx?webdit-part=3#sha256=${SHA_B}`, // a part of the current transformer
      `${base}transformer/model.onnx?webdit-part=0#sha256=${SHA_A}`, // a part of an older one
      `${base}transformer/model.onnx?webdit-partial#sha256=${SHA_A}`, // an older one's unfinished download
    ];
    expect(staleModelEntries(urls, SCOPE, cfg)).toEqual([urls[1], urls[2], urls[7], urls[8]]);
  });

  it("understands the engine's own storage keys: what FileStore stores for a current file is kept, an older one is dropped", async () => {
    const storage = new MemoryStorage();
    const small = new TextEncoder().encode('{"_class_name": "WebDiTPipeline"}');
    const large = new Uint8Array(300_000).map((_, i) => (i * 7) & 255); // stored in parts
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    const bodies: Record<string, Uint8Array> = { [`${base}model_index.json`]: small, [`${base}transformer/model.onnx`]: large };
    const store = new FileStore(storage, async (url) => new Response(bodies[url] as BlobPart));
    await store.ensure({ path: 'model_index.json', url: `${base}model_index.json`, bytes: small.length, sha256: sha(small) }, () => undefined);
    await store.ensure({ path: 'transformer/model.onnx', url: `${base}transformer/model.onnx`, bytes: large.length, sha256: sha(large) }, () => undefined);
    const keys = [...storage.entries.keys()];
    expect(keys.length).toBeGreaterThan(2);
    const now: SwConfig = { ...cfg, model: { base: 'models/tiny/', files: { 'model_index.json': sha(small), 'transformer/model.onnx': sha(large) } } };
    expect(staleModelEntries(keys, SCOPE, now)).toEqual([]);
    const next: SwConfig = { ...cfg, model: { base: 'models/tiny/', files: { 'model_index.json': SHA_A, 'transformer/model.onnx': sha(large) } } };
    expect(staleModelEntries(keys, SCOPE, next)).toEqual(keys.filter((k) => k.includes('model_index.json')));
  });
});
