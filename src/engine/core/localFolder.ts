/**
 * Model folders opened from disk ("open a model folder from disk" in the picker). The page reads the
 * files the user picked, checks them (against the folder's manifest.json, or hashes them when it has
 * none) and stores them in the model cache exactly like downloads (FileStore.ensure, sha256 checked
 * on the way in); what remains to serve is the folder's file list, kept in a small cache of its own.
 * The folder then has a URL in Hub layout on our own origin,
 *   <origin><base>webdit-local/local/<name>/resolve/local/
 * which the engine loads like any other (`?model=` works across reloads): its fetcher answers these
 * URLs from that cache (manifest.json, the tree listing) and never from the network. Model files are
 * already in storage, so they are never fetched; one evicted since says to open the folder again.
 */
import { modelError } from '../errors';
import { FileStore, type Fetcher, type FileSpec } from './files';
import { parseManifest } from './folder';
import { Sha256 } from './sha256';
import { BrowserStorage, type ModelStorage } from './storage';

/** The Cache API cache that holds the listings of folders opened from disk. */
export const LOCAL_CACHE = 'webdit-local-v1';
export const LOCAL_SEGMENT = 'webdit-local/';
export const LOCAL_REVISION = 'local';

/** `<root>webdit-local/` for the app's root URL (location.origin + BASE_URL). */
export const localRoot = (appRoot: string) => appRoot.replace(/\/?$/, '/') + LOCAL_SEGMENT;

export function isLocalUrl(url: string, appRoot: string): boolean {
  return url.startsWith(localRoot(appRoot));
}

/** A folder name as the last part of a repo-like id: letters, digits, - _ . only. */
export function localName(folder: string): string {
  const n = folder.replace(/[^\w.-]+/g, '-').replace(/^[.-]+|[.-]+$/g, '').slice(0, 80);
  return n || 'model';
}

export const localBase = (appRoot: string, name: string) => `${localRoot(appRoot)}local/${name}/resolve/${LOCAL_REVISION}/`;
export const localTreeUrl = (appRoot: string, name: string) => `${localRoot(appRoot)}api/models/local/${name}/tree/${LOCAL_REVISION}?recursive=true`;

/**
 * The engine's fetcher, with folders opened from disk answered from LOCAL_CACHE: their manifest.json
 * and tree listing; a model file (which the model cache should hold) is answered by a clear error.
 */
export function withLocalFolders(fetcher: Fetcher, appRoot: string, open: () => Promise<Pick<Cache, 'match'>> = () => caches.open(LOCAL_CACHE)): Fetcher {
  return async (url, init) => {
    if (!isLocalUrl(url, appRoot)) return fetcher(url, init);
    const hit = await (await open()).match(url).catch(() => undefined);
    if (hit) return hit;
    if (url.endsWith('/manifest.json')) return new Response('not found', { status: 404, statusText: 'Not Found' });
    if (url.includes('/api/models/')) {
      throw new TypeError('this folder was opened from disk and its file list is no longer in browser storage: open the folder again in the model picker');
    }
    throw new TypeError('this file was opened from disk and is no longer in browser storage: open the folder again in the model picker');
  };
}

/** A picked file and its path inside the folder (webkitRelativePath without the folder's own name). */
export interface PickedFile {
  path: string;
  file: Blob;
}

/** Files a model never needs: hidden files and the Hub client's own cache folder. */
const ignored = (path: string) => path.split('/').some((part) => part.startsWith('.'));

/** `webkitRelativePath`s -> the folder's name and its files by path inside it. */
export function pickedFolder(files: readonly { webkitRelativePath: string; file: Blob }[]): { name: string; files: PickedFile[] } {
  if (files.length === 0) throw modelError('The folder you opened has no files.', 'Open the model folder itself (the one with model_index.json or manifest.json).');
  const roots = new Set(files.map((f) => f.webkitRelativePath.split('/')[0]));
  const name = localName(roots.size === 1 ? [...roots][0] : 'model');
  const strip = roots.size === 1;
  const picked = files
    .map((f) => ({ path: strip ? f.webkitRelativePath.split('/').slice(1).join('/') : f.webkitRelativePath, file: f.file }))
    .filter((f) => f.path && !ignored(f.path));
  return { name, files: picked };
}

async function sha256Of(blob: Blob, onBytes: (n: number) => void): Promise<string> {
  const hasher = new Sha256();
  const reader = blob.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return hasher.hex();
    hasher.update(value);
    onBytes(value.byteLength);
  }
}

