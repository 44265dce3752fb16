/**
 * The fault table (shared/reviews/fault-table-2026-11-28.md), made the same way in real Chromium:
 * routes that abort, truncate, oversize or 404 responses; a stub at the top of the served worker
 * bundle for faults inside the worker (a silent exit, a hang, a stray error, a destroyed GPU
 * device, a Cache API that refuses writes); two pages downloading at once. Every test checks the
 * message, the button that fixes it, that pressing it works (the image is then the normal run's,
 * pixel for pixel), and that the form was kept. No fault needs a page reload.
 *
 * Tags: @wasm-only for faults whose code path does not depend on the backend (network, storage,
 * the worker script), @webgpu-only for the GPU device; untagged tests run on both projects.
 */
import { expect, test, type BrowserContext, type Page, type TestInfo, type Worker } from '@playwright/test';
import { loadFixtures, psnr, readManifest } from '../src/engine/testing/fixtures';
import { setSlider, canvasRGB, appState } from './ui';

// a service worker would answer model requests before the routes that make the faults
test.use({ serviceWorkers: 'block' });

const manifest = readManifest();
// 3 steps at CFG 3: affordable on SwiftShader's WebGPU too
const run = loadFixtures().runs[2];
const MODEL_FILES = Object.keys(manifest.files).filter((f) => f.endsWith('.onnx'));
const WORKER_SCRIPT = /\/assets\/worker-[^/]+\.js$/;

type Backend = 'webgpu' | 'wasm';
const backendOf = (info: TestInfo) => info.project.metadata.backend as Backend;

/** The normal run's pixels per backend: PyTorch's image within 35 dB, then every retry must equal it exactly. */
const reference: Partial<Record<Backend, number[]>> = {};

/** The fixture run's settings in the form (the prompt is typed first: it must survive every fault). */
async function fillForm(page: Page) {
  await page.getByTestId('prompt').fill(run.prompt);
  await page.getByTestId('negative-prompt').fill(run.negativePrompt);
  await page.getByTestId('live-preview').uncheck();
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  await page.getByTestId('seed').fill(String(run.seed));
}

