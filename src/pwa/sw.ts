/// <reference lib="webworker" />
/**
 * The studio's service worker (built to /sw.js by src/pwa/plugin.ts, which fills in the build's
 * file list and version). See swCore.ts for what it stores and why.
 *
 * Responses come from the server with their headers (COOP/COEP/CORP, CSP) and are stored as they
 * came, so a page served from the cache offline is still cross-origin isolated and still under the
 * policy.
 */
import { MODEL_CACHE } from '../engine/core/storage';
import { routeFor, shellCacheName, staleModelEntries, staleShellCaches, type SwConfig } from './swCore';

declare const __WEBDIT_SW__: SwConfig;

const sw = self as unknown as ServiceWorkerGlobalScope;
const cfg = __WEBDIT_SW__;
const SHELL = shellCacheName(cfg.version);
const scope = () => sw.registration.scope;

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL);
      // files without a hash in their name skip the HTTP cache, so a stale copy cannot enter a new build's cache
      await cache.addAll(cfg.shell.map((u) => new Request(new URL(u, scope()).href, { cache: cfg.mutable.includes(u) ? 'reload' : 'default' })));
      // a new build takes over at once: everything the page needs is loaded when it starts
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      await Promise.all(staleShellCaches(await caches.keys(), cfg.version).map((n) => caches.delete(n)));
      if (await caches.has(MODEL_CACHE)) {
        const models = await caches.open(MODEL_CACHE);
        const stale = staleModelEntries((await models.keys()).map((r) => r.url), scope(), cfg);
        await Promise.all(stale.map((u) => models.delete(u)));
      }
      await sw.clients.claim();
    })(),
  );
});

async function fromCache(request: Request): Promise<Response | undefined> {
  return (await caches.open(SHELL)).match(request);
}

async function shell(request: Request): Promise<Response> {
  try {
    return await fetch(request);
  } catch (e) {
    const cached = await (await caches.open(SHELL)).match(new URL('', scope()).href);
    if (cached) return cached;
    throw e;
  }
}

async function networkFirst(request: Request): Promise<Response> {
  try {
    const res = await fetch(request);
    if (res.ok) await (await caches.open(SHELL)).put(request, res.clone());
    return res;
  } catch (e) {
    const cached = await fromCache(request);
    if (cached) return cached;
    throw e;
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  return (await fromCache(request)) ?? fetch(request);
}

sw.addEventListener('fetch', (event) => {
  const { request } = event;
  const route = routeFor(request, scope(), cfg);
  if (route === 'pass') return;
  event.respondWith(route === 'shell' ? shell(request) : route === 'network-first' ? networkFirst(request) : cacheFirst(request));
});
