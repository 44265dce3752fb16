/**
 * Resumable downloads against the local Hub server (real HTTP, real fetch): a body cut off after N
 * bytes continues with one `Range: bytes=N-` request, a reload (a new store over the same storage)
 * continues from the stored parts, a file whose ETag changed starts again from 0, and the sha256
 * (from node:crypto, not the code under test) covers the whole file every time.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileStore, partBytesFor, type FileSpec } from './files';
import { MemoryStorage } from './storage';
import { startHubServer, type HubServer } from '../testing/hubServer';

const REPO = 'webdit/resume-test';
const FILE = 'transformer/model.onnx_data';
const KEY = `${REPO}/${FILE}`;
const SIZE = 600_000;

let hub: HubServer;
let dir: string;
let bytes: Uint8Array;
let spec: FileSpec;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webdit-resume-'));
  // deterministic, incompressible bytes
  bytes = new Uint8Array(SIZE);
  let x = 12345;
  for (let i = 0; i < SIZE; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  fs.mkdirSync(path.join(dir, 'transformer'));
  fs.writeFileSync(path.join(dir, FILE), bytes);
  hub = await startHubServer({ [REPO]: dir });
  spec = { path: FILE, url: `${hub.url}/${REPO}/resolve/main/${FILE}`, bytes: SIZE, sha256: createHash('sha256').update(bytes).digest('hex') };
});
afterAll(async () => {
  await hub.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  hub.log.length = 0;
  hub.requests.length = 0;
  hub.drops.clear();
  hub.stalls.clear();
  hub.etags.clear();
});

const fetcher = (url: string, init?: RequestInit) => fetch(url, init);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fileLog = () => hub.log.filter((r) => r.path === KEY);

/** Start a download and cancel it once `n` bytes have arrived (a reload or a closed tab, from the store's side). */
async function interrupted(storage: MemoryStorage, n: number): Promise<number> {
  const stop = new AbortController();
  let seen = 0;
  await expect(
    new FileStore(storage, fetcher).ensure(
      spec,
      (loaded) => {
        seen = loaded;
        if (loaded >= n) stop.abort();
      },
      stop.signal,
    ),
  ).rejects.toMatchObject({ name: 'CancelledError' });
  return seen;
}

