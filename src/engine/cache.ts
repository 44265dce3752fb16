import { modelError } from './errors';

/** Where model files live between visits: a two-method subset of the Cache API. */
export interface ModelCache {
  match(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
}

/** Browser Cache API storage (survives reloads; one entry per file URL). */
export class BrowserCache implements ModelCache {
  constructor(private name = 'webdit-models-v1') {}

  async match(url: string): Promise<Uint8Array | undefined> {
    try {
      const res = await (await caches.open(this.name)).match(url);
      return res ? new Uint8Array(await res.arrayBuffer()) : undefined;
    } catch {
      return undefined; // storage disabled (some private windows): download instead
    }
  }

  async put(url: string, bytes: Uint8Array): Promise<void> {
    const cache = await caches.open(this.name);
    await cache.put(url, new Response(bytes as BlobPart, { headers: { 'content-length': String(bytes.byteLength) } }));
  }
}

/** In-memory storage, for Node and for browsers without the Cache API (e.g. private windows). */
export class MemoryCache implements ModelCache {
  private entries = new Map<string, Uint8Array>();
  async match(url: string) {
    return this.entries.get(url);
  }
  async put(url: string, bytes: Uint8Array) {
    this.entries.set(url, bytes);
  }
}

export function defaultCache(): ModelCache {
  return typeof caches !== 'undefined' ? new BrowserCache() : new MemoryCache();
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as BufferSource);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export type Fetcher = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

/** Read a response body with a progress callback per chunk. */
export async function readWithProgress(res: Response, total: number, onProgress: (loaded: number) => void): Promise<Uint8Array> {
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    onProgress(buf.byteLength);
    return buf;
  }
  const out = new Uint8Array(total);
  let loaded = 0;
  const reader = res.body.getReader();
  const extra: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength <= total) out.set(value, loaded);
    else extra.push(value); // more bytes than the manifest says: caught by the size check below
    loaded += value.byteLength;
    onProgress(loaded);
  }
  if (loaded !== total) return concat(out.subarray(0, Math.min(loaded, total)), extra, loaded);
  return out;
}

function concat(head: Uint8Array, rest: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(head, 0);
  let o = head.byteLength;
  for (const r of rest) {
    out.set(r, o);
    o += r.byteLength;
  }
  return out;
}

export interface FileSpec {
  url: string;
  name: string;
  bytes: number;
  sha256: string;
}

/**
 * A model file from the cache or the network, checked against the manifest's size and sha256
 * before it is used or cached. A corrupt cached copy is dropped and downloaded again.
 */
export async function fetchVerified(
  spec: FileSpec,
  cache: ModelCache,
  fetcher: Fetcher,
  onProgress: (loaded: number, total: number) => void,
): Promise<Uint8Array> {
  const cached = await cache.match(spec.url);
  if (cached && cached.byteLength === spec.bytes && (await sha256Hex(cached)) === spec.sha256) {
    onProgress(spec.bytes, spec.bytes);
    return cached;
  }
  let res: Response;
  try {
    res = await fetcher(spec.url);
  } catch (e) {
    throw modelError(
      `Could not download ${spec.name} (${(e as Error).message}).`,
      'Check your connection, then reload the page. Files already downloaded stay cached.',
    );
  }
  if (!res.ok) {
    throw modelError(
      `Could not download ${spec.name}: the server answered ${res.status} ${res.statusText} for ${spec.url}.`,
      res.status === 404
        ? 'The model folder is incomplete: copy every file listed in manifest.json next to it.'
        : 'Reload the page to try again.',
    );
  }
  const bytes = await readWithProgress(res, spec.bytes, (loaded) => onProgress(loaded, spec.bytes));
  if (bytes.byteLength !== spec.bytes) {
    throw modelError(
      `${spec.name} has ${bytes.byteLength} bytes but the manifest says ${spec.bytes}.`,
      'The file was truncated or replaced: reload to download it again, or re-export the model folder.',
    );
  }
  const hash = await sha256Hex(bytes);
  if (hash !== spec.sha256) {
    throw modelError(
      `${spec.name} is corrupted: its sha256 is ${hash.slice(0, 12)}…, the manifest expects ${spec.sha256.slice(0, 12)}….`,
      'Reload to download it again. If you host this model, re-export it so manifest.json matches the files.',
    );
  }
  await cache.put(spec.url, bytes).catch(() => undefined); // a full disk must not stop the studio
  return bytes;
}
