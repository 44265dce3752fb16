/**
 * The service worker's decisions, as pure functions (src/pwa/sw.ts does the I/O): which requests it
 * answers and how, which caches are stale after an update.
 *
 * What it stores: the app shell (index.html, the hashed JS/CSS/WASM of the build, icons, the web app
 * manifest) and the embedded model's manifest.json, in one cache per build (`webdit-shell-<version>`,
 * the version a hash of every precached file's name and bytes, the model manifest included). The
 * model's files themselves are NOT stored here: the engine keeps them in its own cache
 * (`webdit-models-v2`, src/engine/core/storage.ts), verified by sha256, and reads them from there
 * before it asks the network, so a second copy would only double the disk use. On an update the
 * service worker drops the old shell cache and the engine's entries for embedded-model files the new
 * manifest no longer lists (or lists with another sha256).
 *
 * It never answers a cross-origin request (Hub downloads go straight to the network and into the
 * engine's cache) nor anything but GET.
 */

export interface SwConfig {
  /** Hash of the precached files; names the shell cache. */
  version: string;
  /** Scope-relative URLs to precache ('' is the scope itself: index.html). */
  shell: string[];
  /**
   * The shell files whose name does not change with their content (index.html, the public dir's):
   * installed past the HTTP cache. The others carry a content hash in their name, so the copy the
   * first visit just put in the HTTP cache is the right one (ORT's 26 MB .wasm is not fetched twice).
   */
  mutable: string[];
  /** The embedded model: its folder (scope-relative, ending in '/') and its files' sha256 by path. */
  model: { base: string; files: Record<string, string> };
}

export const SHELL_CACHE_PREFIX = 'webdit-shell-';
export const shellCacheName = (version: string) => SHELL_CACHE_PREFIX + version;

/**
 * - `shell`: a page navigation: the network first (so an online visit sees a new deploy), the
 *   cached index.html when the network fails.
 * - `network-first`: the embedded model's manifest.json (the engine asks for it on every load).
 * - `cache-first`: a precached file of this build (hashed names never change content).
 * - `pass`: not ours to answer; the browser fetches it as if there were no service worker.
 */
export type Route = 'shell' | 'network-first' | 'cache-first' | 'pass';

export interface RequestInfo {
  method: string;
  url: string;
  mode: string;
}

/** The last path segment has a file extension (`/models/x/README.md`), i.e. it is not an app route. */
const looksLikeFile = (pathname: string) => /\.[A-Za-z0-9]+$/.test(pathname.slice(pathname.lastIndexOf('/') + 1));

export function routeFor(req: RequestInfo, scope: string, cfg: SwConfig): Route {
  if (req.method !== 'GET') return 'pass';
  const url = new URL(req.url);
  const root = new URL(scope);
  if (url.origin !== root.origin || !url.pathname.startsWith(root.pathname)) return 'pass';
  const rel = url.pathname.slice(root.pathname.length);
  if (req.mode === 'navigate') return rel === '' || rel === 'index.html' || !looksLikeFile(rel) ? 'shell' : 'pass';
  if (url.search) return 'pass';
  if (rel === cfg.model.base + 'manifest.json') return 'network-first';
  return rel !== '' && cfg.shell.includes(rel) ? 'cache-first' : 'pass';
}

/** Shell caches of other builds (ours are named by prefix; other caches are left alone). */
export function staleShellCaches(cacheNames: string[], version: string): string[] {
  return cacheNames.filter((n) => n.startsWith(SHELL_CACHE_PREFIX) && n !== shellCacheName(version));
}

/**
 * Entries of the engine's model cache that belong to an older embedded model: under the embedded
 * model's folder, and either a path the current manifest does not list or stored under another
 * sha256 (the engine keys files as `<url>#sha256=<hex>`). Anything else (other models, Hub files)
 * is the engine's business and stays.
 */
export function staleModelEntries(urls: string[], scope: string, cfg: SwConfig): string[] {
  const base = new URL(cfg.model.base, scope).href;
  return urls.filter((u) => {
    const url = new URL(u);
    const plain = url.origin + url.pathname;
    if (!plain.startsWith(base)) return false;
    const sha = cfg.model.files[decodeURIComponent(plain.slice(base.length))];
    if (sha === undefined) return true;
    const stored = /^#sha256=([0-9a-f]{64})$/.exec(url.hash);
    return stored !== null && stored[1] !== sha;
  });
}