export type ImportProgress = (stage: 'hashing' | 'storing', done: number, total: number) => void;

/**
 * Store a folder opened from disk as a model the engine can load: every file checked and put in
 * the model cache (the same keys and checks as a download), its listing in LOCAL_CACHE. Returns the
 * folder URL to load. A folder with manifest.json is checked against it (a file missing, or of
 * another size or hash, is named); one without gets every file hashed here, as the Hub's tree
 * listing would give them.
 */
export async function importLocalFolder(
  picked: { name: string; files: PickedFile[] },
  appRoot: string,
  options: { storage?: ModelStorage; listings?: Pick<Cache, 'put'>; onProgress?: ImportProgress } = {},
): Promise<string> {
  const { name, files } = picked;
  const base = localBase(appRoot, name);
  const byPath = new Map(files.map((f) => [f.path, f.file]));
  const manifestFile = byPath.get('manifest.json');
  const total = files.reduce((n, f) => n + f.file.size, 0);
  const progress = options.onProgress ?? (() => undefined);
  let specs: FileSpec[];
  let listing: { url: string; body: string };

  if (manifestFile) {
    const text = await manifestFile.text();
    const manifest = parseManifest(text);
    specs = Object.entries(manifest.files).map(([path, f]) => {
      const file = byPath.get(path);
      if (!file) throw modelError(`The folder you opened has no ${path}, which its manifest.json lists.`, 'Open the complete model folder (every file manifest.json lists).');
      if (file.size !== f.bytes) throw modelError(`${path} in the folder you opened has ${file.size} bytes; its manifest.json says ${f.bytes}.`, 'The folder is incomplete or was changed: download it again, then open it.');
      return { path, url: base + path, bytes: f.bytes, sha256: f.sha256 };
    });
    listing = { url: base + 'manifest.json', body: text };
  } else {
    if (!byPath.has('model_index.json') && !files.some((f) => f.path.endsWith('.onnx'))) {
      throw modelError(`The folder "${name}" has no manifest.json, model_index.json or .onnx graph: it is not a model folder.`, 'Open the model folder itself (the one with model_index.json, or onnx/ for Z-Image).');
    }
    let hashed = 0;
    specs = [];
    for (const f of files) {
      if (f.file.size === 0) continue;
      const sha256 = await sha256Of(f.file, (n) => progress('hashing', (hashed += n), total));
      specs.push({ path: f.path, url: base + f.path.split('/').map(encodeURIComponent).join('/'), bytes: f.file.size, sha256 });
    }
    const tree = specs.map((s) => ({ type: 'file', path: s.path, size: s.bytes, oid: '', lfs: { oid: s.sha256, size: s.bytes } }));
    listing = { url: localTreeUrl(appRoot, name), body: JSON.stringify(tree) };
  }

  // into the model cache through the same door as downloads: streamed, hashed, stored under the hash
  const serve: Fetcher = async (url) => {
    const spec = specs.find((s) => s.url === url);
    const file = spec && byPath.get(spec.path);
    return file ? new Response(file, { headers: { 'content-length': String(file.size) } }) : new Response('not found', { status: 404, statusText: 'Not Found' });
  };
  const store = new FileStore(options.storage ?? new BrowserStorage(), serve);
  let stored = 0;
  for (const spec of specs) {
    try {
      await store.ensure(spec, (loaded) => progress('storing', stored + loaded, total));
    } catch (e) {
      if (e instanceof Error && /is corrupted/.test(e.message)) {
        throw modelError(`${spec.path} in the folder you opened does not match its manifest.json (its sha256 differs).`, 'The folder is damaged or was changed after its manifest was written: download it again, then open it.');
      }
      throw e;
    }
    stored += spec.bytes;
  }
  const listings = options.listings ?? (await caches.open(LOCAL_CACHE));
  await listings.put(listing.url, new Response(listing.body, { headers: { 'content-type': 'application/json' } }));
  return base;
}

/** The engine's default fetcher: the network, with folders opened from disk answered from storage (browsers only). */
export function defaultFetcher(): Fetcher {
  const network: Fetcher = (url, init) => fetch(url, init);
  const loc = (globalThis as { location?: Location }).location;
  if (!loc || typeof caches === 'undefined') return network;
  return withLocalFolders(network, new URL(import.meta.env.BASE_URL ?? '/', loc.origin).href);
}
