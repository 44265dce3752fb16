/**
 * Model files: downloaded once into storage with byte progress and a streaming hash, read back
 * (hashed again) only when a session needs them. No file is ever held twice in JS memory.
 */
import { CancelledError, modelError } from '../errors';
import { gitBlobSha1, Sha256 } from './sha256';
import type { ModelStorage } from './storage';

export type Fetcher = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

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

const storageKey = (f: FileSpec) => `${f.url}#${f.sha256 ? 'sha256=' + f.sha256 : 'git=' + f.gitSha1}`;

function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError(what);
}

function corrupt(f: FileSpec, got: string): Error {
  return modelError(
    `${f.path} is corrupted: its hash is ${got.slice(0, 12)}…, the model folder says ${(f.sha256 ?? f.gitSha1 ?? '').slice(0, 12)}….`,
    'Reload to download it again. If you host this model, re-export it so manifest.json matches the files.',
  );
}

/** Read a body chunk by chunk into `sink`, counting bytes; stops with CancelledError on abort. */
async function pump(body: ReadableStream<Uint8Array>, sink: (chunk: Uint8Array) => void, signal: AbortSignal | undefined, what: string): Promise<number> {
  const reader = body.getReader();
  let n = 0;
  try {
    for (;;) {
      checkAbort(signal, what);
      const { done, value } = await reader.read();
      if (done) return n;
      n += value.byteLength;
      sink(value);
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

export class FileStore {
  /** Keys downloaded and verified during this page's life: reading them back skips a second hash. */
  private fresh = new Set<string>();

  constructor(
    private storage: ModelStorage,
    private fetcher: Fetcher,
  ) {}

  /** Whether the file is already stored (verified when it was written). */
  async has(f: FileSpec): Promise<boolean> {
    return (await this.storage.match(storageKey(f))) !== undefined;
  }

  /** Make sure the file is in storage, downloading it when missing (progress in bytes). */
  async ensure(f: FileSpec, onProgress: Progress, signal?: AbortSignal): Promise<void> {
    const key = storageKey(f);
    if (await this.storage.match(key)) {
      onProgress(f.bytes, f.bytes);
      return;
    }
    checkAbort(signal, `Downloading ${f.path}`);
    let res: Response;
    try {
      res = await this.fetcher(f.url, { signal });
    } catch (e) {
      if (signal?.aborted) throw new CancelledError(`Downloading ${f.path}`);
      throw modelError(`Could not download ${f.path} (${(e as Error).message}).`, 'Check your connection, then reload the page. Files already downloaded stay stored.');
    }
    if (!res.ok || !res.body) {
      throw modelError(
        `Could not download ${f.path}: the server answered ${res.status} ${res.statusText} for ${f.url}.`,
        res.status === 404 ? 'The model folder is incomplete: copy every file listed in manifest.json next to it.' : 'Reload the page to try again.',
      );
    }
    // one branch goes to storage, the other is counted and hashed: the file is never whole in memory
    const [toStore, toHash] = res.body.tee();
    const stored = this.storage.put(key, new Response(toStore, { headers: { 'content-length': String(f.bytes) } }));
    const hasher = new Sha256();
    const small: Uint8Array[] | null = f.sha256 ? null : [];
    let loaded = 0;
    try {
      await pump(toHash, (chunk) => {
        hasher.update(chunk);
        small?.push(chunk);
        loaded += chunk.byteLength;
        onProgress(Math.min(loaded, f.bytes), f.bytes);
      }, signal, `Downloading ${f.path}`);
      await stored;
      if (loaded !== f.bytes) {
        throw modelError(`${f.path} has ${loaded} bytes but the model folder says ${f.bytes}.`, 'The file was truncated or replaced: reload to download it again, or re-export the model folder.');
      }
      await verifyHash(f, hasher, () => (small ? concat(small, loaded) : null));
    } catch (e) {
      await stored.catch(() => undefined);
      await this.storage.delete(key);
      throw e;
    }
    this.fresh.add(key);
  }

  /** The verified bytes of a stored file (call ensure first). A corrupt copy is dropped and fetched again. */
  async read(f: FileSpec, signal?: AbortSignal): Promise<Uint8Array> {
    const key = storageKey(f);
    for (let attempt = 0; ; attempt++) {
      const res = await this.storage.match(key);
      if (!res?.body) throw modelError(`${f.path} is missing from storage.`, 'Reload the page to download the model again.');
      const out = new Uint8Array(f.bytes);
      const hasher = this.fresh.has(key) ? null : new Sha256();
      let n = 0;
      let over = false;
      await pump(res.body, (chunk) => {
        if (n + chunk.byteLength > f.bytes) over = true;
        else out.set(chunk, n);
        n += chunk.byteLength;
        hasher?.update(chunk);
      }, signal, `Reading ${f.path}`);
      try {
        if (over || n !== f.bytes) throw modelError(`${f.path} in storage has ${n} bytes, not ${f.bytes}.`, 'Reload the page to download it again.');
        if (hasher) await verifyHash(f, hasher, () => out);
        this.fresh.add(key);
        return out;
      } catch (e) {
        await this.storage.delete(key);
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
