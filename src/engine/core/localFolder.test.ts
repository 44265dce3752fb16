/**
 * A model folder opened from disk: checked, stored like a download, and loaded by the engine from
 * its local URL without any network request.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from './engine';
import { FileStore } from './files';
import { importLocalFolder, localBase, pickedFolder, withLocalFolders } from './localFolder';
import { MemoryStorage } from './storage';
import { MODEL_DIR } from '../testing/fixtures';

const ROOT = 'http://localhost:5173/';
const SD3 = path.resolve('src/engine/families/sd3/__replica__/sd3-tiny');

/** The folder as <input webkitdirectory> gives it: each file with "<folder>/<path>". */
function picked(dir: string, name = path.basename(dir), edit?: (rel: string, bytes: Buffer) => Buffer | null) {
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((p) => fs.statSync(path.join(dir, p)).isFile())
    .flatMap((p) => {
      const rel = p.split(path.sep).join('/');
      const bytes = edit ? edit(rel, fs.readFileSync(path.join(dir, p))) : fs.readFileSync(path.join(dir, p));
      return bytes ? [{ webkitRelativePath: `${name}/${rel}`, file: new Blob([new Uint8Array(bytes)]) }] : [];
    });
  return pickedFolder([...files, { webkitRelativePath: `${name}/.cache/huggingface/x.lock`, file: new Blob(['lock']) }]);
}

/** A Cache stand-in for the listings. */
function listings() {
  const m = new Map<string, Response>();
  return { put: async (url: string, res: Response) => void m.set(url, res), match: async (url: string) => m.get(url)?.clone(), keys: m };
}

describe('a model folder opened from disk', () => {
  it('without a manifest: every file hashed, stored under its sha256, and the engine loads it with no network request', async () => {
    const storage = new MemoryStorage();
    const cache = listings();
    const stages = new Set<string>();
    const folder = picked(SD3);
    expect(folder.name).toBe('sd3-tiny');
    expect(folder.files.some((f) => f.path.startsWith('.cache'))).toBe(false);
    const url = await importLocalFolder(folder, ROOT, { storage, listings: cache, onProgress: (s) => stages.add(s) });
    expect(url).toBe(localBase(ROOT, 'sd3-tiny'));
    expect(url).toBe('http://localhost:5173/webdit-local/local/sd3-tiny/resolve/local/');
    expect([...stages]).toEqual(['hashing', 'storing']);
    expect([...cache.keys.keys()]).toEqual(['http://localhost:5173/webdit-local/api/models/local/sd3-tiny/tree/local?recursive=true']);
    // stored exactly as a download of that file would be (the sha256 from node:crypto)
    const onnx = fs.readFileSync(path.join(SD3, 'transformer/model.onnx'));
    const spec = { path: 'transformer/model.onnx', url: url + 'transformer/model.onnx', bytes: onnx.length, sha256: createHash('sha256').update(onnx).digest('hex') };
    expect(await new FileStore(storage, async () => Promise.reject(new Error('no network'))).has(spec)).toBe(true);

    const network: string[] = [];
    const engine = new Engine({ storage, fetcher: withLocalFolders(async (u) => (network.push(u), Promise.reject(new TypeError('offline'))), ROOT, async () => cache) });
    const load = await engine.load({ modelUrl: url, backend: 'wasm' }).result;
    expect(load.model).toMatchObject({ id: 'local/sd3-tiny', family: 'sd3' });
    expect(network).toEqual([]);
    await engine.dispose();
  }, 120_000);

  it('with a manifest: checked against it, a changed file or a missing one named', async () => {
    const ok = await importLocalFolder(picked(MODEL_DIR, 'webdit-tiny'), ROOT, { storage: new MemoryStorage(), listings: listings() });
    expect(ok).toBe(localBase(ROOT, 'webdit-tiny'));
    const changed = picked(MODEL_DIR, 'webdit-tiny', (rel, b) => (rel === 'vae_decoder/model.onnx' ? Buffer.concat([b.subarray(0, 100), Buffer.from([b[100] ^ 1]), b.subarray(101)]) : b));
    await expect(importLocalFolder(changed, ROOT, { storage: new MemoryStorage(), listings: listings() })).rejects.toMatchObject({
      name: 'ModelError',
      message: 'vae_decoder/model.onnx in the folder you opened does not match its manifest.json (its sha256 differs).',
    });
    const missing = picked(MODEL_DIR, 'webdit-tiny', (rel, b) => (rel === 'transformer/model.onnx' ? null : b));
    await expect(importLocalFolder(missing, ROOT, { storage: new MemoryStorage(), listings: listings() })).rejects.toMatchObject({ message: 'The folder you opened has no transformer/model.onnx, which its manifest.json lists.' });
    const cut = picked(MODEL_DIR, 'webdit-tiny', (rel, b) => (rel === 'text_encoder/model.onnx' ? b.subarray(0, 1000) : b));
    await expect(importLocalFolder(cut, ROOT, { storage: new MemoryStorage(), listings: listings() })).rejects.toMatchObject({ message: expect.stringMatching(/^text_encoder\/model\.onnx in the folder you opened has 1000 bytes; its manifest\.json says \d+\.$/) });
  });

  it('a folder that is no model, and an empty one, say so', async () => {
    const notModel = pickedFolder([{ webkitRelativePath: 'photos/a.jpg', file: new Blob(['x']) }]);
    await expect(importLocalFolder(notModel, ROOT, { storage: new MemoryStorage(), listings: listings() })).rejects.toMatchObject({ message: 'The folder "photos" has no manifest.json, model_index.json or .onnx graph: it is not a model folder.' });
    expect(() => pickedFolder([])).toThrow('The folder you opened has no files.');
  });

  it('a local URL whose listing is gone: open the folder again', async () => {
    const f = withLocalFolders(async () => new Response('net'), ROOT, async () => listings());
    await expect(f('http://localhost:5173/webdit-local/api/models/local/x/tree/local?recursive=true')).rejects.toThrow(/open the folder again in the model picker/);
    expect((await f('http://localhost:5173/webdit-local/local/x/resolve/local/manifest.json')).status).toBe(404);
    expect(await (await f('http://elsewhere/x')).text()).toBe('net');
  });
});
