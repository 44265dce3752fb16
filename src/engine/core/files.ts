/**
 * Model files: downloaded once into storage with byte progress and a streaming hash, read back
 * (hashed again) only when a session needs them. No file is ever held twice in JS memory.
 *
 * Tabs share: a download holds a Web Lock named after the file, so a second tab (or worker)
 * waits for the first and then reads the stored copy instead of racing it over the network
 * (two Chromium requests writing one HTTP cache entry fail with ERR_CACHE_WRITE_FAILURE).
 * Storage that refuses a write (quota, private windows) costs only persistence: the file is kept
 * in memory for this page, and `report()` says the next visit downloads it again.
 */
import { CancelledError, downloadError, EngineError, modelError } from '../errors';
import { gitBlobSha1, Sha256 } from './sha256';
import { MemoryStorage, type ModelStorage } from './storage';

export type Fetcher = (url: string, init?: { signal?: AbortSignal; cache?: RequestCache }) => Promise<Response>;

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

const storageKey = (f: FileSpec) => `${f.url}#${f.sha256 ? 'sha256=' + f.sha256 : 'git=' + f.gitSha1}`;
const PROBE_KEY = 'webdit-storage-probe';

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
async function pump(body: ReadableStream<Uint8Array>, sink: (chunk: Uint8Array) => void, signal: AbortSignal | undefined, what: string): Promise<number> {
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
      sink(chunk.value);
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
}

export class FileStore {
  /** Keys downloaded and verified during this page's life: reading them back skips a second hash. */
  private fresh = new Set<string>();
  /** Files storage refused, kept here for this page's life. */
  private memory = new MemoryStorage();
  /** Why storage refused a write; null while it has taken every one. */
  private refused: string | null = null;
  private probed = false;
  private locks: Locks;

  constructor(
    private storage: ModelStorage,
    private fetcher: Fetcher,
    options: FileStoreOptions = {},
  ) {
    this.locks = options.locks ?? noLocks;
    if (storage.persistent === false) this.refused = 'this browser offers no storage for model files (no Cache API)';
  }

  /** Whether files outlive this page: false once storage refused a write (or there is none). */
  state(): StorageState {
    return this.refused === null ? { kept: true } : { kept: false, reason: this.refused };
  }

  private async match(key: string): Promise<Response | undefined> {
    return (await this.storage.match(key)) ?? (await this.memory.match(key));
  }

  /** Whether the file is already stored (verified when it was written). */
  async has(f: FileSpec): Promise<boolean> {
    return (await this.match(storageKey(f))) !== undefined;
  }

  /** Make sure the file is in storage, downloading it when missing (progress in bytes). */
  async ensure(f: FileSpec, onProgress: Progress, signal?: AbortSignal): Promise<void> {
    checkFileSize(f);
    const key = storageKey(f);
    if (await this.match(key)) {
      onProgress(f.bytes, f.bytes);
      return;
    }
    checkAbort(signal, `Downloading ${f.path}`);
    try {
      await this.locks.request(`webdit-file:${key}`, { signal }, async () => {
        // another tab or worker may have stored it while this one waited for the lock
        if (await this.match(key)) return onProgress(f.bytes, f.bytes);
        await this.download(f, key, onProgress, signal);
      });
    } catch (e) {
      if (signal?.aborted && !(e instanceof EngineError)) throw new CancelledError(`Downloading ${f.path}`);
      throw e;
    }
  }

  /** One automatic retry when a body broke off, past the HTTP cache (the two-tab write race); then a clear error. */
  private async download(f: FileSpec, key: string, onProgress: Progress, signal?: AbortSignal): Promise<void> {
    await this.probe();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.downloadOnce(f, key, onProgress, signal, attempt > 0);
      } catch (e) {
        if (!(e instanceof BodyBrokeOff)) throw e;
        if (attempt === 0) continue;
        throw downloadError(`Could not download ${f.path}: the connection broke off after ${e.loaded} of ${f.bytes} bytes (${e.message}).`);
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
    // stopping the request stops both branches of the body (a file larger than listed, a cancel)
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort);
    let res: Response;
    try {
      res = await this.fetcher(f.url, { signal: stop.signal, ...(again && { cache: 'no-store' as const }) });
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) throw new CancelledError(what);
      throw downloadError(`Could not download ${f.path} (${(e as Error).message}).`);
    }
    if (!res.ok || !res.body) {
      signal?.removeEventListener('abort', onAbort);
      throw res.status === 404
        ? modelError(`Could not download ${f.path}: the server answered 404 Not Found for ${f.url}.`, 'The model folder is incomplete: every file listed in manifest.json must be next to it. Press Retry download once it is.', 'retry-load')
        : downloadError(`Could not download ${f.path}: the server answered ${res.status} ${res.statusText} for ${f.url}.`, 'Press Retry download. Files already downloaded are kept.');
    }
    // Storage that took writes: one branch goes there, the other is counted and hashed, so the
    // file is never whole in memory. Storage that refused: the chunks are kept for this page.
    const toMemory = this.refused !== null;
    const [toStore, toHash] = toMemory ? [null, res.body] : res.body.tee();
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
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    this.fresh.add(key);
  }

  /** The verified bytes of a stored file (call ensure first). A corrupt or vanished copy is fetched again, once. */
  async read(f: FileSpec, signal?: AbortSignal): Promise<Uint8Array> {
    checkFileSize(f);
    const key = storageKey(f);
    for (let attempt = 0; ; attempt++) {
      const res = await this.match(key);
      if (!res?.body) {
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
      await pump(res.body, (chunk) => {
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
        await this.storage.delete(key).catch(() => false);
        await this.memory.delete(key);
        if (attempt > 0) throw e;
        // stored copy went bad (disk, a browser bug): fetch it once more
        await this.ensure(f, () => undefined, signal);
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