async function fillSliders(page: Page) {
  await setSlider(page, 'steps', run.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', run.guidanceScale, 1, 0.5);
}

async function formKept(page: Page) {
  await expect(page.getByTestId('prompt')).toHaveValue(run.prompt);
  await expect(page.getByTestId('seed')).toHaveValue(String(run.seed));
}

async function waitReady(page: Page) {
  await expect(appState(page)).not.toHaveAttribute('data-state', /starting|loading/, { timeout: 300_000 });
}

/** Press `button` (Generate or Run again) and wait for the run's "Done in …". */
async function runTo(page: Page, button: string) {
  await page.getByTestId(button).click();
  await expect(page.getByTestId('status')).toHaveText(/^Done in /, { timeout: 300_000 });
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
}

async function expectReferenceImage(page: Page, backend: Backend) {
  const rgb = await canvasRGB(page);
  const ref = reference[backend]!;
  expect(rgb.length).toBe(ref.length);
  expect(rgb).toEqual(ref);
}

/**
 * The banner says `message`, has `fix` as a button, never asks for a page reload, and is announced
 * (role=alert). `inView`: the user was at Generate when it came, so it must be on screen there.
 */
async function expectBanner(page: Page, name: string, message: string | RegExp, fix: string, { inView = false } = {}) {
  const banner = page.getByTestId('error-banner');
  await expect(banner).toHaveAttribute('data-error', name, { timeout: 180_000 });
  await expect(page.getByTestId('error-message')).toHaveText(message);
  await expect(page.getByTestId(`fix-${fix}`)).toBeVisible();
  await expect(banner).not.toContainText(/\breload\b/i);
  await expect(banner).toHaveAttribute('role', 'alert');
  if (inView) await expect(banner).toBeInViewport();
}

/**
 * Puts `code` at the top of the served worker bundle, as the fault table did. FAULTS arms one fault
 * inside the worker: the test sets self.__webditFault and it fires at the run's first denoise step.
 */
async function stubWorker(context: BrowserContext, code: string) {
  await context.route(WORKER_SCRIPT, async (route) => {
    const res = await route.fetch();
    await route.fulfill({ response: res, body: `${code}\n${await res.text()}` });
  });
}

const FAULTS = `(() => {
  const post = self.postMessage.bind(self);
  self.__webditDevices = [];
  if (self.GPUAdapter) {
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await requestDevice.apply(this, args);
      self.__webditDevices.push(device);
      return device;
    };
  }
  // a body that breaks off after 1 MB, as Chromium's fetch fails a read mid-stream (ERR_CACHE_WRITE_FAILURE, a dropped connection)
  const fetch0 = self.fetch.bind(self);
  self.__webditCuts = 0;
  self.fetch = async (input, init) => {
    const res = await fetch0(input, init);
    if (self.__webditCuts > 0 && (typeof input === 'string' ? input : input.url).endsWith('/transformer/model.onnx')) {
      self.__webditCuts--;
      let n = 0;
      const cut = new TransformStream({ transform(chunk, c) { n += chunk.byteLength; if (n > (1 << 20)) c.error(new TypeError('network error')); else c.enqueue(chunk); } });
      return new Response(res.body.pipeThrough(cut), { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    return res;
  };
  self.postMessage = function (message, transfer) {
    post(message, transfer);
    const fault = self.__webditFault;
    if (!fault || !message || message.type !== 'progress' || message.stage !== 'denoise' || message.step < 1) return;
    self.__webditFault = null;
    if (fault === 'close') self.close();
    else if (fault === 'hang') for (;;) {}
    else if (fault === 'throw') setTimeout(() => { throw new Error('stray test error'); });
    else if (fault === 'lose-device') for (const d of self.__webditDevices) d.destroy();
  };
})();`;

/** The engine's worker (ORT's own thread workers have other URLs); after a restart, the new one. */
async function engineWorker(page: Page, not?: Worker): Promise<Worker> {
  let found: Worker | undefined;
  await expect.poll(() => (found = page.workers().findLast((w) => WORKER_SCRIPT.test(w.url()) && w !== not)) !== undefined, { timeout: 60_000 }).toBe(true);
  return found!;
}

async function arm(page: Page, fault: 'close' | 'hang' | 'throw' | 'lose-device') {
  const worker = await engineWorker(page);
  await worker.evaluate((f) => ((self as unknown as { __webditFault: string }).__webditFault = f), fault);
  return worker;
}

/** Opens the studio on the project's backend with the form filled; the model has loaded. */
async function openStudio(page: Page, backend: Backend) {
  await page.goto(`/?backend=${backend}`);
  await fillForm(page);
  await waitReady(page);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
  await fillSliders(page);
}

test.beforeAll(async ({ browser }, info) => {
  const backend = backendOf(info);
  const context = await browser.newContext({ baseURL: info.project.use.baseURL, serviceWorkers: 'block' });
  const page = await context.newPage();
  await openStudio(page, backend);
  await runTo(page, 'generate');
  const rgb = await canvasRGB(page);
  const p = psnr(rgb, Buffer.from(run.rgb.b64, 'base64'));
  console.log(`[${backend}] the normal run vs PyTorch: PSNR ${p.toFixed(1)} dB`);
  expect(p).toBeGreaterThanOrEqual(35);
  reference[backend] = rgb;
  await context.close();
});

// ---- downloads (fault table 4g, 4e', 4h, 9a, 4a', 2g) ----

test('a file larger than its manifest says: named with its expected size, and Retry loads the model (4g, 4a\', 2g) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  let oversized = 0;
  await context.route(/\/vae_decoder\/model\.onnx$/, async (route) => {
    const res = await route.fetch();
    const body = await res.body();
    if (oversized++ > 0) return route.fulfill({ response: res, body });
    await route.fulfill({ response: res, body: Buffer.concat([body, Buffer.alloc(100, 7)]) });
  });
  await page.goto(`/?backend=${backend}`);
  await fillForm(page);
  // the user is down at Generate when the load fails: the banner must be where they look
  await page.getByTestId('generate').scrollIntoViewIfNeeded();
  const bytes = manifest.files['vae_decoder/model.onnx'].bytes;
  const message = `Model file vae_decoder/model.onnx is larger than its manifest says (${bytes} bytes expected): the model folder is inconsistent; retry or report it.`;
  await expectBanner(page, 'ModelError', message, 'retry-load', { inView: true });
  await expect(page.getByTestId('fix-retry-load')).toHaveText('Retry');
  // the status line agrees, and the badge does not pretend to detect anything (4a')
  await expect(page.getByTestId('status')).toHaveText(`The model could not be loaded: ${message}`);
  await expect(page.getByTestId('backend-badge-pending')).toHaveText('Not loaded');
  await formKept(page);

  await page.getByTestId('fix-retry-load').click();
  await waitReady(page);
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
  await fillSliders(page);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
  await formKept(page);
});

