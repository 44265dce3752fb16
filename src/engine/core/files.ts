/**
 * Model files: downloaded once into storage with byte progress and a streaming hash, read back
 * (hashed again) only when a session needs them. No file is ever held twice in JS memory.
 *
 * Tabs share: a download holds a Web Lock named after the file, so a second tab (or worker)
 * waits for the first and then reads the stored copy instead of racing it over the network
 * (two Chromium requests writing one HTTP cache entry fail with ERR_CACHE_WRITE_FAILURE).
 * Storage that refuses a write (quota, private windows) costs only persistence: the file is kept
 * in memory for this page, and `report()` says the next visit downloads it again.
 *
 * Resumable: a file larger than one part (partBytesFor: 1/16 of the file, 64 KiB to 32 MiB) is
 * stored part by part as it arrives, with a "partial" entry that records the parts, the server's
 * ETag and the hash the file must have. A body that breaks off (network drop, reload, cancel)
 * continues from the parts already stored with `Range: bytes=N-` and `If-Range: <ETag>`, so a file
 * changed on the server restarts from 0; the sha256 always covers the whole file (the stored parts
 * are hashed again before the rest is appended). A complete multi-part file is an index entry and
 * its parts; a file of one part is one entry, as before.
 */
import { CancelledError, downloadError, EngineError, modelError } from '../errors';
import { gitBlobSha1, Sha256 } from './sha256';
import { MemoryStorage, type ModelStorage } from './storage';

export type Fetcher = (url: string, init?: { signal?: AbortSignal; cache?: RequestCache; headers?: Record<string, string> }) => Promise<Response>;

/** One file of a model folder and how to check it. */
export interface FileSpec {
  /** Path inside the model folder, e.g. 'transformer/model.onnx'. */
  path: string;
  url: string;
  bytes: number;
  /** From our manifest, or the Hub's LFS pointer. */
  sha256?: string;
  /** The Hub's git blob id, for small files it does not keep in LFS. */
  gitSha1?: string;
}

export type Progress = (loaded: number, total: number) => void;

/** The part of `navigator.locks` the store needs: one holder per name across this origin's tabs and workers. */
export interface Locks {
  request<T>(name: string, options: { signal?: AbortSignal }, callback: () => Promise<T>): Promise<T>;
}

/** Where there is no Web Locks API (Node, old browsers), every caller goes ahead at once. */
const noLocks: Locks = { request: (_name, _options, callback) => callback() };

export function browserLocks(): Locks {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  return locks ? { request: <T>(name: string, options: { signal?: AbortSignal }, callback: () => Promise<T>) => locks.request(name, options, callback) as Promise<Awaited<T>> as Promise<T> } : noLocks;
}

/**
 * The largest file the engine takes: ONNX Runtime Web copies every graph and external-data file
 * into its 32-bit WebAssembly memory, which holds 4 GiB at most.
 */
export const MAX_FILE_BYTES = 2 ** 32;

/** Why storage is not keeping files, when it refused a write. */
export interface StorageState {
  kept: boolean;
  reason?: string;
}

const keyTag = (f: FileSpec) => (f.sha256 ? 'sha256=' + f.sha256 : 'git=' + f.gitSha1);
const storageKey = (f: FileSpec) => `${f.url}#${keyTag(f)}`;
/**
 * Keys of a multi-part file: its parts, the index of a complete one, the progress of an unfinished
 * one. The Cache API ignores a key's fragment when matching, so they differ in the query; the
 * fragment still carries the hash (the service worker prunes stale embedded-model entries by it).
 */
const sideKey = (f: FileSpec, what: string) => `${f.url}${f.url.includes('?') ? '&' : '?'}webdit-${what}#${keyTag(f)}`;
const partKey = (f: FileSpec, i: number) => sideKey(f, `part=${i}`);
const indexKey = (f: FileSpec) => sideKey(f, 'parts');
const partialKey = (f: FileSpec) => sideKey(f, 'partial');
const PROBE_KEY = 'webdit-storage-probe';

export const MIN_PART_BYTES = 64 * 1024;
export const MAX_PART_BYTES = 32 * 2 ** 20;

