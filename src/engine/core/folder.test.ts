import { describe, expect, it } from 'vitest';
import { detectFamily } from '../families';
import { FileStore, type Fetcher } from './files';
import { filesFromTree, folderBase, hubTreeUrl, openFolder, parseManifest } from './folder';
import { MemoryStorage } from './storage';

const sha = 'a'.repeat(64);
const manifest = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ format: 'webdit-model', version: 2, id: 'm', family: 'webdit', defaults: {}, files: { 'model_index.json': { bytes: 10, sha256: sha } }, ...over });

describe('manifest (format 2)', () => {
  it('reads id, name (falling back to id) and every file', () => {
    const m = parseManifest(manifest({ files: { 'model_index.json': { bytes: 10, sha256: sha }, 'transformer/model.onnx': { bytes: 99, sha256: sha } } }));
    expect(m.name).toBe('m');
    expect(Object.keys(m.files)).toEqual(['model_index.json', 'transformer/model.onnx']);
    expect(m.files['transformer/model.onnx'].bytes).toBe(99);
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['a format-1 manifest', JSON.stringify({ id: 'webdit-tiny', graphs: {} }), /version 1.*version 2/],
    ['no id', manifest({ id: '' }), /"id"/],
    ['a path leaving the folder', manifest({ files: { 'model_index.json': { bytes: 1, sha256: sha }, '../x': { bytes: 1, sha256: sha } } }), /relative path/],
    ['an absolute URL as a file (4e\'\')', manifest({ files: { 'model_index.json': { bytes: 1, sha256: sha }, 'http://evil.example/x.onnx': { bytes: 1, sha256: sha } } }), /"http:\/\/evil\.example\/x\.onnx" must be a relative path/],
    ['a bad sha256', manifest({ files: { 'model_index.json': { bytes: 1, sha256: 'xyz' } } }), /sha256/],
    ['a zero size', manifest({ files: { 'model_index.json': { bytes: 0, sha256: sha } } }), /bytes/],
    ['no model_index.json', manifest({ files: { 'a.onnx': { bytes: 1, sha256: sha } } }), /model_index/],
  ])('rejects %s with a message that names the problem and the fix', (_n, text, pattern) => {
    let err: { name?: string; message?: string; action?: string } = {};
    try {
      parseManifest(text);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.name).toBe('ModelError');
    expect(err.message).toMatch(pattern);
    expect(err.action).toMatch(/export|relayout|folder/);
  });
});

describe('Hub layout', () => {
  it('maps a resolve URL to the tree API of the same repo and revision', () => {
    expect(hubTreeUrl('https://huggingface.co/stabilityai/sd3/resolve/main/')).toBe('https://huggingface.co/api/models/stabilityai/sd3/tree/main?recursive=true');
    expect(hubTreeUrl('/models/webdit-tiny/')).toBeNull();
    expect(folderBase('/models/webdit-tiny/manifest.json')).toBe('/models/webdit-tiny/');
    expect(folderBase('/models/webdit-tiny')).toBe('/models/webdit-tiny/');
  });

  it('takes sizes and LFS sha256 from the tree listing, git blob ids for small files, and skips folders', () => {
    const files = filesFromTree('http://h/o/r/resolve/main/', [
      { type: 'directory', path: 'transformer', size: 0, oid: 'x' },
      { type: 'file', path: 'model_index.json', size: 321, oid: 'f'.repeat(40) },
      { type: 'file', path: 'transformer/model.onnx', size: 134, oid: 'e'.repeat(40), lfs: { oid: sha, size: 9_000_000_000 } },
    ]);
    expect([...files.keys()]).toEqual(['model_index.json', 'transformer/model.onnx']);
    expect(files.get('model_index.json')).toEqual({ path: 'model_index.json', url: 'http://h/o/r/resolve/main/model_index.json', bytes: 321, gitSha1: 'f'.repeat(40) });
    expect(files.get('transformer/model.onnx')).toMatchObject({ bytes: 9_000_000_000, sha256: sha });
  });
});

describe('opening a folder and detecting its family', () => {
  const index = new TextEncoder().encode(JSON.stringify({ _class_name: 'SomeOtherPipeline', transformer: ['x', 'Y'], scheduler: ['a', 'B'] }));

  async function folderWith(indexBytes: Uint8Array) {
    const sha256 = (await import('node:crypto')).createHash('sha256').update(indexBytes).digest('hex');
    const m = JSON.stringify({ format: 'webdit-model', version: 2, id: 'other', files: { 'model_index.json': { bytes: indexBytes.length, sha256 }, 'transformer/model.onnx': { bytes: 5, sha256: sha } } });
    const calls: string[] = [];
    const fetcher: Fetcher = async (url) => {
      calls.push(url);
      if (url.endsWith('manifest.json')) return new Response(m);
      if (url.endsWith('model_index.json')) return new Response(indexBytes as BlobPart);
      return new Response('', { status: 404 });
    };
    return { folder: await openFolder('http://h/other/', new FileStore(new MemoryStorage(), fetcher), fetcher), calls };
  }

  it('rejects an unknown family before any graph is downloaded', async () => {
    const { folder, calls } = await folderWith(index);
    expect(folder.components).toEqual(['transformer', 'scheduler']);
    expect(() => detectFamily(folder)).toThrow(/SomeOtherPipeline.*not supported.*webdit/);
    expect(calls).toEqual(['http://h/other/manifest.json', 'http://h/other/model_index.json']);
  });

  it('names the components a webdit folder lacks', async () => {
    const { folder } = await folderWith(new TextEncoder().encode(JSON.stringify({ _class_name: 'WebDiTPipeline', transformer: ['webdit', 'T'] })));
    expect(() => detectFamily(folder)).toThrow(/lacks the component\(s\) vae_decoder, text_encoder, tokenizer, scheduler/);
  });

  it('says what to do when the URL has no manifest and is not a Hub repo', async () => {
    const fetcher: Fetcher = async () => new Response('', { status: 404 });
    await expect(openFolder('http://h/nothing/', new FileStore(new MemoryStorage(), fetcher), fetcher)).rejects.toMatchObject({ name: 'ModelError', action: expect.stringMatching(/manifest\.json.*Hub repository/) });
  });
});
