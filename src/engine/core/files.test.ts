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
    await expect(new FileStore(new MemoryStorage(), server(bytes.slice(0, 100)).fetcher).ensure(spec, () => {})).rejects.toMatchObject({ message: expect.stringMatching(/has 100 bytes but its manifest says 60000/), fix: 'retry-load' });
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

/** A body that sends `upTo` bytes in 4 kB chunks and then breaks off with a network error, as Chromium's fetch does. */
function breaking(body: Uint8Array, upTo: number) {
  let o = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (o >= upTo) return c.error(new TypeError('network error'));
      c.enqueue(body.slice(o, Math.min(upTo, o + 4096)));
      o += 4096;
    },
  });
}

/** Web Locks as the browser grants them: one holder per name, the others wait in order. */
function mutexLocks() {
  const tails = new Map<string, Promise<unknown>>();
  const held: string[] = [];
  const locks = {
    request<T>(name: string, _options: { signal?: AbortSignal }, callback: () => Promise<T>): Promise<T> {
      const before = tails.get(name) ?? Promise.resolve();
      const run = before.then(async () => {
        held.push(name);
        try {
          return await callback();
        } finally {
          held.splice(held.indexOf(name), 1);
        }
      });
      tails.set(name, run.catch(() => undefined));
      return run;
    },
  };
  return { locks, held };
}

/** Storage whose put rejects: always (a private window), or only for bodies over `limit` bytes (a quota). */
class RefusingStorage extends MemoryStorage {
  puts = 0;
  constructor(private limit = -1) {
    super();
  }
  async put(key: string, response: Response) {
    this.puts++;
    const body = new Uint8Array(await response.arrayBuffer());
    if (body.byteLength > this.limit) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    this.entries.set(key, body);
  }
}