test('a manifest that lists 2^40 bytes: a clear refusal naming the file, before any download (4e\') @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  let served = 0;
  const modelRequests: string[] = [];
  context.on('request', (r) => r.url().endsWith('.onnx') && modelRequests.push(r.url()));
  await context.route(/\/webdit-tiny\/manifest\.json$/, async (route) => {
    const res = await route.fetch();
    const m = await res.json();
    if (served++ === 0) m.files['transformer/model.onnx'].bytes = 2 ** 40;
    await route.fulfill({ response: res, json: m });
  });
  await page.goto(`/?backend=${backend}`);
  await fillForm(page);
  await expectBanner(page, 'ModelError', /^Model file transformer\/model\.onnx is listed as 1099511627776 bytes \(1024\.0 GiB\): more than the 4 GiB one file can have here/, 'retry-load');
  expect(modelRequests).toEqual([]);
  await formKept(page);

  await page.getByTestId('fix-retry-load').click();
  await waitReady(page);
  await fillSliders(page);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
});

test('a 404, a connection reset and a body that breaks off mid-stream: each says what happened, with Retry download (4a, 4h, 9a) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, FAULTS);
  let fault: '404' | 'reset' | null = '404';
  await context.route(/\/transformer\/model\.onnx$/, (route) =>
    fault === '404' ? route.fulfill({ status: 404, body: 'Not Found' }) : fault === 'reset' ? route.abort('connectionreset') : route.continue(),
  );
  await page.goto(`/?backend=${backend}`);
  await fillForm(page);
  await expectBanner(page, 'ModelError', /^Could not download transformer\/model\.onnx: the server answered 404 Not Found for \/models\/webdit-tiny\/transformer\/model\.onnx\.$/, 'retry-load');
  await expect(page.getByTestId('error-action')).toHaveText(/^The model folder is incomplete/);
  await expect(page.getByTestId('fix-retry-load')).toHaveText('Retry download');

  fault = 'reset';
  await page.getByTestId('fix-retry-load').click();
  await expectBanner(page, 'DownloadError', /^Could not download transformer\/model\.onnx \(.+\)\.$/, 'retry-load');
  await expect(page.getByTestId('fix-retry-load')).toHaveText('Retry download');
  await formKept(page);

  // the body breaks off twice: one automatic retry past the HTTP cache, then the banner
  fault = null;
  const worker = await engineWorker(page);
  await worker.evaluate(() => ((self as unknown as { __webditCuts: number }).__webditCuts = 2));
  await page.getByTestId('fix-retry-load').click();
  const total = manifest.files['transformer/model.onnx'].bytes;
  await expectBanner(page, 'DownloadError', new RegExp(`^Could not download transformer/model\\.onnx: the connection broke off after \\d+ of ${total} bytes \\(network error\\)\\.$`), 'retry-load');
  expect(await worker.evaluate(() => (self as unknown as { __webditCuts: number }).__webditCuts)).toBe(0);
  await formKept(page);

  await page.getByTestId('fix-retry-load').click();
  await waitReady(page);
  await fillSliders(page);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
});

