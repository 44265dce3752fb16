/**
 * The studio after its first visit works with the network off, and a new deploy replaces what was
 * stored: the service worker (src/pwa/sw.ts) keeps the app shell, the engine keeps the model.
 * Served by src/pwa/testing/appServer.ts (the build in E2E_DIST, with vite preview's headers) so a
 * test can change what the server sends (a new deploy) and take it off the network for real, on
 * top of the browser context going offline. And the PWA's files: favicon, web app manifest, icons.
 */
import { expect, test, type Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { psnr } from '../src/engine/testing/fixtures';
import { contentSecurityPolicy } from '../src/pwa/csp';
import { startAppServer, type AppServer } from '../src/pwa/testing/appServer';
import { appState, generate, isolation, recordViolations, setup, violations } from './pwa-helpers';

const DIST = process.env.E2E_DIST ?? 'dist';
const MODEL_FILES = Object.keys(JSON.parse(fs.readFileSync('public/models/webdit-tiny/manifest.json', 'utf8')).files as Record<string, unknown>);

/** Cache name -> the URLs it holds. */
const cacheContents = (page: Page) =>
  page.evaluate(async () => {
    const out: Record<string, string[]> = {};
    for (const name of await caches.keys()) out[name] = (await (await caches.open(name)).keys()).map((r) => r.url);
    return out;
  });

const distinctPaths = (urls: string[]) => [...new Set(urls.map((u) => new URL(u).pathname))].sort();

const shellCaches = (caches: Record<string, string[]>) => Object.keys(caches).filter((n) => n.startsWith('webdit-shell-'));

/** Wait until the service worker controls the page and its shell cache is complete. */
async function serviceWorkerReady(page: Page): Promise<string> {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
  const names = shellCaches(await cacheContents(page));
  expect(names).toHaveLength(1);
  return names[0];
}

test.describe('offline, with the service worker', () => {
  test.use({ serviceWorkers: 'allow' });
  let app: AppServer;
  test.beforeEach(async () => {
    app = await startAppServer(DIST);
  });
  test.afterEach(() => app.close());

  test('a second visit with the network off loads the studio and the model and makes the same image', async ({ page, context }, info) => {
    const { backend, run } = setup(info);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await recordViolations(page);

    // 1. first visit, online: the model downloads, an image is made, the service worker installs
    await page.goto(`${app.url}/?backend=${backend}`);
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    const online = await generate(page, run);
    const p = psnr(online, Buffer.from(run.rgb.b64, 'base64'));
    console.log(`[${backend}] first visit vs PyTorch: PSNR ${p.toFixed(1)} dB`);
    expect(p).toBeGreaterThanOrEqual(35);
    const shell = await serviceWorkerReady(page);
    const stored = await cacheContents(page);
    // the shell cache holds the app (index.html, its hashed assets, ORT's .wasm) and the model's manifest, no model file
    const shellPaths = stored[shell].map((u) => new URL(u).pathname);
    expect(shellPaths).toEqual(expect.arrayContaining(['/', '/favicon.ico', '/manifest.webmanifest', '/models/webdit-tiny/manifest.json']));
    expect(shellPaths.some((p) => /^\/assets\/ort-wasm.*\.wasm$/.test(p))).toBe(true);
    expect(shellPaths.some((p) => /^\/assets\/worker-.*\.js$/.test(p))).toBe(true);
    expect(shellPaths.filter((p) => p.endsWith('.onnx'))).toEqual([]);
    // the model's files are stored once, by the engine (large ones in parts: one path, several keys)
    expect(distinctPaths(stored['webdit-models-v2'])).toEqual(MODEL_FILES.map((f) => `/models/webdit-tiny/${f}`).sort());
    // and nothing was downloaded twice: each model file and ORT's .wasm came in full once (the service
    // worker's install revalidates hashed assets against the HTTP cache: 304)
    const full = app.requests.filter((r) => r.startsWith('200 '));
    for (const f of MODEL_FILES.filter((f) => f.endsWith('.onnx'))) expect(full.filter((r) => r === `200 /models/webdit-tiny/${f}`), f).toHaveLength(1);
    // (ORT's two builds: the WebGPU one and the plain WASM one, src/engine/core/sessions.ts: each once)
    const wasm = full.filter((r) => r.endsWith('.wasm'));
    expect(wasm.length).toBeGreaterThan(0);
    expect(new Set(wasm).size).toBe(wasm.length);
    const badge = await page.getByTestId('backend-badge').getAttribute('title');

    // 2. the network goes away: the browser is offline and the server drops every connection
    await context.setOffline(true);
    app.down = true;
    const res = await page.reload();
    expect(res?.fromServiceWorker()).toBe(true);
    expect(res?.status()).toBe(200);
    // the cached page kept the server's headers: still isolated (WASM threads) and still under the CSP
    const headers = res!.headers();
    expect(headers['content-security-policy']).toBe(contentSecurityPolicy('header'));
    expect(headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect(headers['cross-origin-opener-policy']).toBe('same-origin');
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
    await expect(page.getByTestId('backend-badge')).toHaveAttribute('title', badge!);
    expect(await isolation(page)).toEqual({ page: true, engine: true });
    await expect(page.getByTestId('error-banner')).toHaveCount(0);

    // 3. the same settings give the same pixels
    const offline = await generate(page, run);
    expect(offline.length).toBe(online.length);
    expect(offline).toEqual(online);
    // and the network really was gone: a file the service worker does not keep cannot be fetched
    const readme = await page.evaluate(() => fetch('/models/webdit-tiny/README.md').then((r) => `status ${r.status}`, (e: Error) => e.name));
    expect(readme).toBe('TypeError');
    expect(await violations(page)).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('a new deploy replaces the old shell cache, and stored files of an older embedded model are dropped', async ({ page, context }, info) => {
    const { backend } = setup(info);
    await page.goto(`${app.url}/?backend=${backend}`);
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    const v1 = await serviceWorkerReady(page);
    const version1 = v1.slice('webdit-shell-'.length);

    // files an older embedded model had (a component it no longer has) next to another model's file
    const current = (await cacheContents(page))['webdit-models-v2'];
    expect(distinctPaths(current)).toHaveLength(MODEL_FILES.length);
    const stale = `${app.url}/models/webdit-tiny/old_unet/model.onnx#sha256=${'0'.repeat(64)}`;
    const other = `${app.url}/models/another/model.onnx#sha256=${'1'.repeat(64)}`;
    await page.evaluate(async (urls) => {
      const cache = await caches.open('webdit-models-v2');
      for (const u of urls) await cache.put(u, new Response('old bytes'));
    }, [stale, other]);

    // 2. the server gets a new build: another index.html, and a sw.js whose version changed with it
    const sw = fs.readFileSync(path.join(DIST, 'sw.js'), 'utf8');
    expect(sw).toContain(version1);
    const version2 = version1.split('').reverse().join('');
    app.overrides.set('/sw.js', sw.replaceAll(version1, version2));
    const html = fs.readFileSync(path.join(DIST, 'index.html'), 'utf8');
    app.overrides.set('/index.html', html.replace('</head>', '<meta name="webdit-build" content="next" /></head>'));

    // 3. the next visit sees it (network first), the browser installs the new worker, the old cache goes
    await page.reload();
    await expect(page.locator('meta[name="webdit-build"]')).toHaveAttribute('content', 'next');
    await expect.poll(async () => shellCaches(await cacheContents(page)), { timeout: 60_000 }).toEqual([`webdit-shell-${version2}`]);
    const models = (await cacheContents(page))['webdit-models-v2'];
    expect(models).not.toContain(stale);
    expect(models).toContain(other);
    expect(models.filter((u) => u.includes('/models/webdit-tiny/')).sort()).toEqual([...current].sort()); // the current model's entries all stay
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });

    // 4. offline, the new build is what comes back, and it loads the model
    await context.setOffline(true);
    app.down = true;
    await page.reload();
    await expect(page.locator('meta[name="webdit-build"]')).toHaveAttribute('content', 'next');
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    await expect(page.getByTestId('error-banner')).toHaveCount(0);
  });
});

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Buffer): [number, number] {
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]));
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