describe('resumable downloads (Range + If-Range, against the local Hub server)', () => {
  it('parts: 1/16 of a file, 64 KiB to 32 MiB', () => {
    expect(partBytesFor(SIZE)).toBe(64 * 1024);
    expect(partBytesFor(4e8)).toBe(Math.ceil(4e8 / 16 / 4096) * 4096);
    expect(partBytesFor(5e9)).toBe(32 * 2 ** 20);
  });

  it('a connection dropped after N bytes continues with exactly one Range request, and the whole file hashes right', async () => {
    hub.drops.set(KEY, 200_000);
    const storage = new MemoryStorage();
    const store = new FileStore(storage, fetcher);
    const progress: number[] = [];
    await store.ensure(spec, (l) => progress.push(l));
    const log = fileLog();
    expect(log.map((r) => r.status)).toEqual([200, 206]);
    const ranged = log.filter((r) => r.range !== null);
    expect(ranged).toHaveLength(1);
    const start = Number(/^bytes=(\d+)-$/.exec(ranged[0].range!)![1]);
    // everything that arrived before the drop was kept: the second request starts after it
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(200_000);
    expect(ranged[0].ifRange).toBe(`"${spec.sha256}"`);
    expect(log[1].bytes).toBe(SIZE - start);
    expect(hub.served(KEY)).toBe(log[0].bytes + SIZE - start);
    expect(progress.at(-1)).toBe(SIZE);
    expect(sha(await store.read(spec))).toBe(spec.sha256);
    // stored as an index and parts; nothing of the interrupted download is left behind
    expect([...storage.entries.keys()].some((k) => k.includes('webdit-partial'))).toBe(false);
    expect([...storage.entries.keys()].filter((k) => k.includes('webdit-part=')).length).toBeGreaterThan(1);
  });

  it('a reload mid-download (a new store over the same storage) asks only for the rest', async () => {
    const storage = new MemoryStorage();
    const got = await interrupted(storage, 300_000);
    expect(got).toBeGreaterThanOrEqual(300_000);
    const kept = await new FileStore(storage, fetcher).storedBytes(spec);
    expect(kept).toBeGreaterThanOrEqual(300_000);
    hub.log.length = 0;
    const again = new FileStore(storage, fetcher);
    const first: number[] = [];
    await again.ensure(spec, (l) => first.push(l));
    // progress starts where the stored parts end
    expect(first[0]).toBe(kept);
    expect(fileLog()).toEqual([{ path: KEY, range: `bytes=${kept}-`, ifRange: `"${spec.sha256}"`, status: 206, bytes: SIZE - kept }]);
    // a third store reads it back from storage: same bytes, no request
    hub.log.length = 0;
    expect(sha(await new FileStore(storage, fetcher).read(spec))).toBe(spec.sha256);
    expect(fileLog()).toEqual([]);
  });

  it('a file whose ETag changed on the server starts again from byte 0 (If-Range)', async () => {
    const storage = new MemoryStorage();
    await interrupted(storage, 250_000);
    hub.etags.set(KEY, '"replaced"');
    hub.log.length = 0;
    const store = new FileStore(storage, fetcher);
    const seen: number[] = [];
    await store.ensure(spec, (l) => seen.push(l));
    const [req] = fileLog();
    expect(fileLog()).toHaveLength(1);
    expect(req.range).toMatch(/^bytes=\d+-$/);
    expect(req.ifRange).toBe(`"${spec.sha256}"`);
    // the server answered the whole file, and the store took it from the start
    expect(req.status).toBe(200);
    expect(req.bytes).toBe(SIZE);
    expect(seen.some((l, i) => i > 0 && l < seen[i - 1])).toBe(true);
    expect(sha(await store.read(spec))).toBe(spec.sha256);
  });

  it('stored parts that do not hash right with the rest fail the file by name, and nothing is kept', async () => {
    const storage = new MemoryStorage();
    await interrupted(storage, 200_000);
    // a stored part went bad on disk while the tab was closed
    const partKey = [...storage.entries.keys()].find((k) => k.includes('webdit-part=1'))!;
    storage.entries.get(partKey)![5] ^= 1;
    await expect(new FileStore(storage, fetcher).ensure(spec, () => {})).rejects.toMatchObject({ name: 'ModelError', message: expect.stringMatching(/^Model file transformer\/model\.onnx_data is corrupted/) });
    expect(storage.entries.size).toBe(0);
    // Retry downloads it whole
    await new FileStore(storage, fetcher).ensure(spec, () => {});
    expect(sha(await new FileStore(storage, fetcher).read(spec))).toBe(spec.sha256);
  });

  it('a part missing from a complete copy: read downloads the file again', async () => {
    const storage = new MemoryStorage();
    await new FileStore(storage, fetcher).ensure(spec, () => {});
    storage.entries.delete([...storage.entries.keys()].find((k) => k.includes('webdit-part=3'))!);
    hub.log.length = 0;
    const store = new FileStore(storage, fetcher);
    expect(sha(await store.read(spec))).toBe(spec.sha256);
    expect(fileLog().map((r) => [r.range, r.bytes])).toEqual([[null, SIZE]]);
  });

  it('delete forgets the file, its parts and an interrupted download', async () => {
    const storage = new MemoryStorage();
    const store = new FileStore(storage, fetcher);
    await store.ensure(spec, () => {});
    expect(await store.has(spec)).toBe(true);
    expect(await store.storedBytes(spec)).toBe(SIZE);
    expect(await store.delete(spec)).toBe(true);
    expect(storage.entries.size).toBe(0);
    expect(await store.has(spec)).toBe(false);
    await interrupted(storage, 150_000);
    expect(await store.storedBytes(spec)).toBeGreaterThanOrEqual(150_000);
    expect(await store.delete(spec)).toBe(true);
    expect(storage.entries.size).toBe(0);
    expect(await store.delete(spec)).toBe(false);
  });

  it('blob(): the verified file as one Blob joined from its parts (how a file over 2 GB reaches ORT)', async () => {
    const storage = new MemoryStorage();
    await new FileStore(storage, fetcher).ensure(spec, () => {});
    const blob = await new FileStore(storage, fetcher).blob(spec);
    expect(blob.size).toBe(SIZE);
    expect(sha(new Uint8Array(await blob.arrayBuffer()))).toBe(spec.sha256);
    // a bad stored copy is not handed out: it is fetched again
    storage.entries.get([...storage.entries.keys()].find((k) => k.includes('webdit-part=2'))!)![0] ^= 1;
    hub.log.length = 0;
    const fresh = await new FileStore(storage, fetcher).blob(spec);
    expect(sha(new Uint8Array(await fresh.arrayBuffer()))).toBe(spec.sha256);
    expect(fileLog()).toHaveLength(1);
  });
});