test('two pages on a first visit download each file once between them and both run (9a) @wasm-only', async ({ context }, info) => {
  const backend = backendOf(info);
  const requests = new Map<string, number>();
  context.on('request', (r) => {
    const file = MODEL_FILES.find((f) => r.url().endsWith(`/${f}`));
    if (file) requests.set(file, (requests.get(file) ?? 0) + 1);
  });
  const [a, b] = [await context.newPage(), await context.newPage()];
  await Promise.all([a.goto(`/?backend=${backend}`), b.goto(`/?backend=${backend}`)]);
  for (const page of [a, b]) await fillForm(page);
  await Promise.all([waitReady(a), waitReady(b)]);
  for (const page of [a, b]) {
    await expect(page.getByTestId('error-banner')).toHaveCount(0);
    await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  }
  // Web Locks: the second page waited for each file and read the stored copy
  expect(Object.fromEntries(requests)).toEqual(Object.fromEntries(MODEL_FILES.map((f) => [f, 1])));
  for (const page of [a, b]) {
    await fillSliders(page);
    await runTo(page, 'generate');
    await expectReferenceImage(page, backend);
  }
});

test('storage that refuses every write: the model runs from memory and the page says what it costs (5c) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, `Cache.prototype.put = function () { return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError')); };`);
  let modelRequests = 0;
  context.on('request', (r) => MODEL_FILES.some((f) => r.url().endsWith(`/${f}`)) && modelRequests++);
  await openStudio(page, backend);
  const total = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
  await expect(page.getByTestId('storage-notice')).toHaveText(
    `This browser is not keeping model files (QuotaExceededError: The quota has been exceeded.): every visit downloads ${(total / 1e6).toFixed(1)} MB again. The model runs from memory for now.`,
  );
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
  // and it is true: the next visit downloads every file again
  expect(modelRequests).toBe(MODEL_FILES.length);
  await page.reload();
  await waitReady(page);
  expect(modelRequests).toBe(2 * MODEL_FILES.length);
  await expect(page.getByTestId('storage-notice')).toBeVisible();
});

test('WebGPU forced where there is none: Use WASM switches in place (8a, 4a\') @wasm-only', async ({ page }, info) => {
  const backend = backendOf(info);
  await page.goto('/?backend=webgpu');
  await fillForm(page);
  await expectBanner(page, 'BackendUnavailableError', 'WebGPU was requested but this browser offers no WebGPU adapter.', 'switch-backend');
  await expect(page.getByTestId('fix-switch-backend')).toHaveText('Use WASM');
  await expect(page.getByTestId('backend-badge-pending')).toHaveText('Not loaded');
  await page.getByTestId('fix-switch-backend').click();
  await waitReady(page);
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'wasm');
  expect(new URL(page.url()).searchParams.get('backend')).toBe('wasm');
  await fillSliders(page);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
  await formKept(page);
});

// ---- the worker (fault table 7a, 7c, 7d) ----

test('the worker script 404s: the banner says so without backend advice, and Restart engine loads the model (7a) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await context.route(WORKER_SCRIPT, (route) => route.fulfill({ status: 404, body: 'Not Found' }));
  await page.goto(`/?backend=${backend}`);
  await fillForm(page);
  await expectBanner(page, 'WorkerError', /^The image engine could not start: its script \/assets\/worker-[^/]+\.js did not load \(the server answered 404 Not Found\)\.$/, 'restart-engine');
  await expect(page.getByTestId('error-banner')).not.toContainText(/wasm|webgpu|backend/i);
  await expect(page.getByTestId('status')).toHaveText(/^The model could not be loaded: The image engine could not start/);
  await expect(page.getByTestId('backend-badge-pending')).toHaveText('Not loaded');
  await formKept(page);

  await context.unroute(WORKER_SCRIPT);
  await page.getByTestId('fix-restart-engine').click();
  await waitReady(page);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  await fillSliders(page);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
});

test('a worker script that throws while starting: its message, and Restart engine loads the model (7b) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, `throw new Error('worker script failed to initialise');`);
  await page.goto(`/?backend=${backend}`);
  await fillForm(page);
  await expectBanner(page, 'WorkerError', 'The image engine could not start: its script failed while starting (Uncaught Error: worker script failed to initialise).', 'restart-engine');
  await expect(page.getByTestId('error-banner')).not.toContainText(/wasm|webgpu|backend/i);
  await formKept(page);
  await context.unroute(WORKER_SCRIPT);
  await page.getByTestId('fix-restart-engine').click();
  await waitReady(page);
  await fillSliders(page);
  await runTo(page, 'generate');
  await expectReferenceImage(page, backend);
});

test('a worker that exits silently mid-run: the watchdog restarts it, the model reloads from storage, Run again makes the image (7c)', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, FAULTS);
  await openStudio(page, backend);
  await runTo(page, 'generate'); // a normal run first: the watchdog times real steps
  const modelRequests: string[] = [];
  context.on('request', (r) => MODEL_FILES.some((f) => r.url().endsWith(`/${f}`)) && modelRequests.push(r.url()));

  const old = await arm(page, 'close');
  await page.getByTestId('generate').click();
  await expectBanner(page, 'WorkerError', /^The engine stopped while this image was being made: it did not answer for \d+(\.\d)? s while making an image \(the limit was \d+(\.\d)? s\)\.$/, 'run-again', { inView: true });
  await expect(page.getByTestId('error-action')).toHaveText('It was restarted and reloads the model from browser storage. Press Run again. Your settings and images are kept.');
  await engineWorker(page, old);
  await waitReady(page);
  // the status line agrees with the banner, never "Ready"
  await expect(page.getByTestId('status')).toHaveText(/^Error: The engine stopped while this image was being made/);
  expect(modelRequests).toEqual([]); // reloaded from the Cache API, not downloaded
  await formKept(page);

  await runTo(page, 'fix-run-again');
  await expectReferenceImage(page, backend);
});

test('a worker that hangs mid-run is replaced after the bound, and Run again makes the image (7c) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, FAULTS);
  await openStudio(page, backend);
  await runTo(page, 'generate');
  const started = Date.now();
  await arm(page, 'hang');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('status')).toHaveText(/^Generating/);
  await expectBanner(page, 'WorkerError', /^The engine stopped while this image was being made: it did not answer for \d+(\.\d)? s while making an image \(the limit was \d+(\.\d)? s\)\.$/, 'run-again', { inView: true });
  // silent a little past the bound (20 x the slowest step timed, at least 10 s), then replaced
  const text = (await page.getByTestId('error-message').textContent())!;
  const [silent, limit] = text.match(/[\d.]+(?= s)/g)!.map(Number);
  expect(limit).toBeGreaterThanOrEqual(10);
  expect(silent).toBeGreaterThan(limit);
  expect(silent).toBeLessThanOrEqual(limit + 2);
  expect(Date.now() - started).toBeLessThan((limit + 20) * 1000);
  await waitReady(page);
  await formKept(page);
  await runTo(page, 'fix-run-again');
  await expectReferenceImage(page, backend);
});

test('a stray error inside a live worker fails its run, not the engine: no restart, Run again works (7d) @wasm-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, FAULTS);
  await openStudio(page, backend);
  const worker = await arm(page, 'throw');
  let restarted = false;
  page.on('worker', (w) => WORKER_SCRIPT.test(w.url()) && (restarted = true));
  await page.getByTestId('generate').click();
  await expectBanner(page, 'RuntimeError', 'Generation was interrupted by an internal error: Error: stray test error', 'run-again', { inView: true });
  await expect(page.getByTestId('status')).toHaveText('Error: Generation was interrupted by an internal error: Error: stray test error');
  await expect(appState(page)).toHaveAttribute('data-state', 'error');
  await formKept(page);
  await runTo(page, 'fix-run-again');
  await expectReferenceImage(page, backend);
  expect(restarted).toBe(false);
  expect(page.workers()).toContain(worker);
});

// ---- the GPU (issue 10, item 5) ----

test('a lost WebGPU device fails the run with a clear message; the engine restarts on a new device and Run again works @webgpu-only', async ({ page, context }, info) => {
  const backend = backendOf(info);
  await stubWorker(context, FAULTS);
  await openStudio(page, 'webgpu');
  await runTo(page, 'generate');
  const old = await arm(page, 'lose-device');
  await page.getByTestId('generate').click();
  await expectBanner(page, 'DeviceLostError', 'The GPU device was lost while this image was being made (it was destroyed).', 'run-again', { inView: true });
  await expect(page.getByTestId('error-action')).toHaveText('The engine starts again on a new device and reloads the model from browser storage. Press Run again. Your settings and images are kept.');
  await engineWorker(page, old);
  await waitReady(page);
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'webgpu');
  await formKept(page);
  await runTo(page, 'fix-run-again');
  await expectReferenceImage(page, backend);
});
