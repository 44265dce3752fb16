import { describe, expect, it } from 'vitest';
import { fetchVerified, MemoryCache, sha256Hex, type Fetcher } from './cache';

const bytes = new TextEncoder().encode('model bytes '.repeat(1000));

function server(body: Uint8Array | null, status = 200) {
  const calls: string[] = [];
  const fetcher: Fetcher = async (url) => {
    calls.push(url);
    return body ? new Response(body as BlobPart, { status }) : new Response('nope', { status: 404, statusText: 'Not Found' });
  };
  return { calls, fetcher };
}

describe('verified downloads', async () => {
  const sha256 = await sha256Hex(bytes);
  const spec = { url: 'http://x/m/transformer.onnx', name: 'transformer.onnx', bytes: bytes.byteLength, sha256 };

  it('sha256 matches a known digest', async () => {
    // digest of "abc" from FIPS 180-2
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('downloads with byte progress, caches, then serves from the cache', async () => {
    const cache = new MemoryCache();
    const s = server(bytes);
    const progress: number[] = [];
    const got = await fetchVerified(spec, cache, s.fetcher, (l) => progress.push(l));
    expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true);
    expect(progress.at(-1)).toBe(bytes.byteLength);
    await fetchVerified(spec, cache, s.fetcher, () => {});
    expect(s.calls).toHaveLength(1);
  });

  it('rejects a corrupted file and does not cache it', async () => {
    const bad = bytes.slice();
    bad[10] ^= 1;
    const cache = new MemoryCache();
    await expect(fetchVerified(spec, cache, server(bad).fetcher, () => {})).rejects.toMatchObject({ name: 'ModelError', message: expect.stringMatching(/corrupted.*sha256/) });
    expect(await cache.match(spec.url)).toBeUndefined();
  });

  it('rejects a truncated file', async () => {
    await expect(fetchVerified(spec, new MemoryCache(), server(bytes.slice(0, 100)).fetcher, () => {})).rejects.toMatchObject({ message: expect.stringMatching(/100 bytes but the manifest says/) });
  });

  it('says the folder is incomplete on 404', async () => {
    await expect(fetchVerified(spec, new MemoryCache(), server(null).fetcher, () => {})).rejects.toMatchObject({ action: expect.stringMatching(/incomplete/) });
  });

  it('replaces a corrupt cached copy with a fresh download', async () => {
    const cache = new MemoryCache();
    await cache.put(spec.url, new Uint8Array(bytes.byteLength));
    const s = server(bytes);
    const got = await fetchVerified(spec, cache, s.fetcher, () => {});
    expect(s.calls).toHaveLength(1);
    expect(await sha256Hex(got)).toBe(sha256);
    expect(await sha256Hex((await cache.match(spec.url))!)).toBe(sha256);
  });

  it('reports a network failure with what to do', async () => {
    const failing: Fetcher = async () => {
      throw new TypeError('Failed to fetch');
    };
    await expect(fetchVerified(spec, new MemoryCache(), failing, () => {})).rejects.toMatchObject({ message: expect.stringMatching(/Could not download/), action: expect.stringMatching(/connection/) });
  });
});