/**
 * How much of a file one stored part holds: a drop loses at most one part (1/16 of the file, at
 * most 32 MiB), and a multi-GB file is a few hundred entries. Files up to 64 KiB are one entry.
 */
export function partBytesFor(size: number): number {
  return Math.min(MAX_PART_BYTES, Math.max(MIN_PART_BYTES, Math.ceil(size / 16 / 4096) * 4096));
}

/** Files above this size reach ONNX Runtime as a URL of a disk-backed Blob, never as one ArrayBuffer of ours. */
export const LARGE_FILE_BYTES = 2 ** 31;

/** What an unfinished multi-part download has stored. */
interface PartialState {
  v: 1;
  bytes: number;
  tag: string;
  /** The ETag of the response the parts came from (null: the server sent none). */
  etag: string | null;
  parts: number[];
}

/** A complete multi-part file. */
interface PartsIndex {
  v: 1;
  bytes: number;
  parts: number[];
}

function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError(what);
}

const RETRY = 'Press Retry download. If it keeps happening, tell whoever hosts the model that its manifest does not match its files.';

function corrupt(f: FileSpec, got: string): Error {
  return modelError(`Model file ${f.path} is corrupted: its hash is ${got.slice(0, 12)}…, the model folder says ${(f.sha256 ?? f.gitSha1 ?? '').slice(0, 12)}….`, RETRY, 'retry-load');
}

export function tooLarge(f: FileSpec): Error {
  return modelError(`Model file ${f.path} is larger than its manifest says (${f.bytes} bytes expected): the model folder is inconsistent; retry or report it.`, RETRY, 'retry-load');
}

/** A listed size no browser engine can take (a manifest that says 2^40 bytes) is refused by name, before any byte. */
export function checkFileSize(f: FileSpec): void {
  if (f.bytes > MAX_FILE_BYTES) {
    throw modelError(
      `Model file ${f.path} is listed as ${f.bytes} bytes (${(f.bytes / 2 ** 30).toFixed(1)} GiB): more than the 4 GiB one file can have here (ONNX Runtime Web reads each file into a 32-bit WebAssembly memory).`,
      'The model folder lists a wrong size or a model too large for browsers: choose a smaller model, or report the manifest to whoever hosts it.',
      'smaller-model',
    );
  }
}

