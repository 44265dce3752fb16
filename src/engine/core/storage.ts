/**
 * Where model files live between visits. The interface is the Cache API's own three methods, so
 * the browser implementation is a pass-through.
 *
 * Why the Cache API and not OPFS: it is available in windows and workers in every browser, takes a
 * streamed Response body (a multi-GB file goes to disk chunk by chunk, never whole in memory), hands
 * it back as a stream, counts against the same origin quota as OPFS (Chrome: up to ~60% of the disk),
 * and needs no worker-only sync handles. A file is stored under a key that includes its sha256, and
 * only after the streamed hash matched; reads are hashed again before use.
 */
export interface ModelStorage {
  /** false: files do not outlive the page (no Cache API here). */
  readonly persistent?: boolean;
  match(key: string): Promise<Response | undefined>;
  put(key: string, response: Response): Promise<void>;
  delete(key: string): Promise<boolean>;
}

/** The Cache API cache that holds model files (the service worker prunes old embedded-model files in it). */
export const MODEL_CACHE = 'webdit-models-v2';

export class BrowserStorage implements ModelStorage {
  constructor(private name = MODEL_CACHE) {}

  async match(key: string) {
    try {
      return await (await caches.open(this.name)).match(key);
    } catch {
      return undefined; // storage disabled (some private windows): download instead
    }
  }

  async put(key: string, response: Response) {
    await (await caches.open(this.name)).put(key, response);
  }

  async delete(key: string) {
    try {
      return await (await caches.open(this.name)).delete(key);
    } catch {
      return false;
    }
  }
}

/** In-memory storage, for Node and for browsers without the Cache API. */
export class MemoryStorage implements ModelStorage {
  readonly entries = new Map<string, Uint8Array>();

  /** Node tests use it as a stand-in for the Cache API (persistent); a browser without one gets persistent=false. */
  constructor(readonly persistent = true) {}

  async match(key: string) {
    const bytes = this.entries.get(key);
    return bytes ? new Response(bytes as BlobPart) : undefined;
  }

  async put(key: string, response: Response) {
    this.entries.set(key, new Uint8Array(await response.arrayBuffer()));
  }

  async delete(key: string) {
    return this.entries.delete(key);
  }
}

export function defaultStorage(): ModelStorage {
  return typeof caches !== 'undefined' ? new BrowserStorage() : new MemoryStorage(false);
}
