import { describe, expect, it } from 'vitest';
import { swConfig, type PrecacheFile } from './plugin';

const manifest = JSON.stringify({ files: { 'model_index.json': { bytes: 3, sha256: 'a'.repeat(64) }, 'vae_decoder/model.onnx': { bytes: 9, sha256: 'b'.repeat(64) } } });
const files: PrecacheFile[] = [
  { url: 'assets/index-abc.js', bytes: 'console.log(1)', hashed: true },
  { url: '', bytes: '<!doctype html>' },
  { url: 'models/tiny/manifest.json', bytes: manifest },
  { url: 'favicon.ico', bytes: new Uint8Array([0, 0, 1, 0]) },
];

describe('swConfig', () => {
  it('lists every precached file once, sorted, and the embedded model files with their sha256', () => {
    const cfg = swConfig(files, 'models/tiny/', manifest);
    expect(cfg.shell).toEqual(['', 'assets/index-abc.js', 'favicon.ico', 'models/tiny/manifest.json']);
    // only the hashed build asset may come from the HTTP cache at install
    expect(cfg.mutable).toEqual(['', 'favicon.ico', 'models/tiny/manifest.json']);
    expect(cfg.model).toEqual({ base: 'models/tiny/', files: { 'model_index.json': 'a'.repeat(64), 'vae_decoder/model.onnx': 'b'.repeat(64) } });
    expect(cfg.version).toMatch(/^[0-9a-f]{16}$/);
  });

  it('has a version that follows the bytes and names of the files, not their order', () => {
    const v = swConfig(files, 'models/tiny/', manifest).version;
    expect(swConfig([...files].reverse(), 'models/tiny/', manifest).version).toBe(v);
    const changed = (i: number, f: PrecacheFile) => files.map((g, j) => (j === i ? { ...f, hashed: g.hashed } : g));
    // a new app build (one byte of a script), a new model (its manifest), a renamed asset
    expect(swConfig(changed(0, { url: 'assets/index-abc.js', bytes: 'console.log(2)' }), 'models/tiny/', manifest).version).not.toBe(v);
    const manifest2 = manifest.replace('a'.repeat(64), 'c'.repeat(64));
    expect(swConfig(changed(2, { url: 'models/tiny/manifest.json', bytes: manifest2 }), 'models/tiny/', manifest2).version).not.toBe(v);
    expect(swConfig(changed(0, { url: 'assets/index-abd.js', bytes: 'console.log(1)' }), 'models/tiny/', manifest).version).not.toBe(v);
    // name and bytes are delimited: moving a byte between them is another version
    const a = swConfig([{ url: 'ab', bytes: 'c' }], 'm/', manifest).version;
    expect(swConfig([{ url: 'a', bytes: 'bc' }], 'm/', manifest).version).not.toBe(a);
  });

  it("refuses an embedded model whose manifest.json is not JSON, saying what to do", () => {
    expect(() => swConfig(files, 'models/tiny/', '{"files": ')).toThrow(/manifest\.json is not JSON .*re-export the model folder/);
  });
});