/** The body broke off after the response started (network drop, Chromium's ERR_CACHE_WRITE_FAILURE). */
class BodyBrokeOff extends Error {
  constructor(
    readonly loaded: number,
    readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/** Read a body chunk by chunk into `sink`, counting bytes; stops with CancelledError on abort. */
async function pump(body: ReadableStream<Uint8Array>, sink: (chunk: Uint8Array) => void | Promise<void>, signal: AbortSignal | undefined, what: string): Promise<number> {
  const reader = body.getReader();
  let n = 0;
  try {
    for (;;) {
      checkAbort(signal, what);
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (signal?.aborted) throw new CancelledError(what);
        throw new BodyBrokeOff(n, e);
      }
      if (chunk.done) return n;
      n += chunk.value.byteLength;
      await sink(chunk.value);
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  }
}

async function verifyHash(f: FileSpec, hasher: Sha256, bytes: () => Uint8Array | null): Promise<void> {
  if (f.sha256) {
    const got = hasher.hex();
    if (got !== f.sha256) throw corrupt(f, got);
  } else if (f.gitSha1) {
    const b = bytes();
    if (b) {
      const got = await gitBlobSha1(b);
      if (got !== f.gitSha1) throw corrupt(f, got);
    }
  }
}

const describeError = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

export interface FileStoreOptions {
  locks?: Locks;
  /** Bytes per stored part of a file of `size` bytes (tests make parts small); partBytesFor by default. */
  partBytes?: (size: number) => number;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const isNonNegInts = (x: unknown): x is number[] => Array.isArray(x) && x.every((n) => Number.isInteger(n) && n > 0);
/** If-Range takes a strong validator only (a weak one would make the server send the whole file anyway). */
const strongEtag = (etag: string | null) => (etag && !etag.startsWith('W/') ? etag : null);

/** The server did not continue where the stored parts end (another start, a changed file): start again from 0. */
class RestartDownload extends Error {}

export class FileStore {
  /** Keys downloaded and verified during this page's life: reading them back skips a second hash. */
  private fresh = new Set<string>();
  /** Files storage refused, kept here for this page's life. */
  private memory = new MemoryStorage();
  /** Why storage refused a write; null while it has taken every one. */
  private refused: string | null = null;
  private probed = false;
  private locks: Locks;
  private partBytes: (size: number) => number;

  constructor(
    private storage: ModelStorage,
    private fetcher: Fetcher,
    options: FileStoreOptions = {},
  ) {
    this.locks = options.locks ?? noLocks;
    this.partBytes = options.partBytes ?? partBytesFor;
    if (storage.persistent === false) this.refused = 'this browser offers no storage for model files (no Cache API)';
  }

  /** Whether files outlive this page: false once storage refused a write (or there is none). */
  state(): StorageState {
    return this.refused === null ? { kept: true } : { kept: false, reason: this.refused };
  }

  private async match(key: string): Promise<Response | undefined> {
    return (await this.storage.match(key)) ?? (await this.memory.match(key));
  }

  private async readJson<T>(key: string): Promise<T | null> {
    const res = await this.storage.match(key);
    if (!res) return null;
    try {
      return JSON.parse(await res.text()) as T;
    } catch {
      return null;
    }
  }

  /** The index of a complete multi-part copy, when there is one. */
  private async readIndex(f: FileSpec): Promise<PartsIndex | null> {
    const idx = await this.readJson<PartsIndex>(indexKey(f));
    return idx && idx.v === 1 && idx.bytes === f.bytes && isNonNegInts(idx.parts) && sum(idx.parts) === f.bytes ? idx : null;
  }

  /** Whether the file is already stored (verified when it was written). */
  async has(f: FileSpec): Promise<boolean> {
    return (await this.match(storageKey(f))) !== undefined || (await this.readIndex(f)) !== null;
  }

  /** Bytes of the file in storage: all of them, those of an interrupted download, or 0. */
  async storedBytes(f: FileSpec): Promise<number> {
    if (await this.has(f)) return f.bytes;
    const st = await this.readPartial(f);
    return st ? sum(st.parts) : 0;
  }

  /** Forget the file: its stored copy, its parts, an interrupted download. Returns whether anything was there. */
  async delete(f: FileSpec): Promise<boolean> {
    const key = storageKey(f);
    this.fresh.delete(key);
    const gone = await Promise.all([this.storage.delete(key).catch(() => false), this.memory.delete(key), this.dropParts(f)]);
    return gone.some(Boolean);
  }

  /** Drop a multi-part copy or an interrupted download: index, partial entry and the parts (written from 0 up, so until the first gap). Returns whether anything was there. */
  private async dropParts(f: FileSpec): Promise<boolean> {
    const index = await this.storage.delete(indexKey(f)).catch(() => false);
    const partial = await this.storage.delete(partialKey(f)).catch(() => false);
    let i = 0;
    while (await this.storage.delete(partKey(f, i)).catch(() => false)) i++;
    return index || partial || i > 0;
  }

  private async readPartial(f: FileSpec): Promise<PartialState | null> {
    const st = await this.readJson<PartialState>(partialKey(f));
    return st && st.v === 1 && st.bytes === f.bytes && st.tag === keyTag(f) && isNonNegInts(st.parts) && sum(st.parts) < f.bytes ? st : null;
  }

  /**
   * An interrupted download of this file that can go on: its stored parts, hashed again (the final
   * sha256 covers the whole file), or null (nothing stored, or parts missing: then they are dropped).
   */
  private async resumable(f: FileSpec, signal: AbortSignal | undefined): Promise<{ state: PartialState; hasher: Sha256 } | null> {
    const raw = await this.storage.match(partialKey(f));
    if (!raw) return null;
    const state = await this.readPartial(f);
    const hasher = new Sha256();
    let ok = state !== null;
    for (let i = 0; ok && state && i < state.parts.length; i++) {
      const part = await this.storage.match(partKey(f, i));
      const n = part?.body ? await pump(part.body, (c) => void hasher.update(c), signal, `Downloading ${f.path}`).catch((e: unknown) => (e instanceof CancelledError ? Promise.reject(e) : -1)) : -1;
      ok = n === state.parts[i];
    }
    if (ok && state) return { state, hasher };
    await this.dropParts(f);
    return null;
  }

  /** Make sure the file is in storage, downloading it when missing (progress in bytes). */
  async ensure(f: FileSpec, onProgress: Progress, signal?: AbortSignal): Promise<void> {
    checkFileSize(f);
    const key = storageKey(f);
    if (await this.has(f)) {
      onProgress(f.bytes, f.bytes);
      return;
    }
    checkAbort(signal, `Downloading ${f.path}`);
    try {
      await this.locks.request(`webdit-file:${key}`, { signal }, async () => {
        // another tab or worker may have stored it while this one waited for the lock
        if (await this.has(f)) return onProgress(f.bytes, f.bytes);
        await this.download(f, key, onProgress, signal);
      });
    } catch (e) {
      if (signal?.aborted && !(e instanceof EngineError)) throw new CancelledError(`Downloading ${f.path}`);
      throw e;
    }
  }

  /**
   * One automatic retry when a body broke off, past the HTTP cache (the two-tab write race); a file
   * stored in parts continues from them. Then a clear error (Retry download continues too).
   */
  private async download(f: FileSpec, key: string, onProgress: Progress, signal?: AbortSignal): Promise<void> {
    await this.probe();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.downloadOnce(f, key, onProgress, signal, attempt > 0);
      } catch (e) {
        if (e instanceof RestartDownload) {
          attempt--;
          continue;
        }
        if (!(e instanceof BodyBrokeOff)) throw e;
        if (attempt === 0) continue;
        const kept = await this.storedBytes(f);
        throw downloadError(
          `Could not download ${f.path}: the connection broke off after ${e.loaded} of ${f.bytes} bytes (${e.message}).`,
          kept > 0 ? `Press Retry download: it continues from the ${kept} bytes already stored. Files already downloaded are kept.` : undefined,
        );
      }
    }
  }

  /** A tiny write before the first download: private windows and stubs that refuse every put are known at once. */
  private async probe(): Promise<void> {
    if (this.probed || this.refused !== null) return;
    this.probed = true;
    try {
      await this.storage.put(PROBE_KEY, new Response('1'));
      await this.storage.delete(PROBE_KEY);
    } catch (e) {
      this.refused = describeError(e);
    }
  }

  private async downloadOnce(f: FileSpec, key: string, onProgress: Progress, signal: AbortSignal | undefined, again: boolean): Promise<void> {
    const what = `Downloading ${f.path}`;
    const partSize = this.partBytes(f.bytes);
    // a file of several parts goes to storage part by part, so a later request can continue it
    // (not files checked by git blob id: those are small, and their check needs the whole file)
    const inParts = this.refused === null && f.bytes > partSize && !(f.gitSha1 && !f.sha256);
    const resumed = inParts ? await this.resumable(f, signal) : null;
    const offset = resumed ? sum(resumed.state.parts) : 0;
    // before the request, even at 0 bytes: while the response has not started (a slow server), the
    // file has its row and the page says which file it waits for (fault table 1b)
    onProgress(offset, f.bytes);
    // stopping the request stops both branches of the body (a file larger than listed, a cancel)
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort);
    const etag = strongEtag(resumed?.state.etag ?? null);
    const headers = offset > 0 ? { range: `bytes=${offset}-`, ...(etag && { 'if-range': etag }) } : undefined;
    let res: Response;
    try {
      res = await this.fetcher(f.url, { signal: stop.signal, ...((again || offset > 0) && { cache: 'no-store' as const }), ...(headers && { headers }) });
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) throw new CancelledError(what);
      throw downloadError(`Could not download ${f.path} (${(e as Error).message}).`);
    }
    let from = resumed;
    if (offset > 0) {
      // 206 from where the stored parts end: go on. Anything else (a 200 with the whole file because
      // If-Range found another ETag or the server ignores Range, a 416, a 206 from elsewhere): the
      // stored parts are dropped and the file starts again from byte 0
      const range = res.headers.get('content-range');
      const start = range ? /^bytes (\d+)-/.exec(range) : null;
      const continues = res.status === 206 && (!range || (start !== null && Number(start[1]) === offset));
      if (!continues) {
        await this.dropParts(f);
        from = null;
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => undefined);
          if (res.status === 206 || res.status === 416) {
            signal?.removeEventListener('abort', onAbort);
            throw new RestartDownload();
          }
        }
      }
    }
    if (!res.ok || !res.body) {
      signal?.removeEventListener('abort', onAbort);
      throw res.status === 404
        ? modelError(`Could not download ${f.path}: the server answered 404 Not Found for ${f.url}.`, 'The model folder is incomplete: every file listed in manifest.json must be next to it. Press Retry download once it is.', 'retry-load')
        : downloadError(`Could not download ${f.path}: the server answered ${res.status} ${res.statusText} for ${f.url}.`, 'Press Retry download. Files already downloaded are kept.');
    }
    try {
      return await this.receive(f, key, res, stop, from, onProgress, signal, again, partSize, inParts);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The body of a response (from byte 0, or after the stored parts of `resumed`) into storage, counted and hashed. */
  private async receive(
    f: FileSpec,
    key: string,
    res: Response,
    stop: AbortController,
    resumed: { state: PartialState; hasher: Sha256 } | null,
    onProgress: Progress,
    signal: AbortSignal | undefined,
    again: boolean,
    partSize: number,
    inParts: boolean,
  ): Promise<void> {
    const what = `Downloading ${f.path}`;
    if (inParts) return this.receiveParts(f, key, res, stop, resumed, onProgress, signal, again, partSize);
    // Storage that took writes: one branch goes there, the other is counted and hashed, so the
    // file is never whole in memory. Storage that refused: the chunks are kept for this page.
    const toMemory = this.refused !== null;
    const [toStore, toHash] = toMemory ? [null, res.body!] : res.body!.tee();
    const stored: Promise<unknown> = toStore
      ? this.storage.put(key, new Response(toStore, { headers: { 'content-length': String(f.bytes) } })).then(() => null, (e: unknown) => e ?? new Error('refused'))
      : Promise.resolve(null);
    const hasher = new Sha256();
    const chunks: Uint8Array[] | null = toMemory || !f.sha256 ? [] : null;
    let loaded = 0;
    try {
      try {
        await pump(toHash, (chunk) => {
          loaded += chunk.byteLength;
          if (loaded > f.bytes) throw tooLarge(f);
          hasher.update(chunk);
          chunks?.push(chunk);
          onProgress(loaded, f.bytes);
        }, signal, what);
      } catch (e) {
        stop.abort();
        throw e;
      }
      const refusedBy = await stored;
      if (loaded !== f.bytes) {
        throw modelError(`Model file ${f.path} has ${loaded} bytes but its manifest says ${f.bytes}: the download was cut short or the file was replaced.`, RETRY, 'retry-load');
      }
      await verifyHash(f, hasher, () => (chunks ? concat(chunks, loaded) : null));
      if (toMemory) {
        await this.memory.put(key, new Response(concat(chunks!, loaded) as BlobPart));
      } else if (refusedBy) {
        // storage refused this file after all (quota): fetch it once more, into memory this time
        this.refused = describeError(refusedBy);
        await this.storage.delete(key).catch(() => false);
        return await this.downloadOnce(f, key, onProgress, signal, again);
      }
    } catch (e) {
      await stored;
      if (!toMemory) await this.storage.delete(key).catch(() => false);
      throw e;
    }
    this.fresh.add(key);
  }

  /**
   * A multi-part body: parts of `partSize` bytes go to storage as they fill, each followed by the
   * partial entry that lists them. When the body breaks off or the job is cancelled the bytes
   * received so far are stored as one more part, so the next request continues exactly there.
   */
  private async receiveParts(
    f: FileSpec,
    key: string,
    res: Response,
    stop: AbortController,
    resumed: { state: PartialState; hasher: Sha256 } | null,
    onProgress: Progress,
    signal: AbortSignal | undefined,
    again: boolean,
    partSize: number,
  ): Promise<void> {
    const what = `Downloading ${f.path}`;
    const state: PartialState = resumed?.state ?? { v: 1, bytes: f.bytes, tag: keyTag(f), etag: res.headers.get('etag'), parts: [] };
    const hasher = resumed?.hasher ?? new Sha256();
    let loaded = sum(state.parts);
    let buffer: Uint8Array[] = [];
    let buffered = 0;
    let refusedBy: unknown = null;
    const commit = async () => {
      if (buffered === 0) return;
      const bytes = concat(buffer, buffered);
      buffer = [];
      buffered = 0;
      try {
        await this.storage.put(partKey(f, state.parts.length), new Response(bytes as BlobPart));
        state.parts.push(bytes.byteLength);
        if (sum(state.parts) < f.bytes) await this.storage.put(partialKey(f), new Response(JSON.stringify(state)));
      } catch (e) {
        refusedBy = e ?? new Error('refused');
        throw e;
      }
    };
    try {
      try {
        await pump(res.body!, async (chunk) => {
          loaded += chunk.byteLength;
          if (loaded > f.bytes) throw tooLarge(f);
          hasher.update(chunk);
          buffer.push(chunk);
          buffered += chunk.byteLength;
          onProgress(loaded, f.bytes);
          if (buffered >= partSize) await commit();
        }, signal, what);
      } catch (e) {
        stop.abort();
        // keep what arrived intact (a drop, a cancel): the next request continues after it
        if (refusedBy === null && (e instanceof BodyBrokeOff || e instanceof CancelledError)) await commit().catch(() => undefined);
        throw e;
      }
      await commit();
      if (loaded !== f.bytes) {
        throw modelError(`Model file ${f.path} has ${loaded} bytes but its manifest says ${f.bytes}: the download was cut short or the file was replaced.`, RETRY, 'retry-load');
      }
      await verifyHash(f, hasher, () => null);
      const index: PartsIndex = { v: 1, bytes: f.bytes, parts: state.parts };
      await this.storage.put(indexKey(f), new Response(JSON.stringify(index)));
      await this.storage.delete(partialKey(f)).catch(() => false);
    } catch (e) {
      if (refusedBy !== null) {
        // storage refused a part (quota): fetch the file once more, into memory this time
        this.refused = describeError(refusedBy);
        await this.dropParts(f);
        return await this.downloadOnce(f, key, onProgress, signal, again);
      }
      // bytes that cannot be right (too many, a wrong hash) are dropped; an interruption keeps them
      if (!(e instanceof BodyBrokeOff || e instanceof CancelledError)) await this.dropParts(f);
      throw e instanceof BodyBrokeOff ? new BodyBrokeOff(loaded, e.cause) : e;
    }
    this.fresh.add(key);
  }

  /**
   * The stored file as a stream: one entry, or its parts one after another. Null when it is not
   * stored, or a part went missing (then the index goes too, so ensure() downloads it again).
   */
  private async openBody(f: FileSpec): Promise<ReadableStream<Uint8Array> | null> {
    const whole = await this.match(storageKey(f));
    if (whole?.body) return whole.body;
    const parts = await this.storedParts(f);
    if (!parts) return null;
    let i = 0;
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    return new ReadableStream<Uint8Array>({
      async pull(c) {
        for (;;) {
          if (!reader) {
            if (i >= parts.length) return c.close();
            reader = parts[i++].body!.getReader();
          }
          const r = await reader.read();
          if (!r.done) return c.enqueue(r.value);
          reader = null;
        }
      },
      async cancel() {
        await reader?.cancel();
      },
    });
  }

  /** The responses of a complete multi-part copy, every part present, or null. */
  private async storedParts(f: FileSpec): Promise<Response[] | null> {
    const idx = await this.readIndex(f);
    if (!idx) return null;
    const parts = await Promise.all(idx.parts.map((_, i) => this.storage.match(partKey(f, i))));
    if (parts.every((p) => p?.body)) return parts as Response[];
    await this.dropParts(f);
    return null;
  }

  /** The verified bytes of a stored file (call ensure first). A corrupt or vanished copy is fetched again, once. */
  async read(f: FileSpec, signal?: AbortSignal): Promise<Uint8Array> {
    checkFileSize(f);
    const key = storageKey(f);
    for (let attempt = 0; ; attempt++) {
      const body = await this.openBody(f);
      if (!body) {
        // storage was cleared while the page ran (site data deleted, eviction)
        if (attempt > 0) throw modelError(`Model file ${f.path} vanished from browser storage while it loaded.`, 'Press Retry: it is downloaded again.', 'retry-load');
        this.fresh.delete(key);
        await this.ensure(f, () => undefined, signal);
        continue;
      }
      const out = new Uint8Array(f.bytes);
      const hasher = this.fresh.has(key) ? null : new Sha256();
      let n = 0;
      let over = false;
      await pump(body, (chunk) => {
        if (n + chunk.byteLength > f.bytes) over = true;
        else out.set(chunk, n);
        n += chunk.byteLength;
        hasher?.update(chunk);
      }, signal, `Reading ${f.path}`).catch((e: unknown) => {
        throw e instanceof BodyBrokeOff ? modelError(`Model file ${f.path} could not be read from browser storage (${e.message}).`, 'Press Retry: it is downloaded again.', 'retry-load') : e;
      });
      try {
        if (over || n !== f.bytes) throw modelError(`Model file ${f.path} in browser storage has ${n} bytes, not ${f.bytes}.`, 'Press Retry: it is downloaded again.', 'retry-load');
        if (hasher) await verifyHash(f, hasher, () => out);
        this.fresh.add(key);
        return out;
      } catch (e) {
        await this.delete(f);
        if (attempt > 0) throw e;
        // stored copy went bad (disk, a browser bug): fetch it once more
        await this.ensure(f, () => undefined, signal);
      }
    }
  }

  /**
   * A verified stored file as a Blob that stays on disk (the Cache API's own, or its parts joined):
   * how a file too large for one ArrayBuffer reaches ONNX Runtime (as an object URL). The hash is
   * checked by streaming it, never holding it.
   */
  async blob(f: FileSpec, signal?: AbortSignal): Promise<Blob> {
    checkFileSize(f);
    const key = storageKey(f);
    for (let attempt = 0; ; attempt++) {
      await this.ensure(f, () => undefined, signal);
      const whole = await this.match(storageKey(f));
      const parts = whole ? null : await this.storedParts(f);
      const blob = whole ? await whole.blob() : parts ? new Blob(await Promise.all(parts.map((p) => p.blob()))) : null;
      if (!blob) {
        if (attempt > 0) throw modelError(`Model file ${f.path} vanished from browser storage while it loaded.`, 'Press Retry: it is downloaded again.', 'retry-load');
        continue;
      }
      try {
        if (blob.size !== f.bytes) throw modelError(`Model file ${f.path} in browser storage has ${blob.size} bytes, not ${f.bytes}.`, 'Press Retry: it is downloaded again.', 'retry-load');
        if (!this.fresh.has(key) && f.sha256) {
          const hasher = new Sha256();
          await pump(blob.stream(), (c) => void hasher.update(c), signal, `Reading ${f.path}`);
          await verifyHash(f, hasher, () => null);
        }
        this.fresh.add(key);
        return blob;
      } catch (e) {
        if (e instanceof CancelledError) throw e;
        await this.delete(f);
        if (attempt > 0) throw e;
      }
    }
  }

  /** A small file (JSON) as text, verified. */
  async text(f: FileSpec, signal?: AbortSignal): Promise<string> {
    await this.ensure(f, () => undefined, signal);
    return new TextDecoder().decode(await this.read(f, signal));
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}