test('installable: the favicon answers 200, the web app manifest is valid and its icons exist at their sizes', async ({ page, request }) => {
  const failed: string[] = [];
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  await page.goto('/');
  await expect(appState(page)).toBeAttached();

  const favicon = await request.get('/favicon.ico');
  expect(favicon.status()).toBe(200);
  const ico = await favicon.body();
  // an ICO (type 1) whose images are PNGs of 16, 32 and 48 px
  expect([ico.readUInt16LE(0), ico.readUInt16LE(2), ico.readUInt16LE(4)]).toEqual([0, 1, 3]);
  const sizes = [0, 1, 2].map((i) => {
    const e = 6 + 16 * i;
    return pngSize(ico.subarray(ico.readUInt32LE(e + 12), ico.readUInt32LE(e + 12) + ico.readUInt32LE(e + 8)));
  });
  expect(sizes).toEqual([[16, 16], [32, 32], [48, 48]]);
  await expect(page.locator('link[rel="icon"]')).toHaveAttribute('href', '/favicon.ico');

  const href = await page.locator('link[rel="manifest"]').getAttribute('href');
  const res = await request.get(href!);
  expect(res.status()).toBe(200);
  const manifest = JSON.parse(await res.text());
  expect(manifest).toMatchObject({ name: 'WebDiT studio', short_name: 'WebDiT', start_url: './', display: 'standalone' });
  // Chrome's installability: a 192 px and a 512 px icon; one maskable for Android's adaptive icons
  const declared = (manifest.icons as { src: string; sizes: string; purpose: string }[]).map((i) => `${i.sizes} ${i.purpose}`);
  expect(declared).toEqual(expect.arrayContaining(['192x192 any', '512x512 any', '512x512 maskable']));
  for (const icon of manifest.icons as { src: string; sizes: string; type: string }[]) {
    const r = await request.get(new URL(icon.src, new URL(href!, 'http://x/')).pathname);
    expect(r.status(), icon.src).toBe(200);
    expect(icon.type).toBe('image/png');
    expect(pngSize(await r.body()).join('x')).toBe(icon.sizes);
  }
  const apple = await page.locator('link[rel="apple-touch-icon"]').getAttribute('href');
  expect(pngSize(await (await request.get(apple!)).body())).toEqual([180, 180]);
  expect(failed).toEqual([]);
});