describe('FileStore: faults on the way (fault table 4g, 4e\', 9a, 5c)', () => {
  it('stops reading a body larger than the manifest says and names the file (4g)', async () => {
    const bigger = new Uint8Array(bytes.byteLength + 100);
    bigger.set(bytes);
    let pulled = 0;
    const fetcher: Fetcher = async () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (pulled >= bigger.length) return c.close();
            c.enqueue(bigger.slice(pulled, pulled + 4096));
            pulled += 4096;
          },
        }),
      );
    const storage = new MemoryStorage();
    await expect(new FileStore(storage, fetcher).ensure(spec, () => {})).rejects.toMatchObject({
      name: 'ModelError',
      message: `Model file transformer/model.onnx is larger than its manifest says (${bytes.byteLength} bytes expected): the model folder is inconsistent; retry or report it.`,
      fix: 'retry-load',
    });
    expect(storage.entries.size).toBe(0);
  });

  it('refuses a listed size of 2^40 bytes by the file name, before any request (4e\')', async () => {
    const s = server(bytes);
    const huge: FileSpec = { ...spec, bytes: 2 ** 40 };
    await expect(new FileStore(new MemoryStorage(), s.fetcher).ensure(huge, () => {})).rejects.toMatchObject({
      name: 'ModelError',
      message: expect.stringMatching(/^Model file transformer\/model\.onnx is listed as 1099511627776 bytes \(1024\.0 GiB\): more than the 4 GiB/),
      fix: 'smaller-model',
    });
    await expect(new FileStore(new MemoryStorage(), s.fetcher).read(huge)).rejects.toMatchObject({ message: expect.stringMatching(/listed as 1099511627776 bytes/) });
    expect(s.calls).toHaveLength(0);
  });

  it('a body that breaks off once is fetched again past the HTTP cache, and the file is intact (9a)', async () => {
    const inits: (RequestCache | undefined)[] = [];
    const ok = server(bytes);
    const fetcher: Fetcher = async (url, init) => {
      inits.push(init?.cache);
      return inits.length === 1 ? new Response(breaking(bytes, 20_000)) : ok.fetcher(url);
    };
    const store = new FileStore(new MemoryStorage(), fetcher);
    await store.ensure(spec, () => {});
    expect(inits).toEqual([undefined, 'no-store']);
    expect(createHash('sha256').update(await store.read(spec)).digest('hex')).toBe(sha256);
  });

  it('a body that breaks off twice is "could not download X" with Retry download, and nothing is kept (9a)', async () => {
    const fetcher: Fetcher = async () => new Response(breaking(bytes, 20_480));
    const storage = new MemoryStorage();
    await expect(new FileStore(storage, fetcher).ensure(spec, () => {})).rejects.toMatchObject({
      name: 'DownloadError',
      // (erroring a stream drops the chunks still queued, so the count is whatever arrived before it broke)
      message: expect.stringMatching(new RegExp(`^Could not download transformer/model\\.onnx: the connection broke off after \\d+ of ${bytes.byteLength} bytes \\(network error\\)\\.$`)),
      action: expect.stringMatching(/Retry download/),
      fix: 'retry-load',
    });
    expect([...storage.entries.keys()]).toEqual([]);
  });

  it('a server error is a DownloadError with Retry download', async () => {
    const fetcher: Fetcher = async () => new Response('busy', { status: 503, statusText: 'Service Unavailable' });
    await expect(new FileStore(new MemoryStorage(), fetcher).ensure(spec, () => {})).rejects.toMatchObject({ name: 'DownloadError', message: expect.stringMatching(/503 Service Unavailable/), fix: 'retry-load' });
  });

  it('storage that refuses every write: the file runs from memory and the store says nothing is kept (5c)', async () => {
    const storage = new RefusingStorage();
    const s = server(bytes);
    const store = new FileStore(storage, s.fetcher);
    await store.ensure(spec, () => {});
    expect(createHash('sha256').update(await store.read(spec)).digest('hex')).toBe(sha256);
    expect(s.calls).toHaveLength(1); // the probe found out before the download
    expect(store.state()).toEqual({ kept: false, reason: 'QuotaExceededError: The quota has been exceeded.' });
    expect(storage.entries.size).toBe(0);
  });

  it('storage that refuses a large file after the probe: fetched once more into memory, nothing lost (quota)', async () => {
    const storage = new RefusingStorage(10);
    const s = server(bytes);
    const store = new FileStore(storage, s.fetcher);
    await store.ensure(spec, () => {});
    expect(s.calls).toHaveLength(2);
    expect(createHash('sha256').update(await store.read(spec)).digest('hex')).toBe(sha256);
    expect(store.state().kept).toBe(false);
    // the next file goes straight to memory
    const other: FileSpec = { ...spec, url: 'http://x/m/other.onnx' };
    await store.ensure(other, () => {});
    expect(s.calls).toHaveLength(3);
  });

  it('storage that keeps files says so', async () => {
    const store = new FileStore(new MemoryStorage(), server(bytes).fetcher);
    await store.ensure(spec, () => {});
    expect(store.state()).toEqual({ kept: true });
    expect(new FileStore(new MemoryStorage(false), server(bytes).fetcher).state()).toMatchObject({ kept: false, reason: expect.stringMatching(/no Cache API/) });
  });

  it('two tabs (two stores over one storage) download a file once: the second waits for the lock and reads the stored copy (9a)', async () => {
    const storage = new MemoryStorage();
    const s = server(bytes);
    const { locks, held } = mutexLocks();
    const a = new FileStore(storage, s.fetcher, { locks });
    const b = new FileStore(storage, s.fetcher, { locks });
    const seenHeld: number[] = [];
    await Promise.all([a.ensure(spec, () => seenHeld.push(held.length)), b.ensure(spec, () => seenHeld.push(held.length))]);
    expect(s.calls).toHaveLength(1);
    expect(seenHeld.every((n) => n === 1)).toBe(true);
    expect(Buffer.from(await b.read(spec)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('a file removed from storage while the model loads is downloaded again on read', async () => {
    const storage = new MemoryStorage();
    const s = server(bytes);
    const store = new FileStore(storage, s.fetcher);
    await store.ensure(spec, () => {});
    storage.entries.clear();
    expect(Buffer.from(await store.read(spec)).equals(Buffer.from(bytes))).toBe(true);
    expect(s.calls).toHaveLength(2);
  });
});
