import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileStore, type Fetcher, type FileSpec } from './files';
import { MemoryStorage } from './storage';

const bytes = new TextEncoder().encode('model bytes '.repeat(5000));
// the expected hashes come from node:crypto, not from the code under test
const sha256 = createHash('sha256').update(bytes).digest('hex');
const spec: FileSpec = { path: 'transformer/model.onnx', url: 'http://x/m/transformer/model.onnx', bytes: bytes.byteLength, sha256 };

/** A server that answers in small chunks, so progress and the streaming hash see many pieces. */
function server(body: Uint8Array | null, status = 200) {
  const calls: string[] = [];
  const fetcher: Fetcher = async (url) => {
    calls.push(url);
    if (!body) return new Response('nope', { status: 404, statusText: 'Not Found' });
    let o = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (o >= body.length) return c.close();
        c.enqueue(body.slice(o, o + 4096));
        o += 4096;
      },
    });
    return new Response(stream, { status });
  };
  return { calls, fetcher };
}

describe('FileStore: verified downloads into storage', () => {
  it('streams with byte progress, stores under the hash, reads back the same bytes without a second request', async () => {
    const storage = new MemoryStorage();
    const s = server(bytes);
    const store = new FileStore(storage, s.fetcher);
    const progress: number[] = [];
    await store.ensure(spec, (l) => progress.push(l));
    expect(progress.length).toBeGreaterThan(10);
    expect(progress.at(-1)).toBe(bytes.byteLength);
    expect([...storage.entries.keys()]).toEqual([`${spec.url}#sha256=${sha256}`]);
    const got = await store.read(spec);
    expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true);
    // a second visit (a new FileStore over the same storage) downloads nothing and re-hashes on read
    const again = new FileStore(storage, s.fetcher);
    await again.ensure(spec, () => {});
    expect(Buffer.from(await again.read(spec)).equals(Buffer.from(bytes))).toBe(true);
    expect(s.calls).toHaveLength(1);
  });

  it('rejects a corrupted download and keeps nothing of it', async () => {
    const bad = bytes.slice();
    bad[10] ^= 1;
    const storage = new MemoryStorage();
    await expect(new FileStore(storage, server(bad).fetcher).ensure(spec, () => {})).rejects.toMatchObject({ name: 'ModelError', message: expect.stringMatching(/corrupted/) });
    expect(storage.entries.size).toBe(0);
  });

  it('rejects a truncated download', async () => {
    await expect(new FileStore(new MemoryStorage(), server(bytes.slice(0, 100)).fetcher).ensure(spec, () => {})).rejects.toMatchObject({ message: expect.stringMatching(/has 100 bytes but the model folder says/) });
  });

  it('says the folder is incomplete on 404', async () => {
    await expect(new FileStore(new MemoryStorage(), server(null).fetcher).ensure(spec, () => {})).rejects.toMatchObject({ action: expect.stringMatching(/incomplete/) });
  });

  it('replaces a stored copy that went bad with a fresh download', async () => {
    const storage = new MemoryStorage();
    const zeros = new Uint8Array(bytes.byteLength);
    storage.entries.set(`${spec.url}#sha256=${sha256}`, zeros);
    const s = server(bytes);
    const got = await new FileStore(storage, s.fetcher).read(spec);
    expect(s.calls).toHaveLength(1);
    expect(createHash('sha256').update(got).digest('hex')).toBe(sha256);
  });

  it('checks small Hub files by their git blob id', async () => {
    const text = new TextEncoder().encode('{"a": 1}\n');
    const gitSha1 = createHash('sha1').update(`blob ${text.length}\0`).update(text).digest('hex');
    const ok: FileSpec = { path: 'scheduler/scheduler_config.json', url: 'http://x/s.json', bytes: text.length, gitSha1 };
    expect(await new FileStore(new MemoryStorage(), server(text).fetcher).text(ok)).toBe('{"a": 1}\n');
    const bad = new TextEncoder().encode('{"a": 2}\n');
    await expect(new FileStore(new MemoryStorage(), server(bad).fetcher).text(ok)).rejects.toMatchObject({ message: expect.stringMatching(/corrupted/) });
  });

  it('stops a download when its job is cancelled', async () => {
    const controller = new AbortController();
    const storage = new MemoryStorage();
    const store = new FileStore(storage, server(bytes).fetcher);
    const run = store.ensure(spec, (loaded) => loaded > 20_000 && controller.abort(), controller.signal);
    await expect(run).rejects.toMatchObject({ name: 'CancelledError' });
    expect(storage.entries.size).toBe(0);
  });

  it('reports a network failure with what to do', async () => {
    const failing: Fetcher = async () => {
      throw new TypeError('Failed to fetch');
    };
    await expect(new FileStore(new MemoryStorage(), failing).ensure(spec, () => {})).rejects.toMatchObject({ message: expect.stringMatching(/Could not download/), action: expect.stringMatching(/connection/) });
  });
});
