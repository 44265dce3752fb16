/**
 * Real models from a Hub, in real Chromium (WebGPU and WASM): the model picker (the embedded model,
 * the known models with their sizes and needs, a pasted repo id that loads and lands in the URL, the
 * cached badge, delete from cache, a bad id's error, a folder opened from disk), SD3's T5 choice
 * (with and without T5 both load; without it the image equals PyTorch's no-T5 golden), a reload in
 * the middle of a download that continues with one Range request, and a model whose manifest
 * declares float16 graphs refused before any weight is downloaded.
 */
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { contentSecurityPolicy, securityHeaders } from '../src/pwa/csp';
import { f32, psnr, readManifest, type FixtureRun } from '../src/engine/testing/fixtures';
import { startHubServer, type HubServer } from '../src/engine/testing/hubServer';
import { appState, canvasRGB, setParams } from './ui';

const SD3_DIR = path.resolve('src/engine/families/sd3/__replica__');
const SD3 = path.join(SD3_DIR, 'sd3-tiny');
const ZIMAGE_FP16 = path.resolve('src/engine/families/zimage/__replica__/zimage-tiny-fp16');
interface B64Tensor {
  dims: number[];
  b64: string;
}
const sd3Golden = JSON.parse(fs.readFileSync(path.join(SD3_DIR, 'sd3-golden.json'), 'utf8')) as {
  runs: (FixtureRun & { name: string; width: number; useT5: boolean })[];
  graphs: { transformer: { inputs: Record<string, B64Tensor>; outputs: Record<string, B64Tensor> } };
};
const ORT_DIST = path.resolve('node_modules/onnxruntime-web/dist');
// the ONNX Runtime build the studio bundles ('onnxruntime-web/webgpu'), served at /__ort__/ on our origin
const ORT_FILES: Record<string, string> = {
  'ort.webgpu.bundle.min.mjs': 'text/javascript',
  'ort-wasm-simd-threaded.asyncify.mjs': 'text/javascript',
  'ort-wasm-simd-threaded.asyncify.wasm': 'application/wasm',
};
const T5_DATA = 'text_encoder_3/model.onnx_data';

// small copies of e2e/studio.spec.ts' helpers (that spec stays as it is)



const ready = (page: Page) => expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });

/** Page errors, and requests to any origin but ours and the local hub. */
function watch(page: Page, info: TestInfo, hubUrl: string): { errors: string[]; foreign: string[] } {
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.context().on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'https:'].includes(u.protocol)) return;
    if (u.origin !== new URL(info.project.use.baseURL!).origin && !r.url().startsWith(hubUrl)) foreign.push(r.url());
  });
  return { errors, foreign };
}

const entry = (page: Page, key: string) => page.locator(`[data-testid="model-entry"][data-key="${key}"]`);
const entryByUrl = (page: Page, url: string) => page.locator(`[data-testid="model-entry"][data-url="${url}"]`);
const usage = async (page: Page) => Number(await page.getByTestId('storage-estimate').getAttribute('data-usage'));

async function openPicker(page: Page) {
  const toggle = page.getByTestId('model-picker-toggle');
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await expect(page.getByTestId('model-picker')).toBeVisible();
}

async function generateAndCompare(page: Page, run: FixtureRun): Promise<number> {
  await setParams(page, run);
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('timings')).toHaveText(new RegExp(`seed ${run.seed}$`), { timeout: 300_000 });
  await ready(page);
  return psnr(await canvasRGB(page), Buffer.from(run.rgb.b64, 'base64'));
}

test('external data given to ONNX Runtime as a blob: URL (how a file over 2 GB reaches it) loads under the studio CSP and computes what PyTorch computes', async ({ page }, info) => {
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  // two pages on our origin: one under the studio's own CSP header, one under the same policy without blob: in connect-src
  const strict = contentSecurityPolicy('header');
  const withoutBlob = strict.replace(/(connect-src[^;]*?) blob:/, '$1');
  expect(withoutBlob).not.toBe(strict);
  await page.route('**/__ort__/**', (route) => {
    const name = new URL(route.request().url()).pathname.replace('/__ort__/', '');
    const headers = { ...securityHeaders('header') };
    if (name === 'index.html' || name === 'no-blob.html') {
      if (name === 'no-blob.html') headers['Content-Security-Policy'] = withoutBlob;
      return route.fulfill({ contentType: 'text/html', headers, body: '<!doctype html><title>ort</title>' });
    }
    if (!ORT_FILES[name]) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({ contentType: ORT_FILES[name], headers, body: fs.readFileSync(path.join(ORT_DIST, name)) });
  });
  const g = sd3Golden.graphs.transformer;
  const graph = {
    model: fs.readFileSync(path.join(SD3, 'transformer/model.onnx')).toString('base64'),
    data: fs.readFileSync(path.join(SD3, 'transformer/model.onnx_data')).toString('base64'),
    inputs: g.inputs,
  };
  const run = (p: Page) =>
    p.evaluate(
      async ({ backend, graph }) => {
        const url = '/__ort__/ort.webgpu.bundle.min.mjs';
        const ort = await import(/* @vite-ignore */ url);
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.wasmPaths = '/__ort__/';
        const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        // what the engine does for a file over 2 GB: a Blob (there: the Cache API's, on disk) and its object URL
        const blobUrl = URL.createObjectURL(new Blob([bytes(graph.data)]));
        try {
          const session = await ort.InferenceSession.create(bytes(graph.model), { executionProviders: [backend], externalData: [{ path: 'model.onnx_data', data: blobUrl }] });
          const feeds: Record<string, unknown> = {};
          for (const [name, t] of Object.entries(graph.inputs)) feeds[name] = new ort.Tensor('float32', new Float32Array(bytes(t.b64).buffer), t.dims);
          const out = await session.run(feeds);
          const y = Array.from((await out.out_hidden_states.getData()) as Float32Array);
          await session.release();
          return { y };
        } catch (e) {
          return { y: [], error: String(e) };
        } finally {
          URL.revokeObjectURL(blobUrl);
        }
      },
      { backend, graph },
    );
  await page.goto('/__ort__/index.html');
  const got = await run(page);
  expect(got.error).toBeUndefined();
  const want = Array.from(f32(g.outputs.out_hidden_states));
  const scale = Math.max(...want.map(Math.abs));
  const diff = Math.max(...want.map((v, i) => Math.abs(v - got.y[i])));
  console.log(`[${backend}] transformer with its external data from a blob: URL: max |diff| ${diff.toExponential(2)} vs PyTorch (max |y| ${scale.toFixed(2)})`);
  expect(got.y.length).toBe(want.length);
  expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
  // the same page without blob: in connect-src: ORT cannot fetch the URL, which is why the studio's CSP allows it
  await page.goto('/__ort__/no-blob.html');
  const refused = await run(page);
  expect(refused.error).toMatch(/failed to load external data file|Failed to fetch|Content Security Policy/i);
});

test.describe('models from a Hub: picker, T5, resumable downloads, preflight', () => {
  let hub: HubServer;
  let declaredDir: string;

  test.beforeAll(async () => {
    // the fp16 Z-Image replica with a manifest that declares what it needs at full size
    declaredDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webdit-declared-'));
    fs.cpSync(ZIMAGE_FP16, declaredDir, { recursive: true });
    fs.writeFileSync(path.join(declaredDir, 'model_index.json'), JSON.stringify({ _class_name: 'ZImagePipeline' }));
    const files: Record<string, { bytes: number; sha256: string }> = {};
    const walk = (rel: string): void => {
      for (const e of fs.readdirSync(path.join(declaredDir, rel), { withFileTypes: true })) {
        const p = path.posix.join(rel, e.name);
        if (e.isDirectory()) walk(p);
        else {
          const bytes = fs.readFileSync(path.join(declaredDir, p));
          files[p] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
        }
      }
    };
    walk('');
    const manifest = {
      format: 'webdit-model',
      version: 2,
      id: 'webdit/zimage-declared',
      name: 'Z-Image replica (declared needs)',
      family: 'zimage',
      defaults: {},
      files,
      requires: { webgpu: 'at full size (5.6 GB) its weights do not fit the 4 GB WebAssembly memory', shader_f16: 'its graphs take and give float16 tensors' },
    };
    fs.writeFileSync(path.join(declaredDir, 'manifest.json'), JSON.stringify(manifest));
    hub = await startHubServer({ 'webdit/sd3-tiny': SD3, 'webdit/sd3-resume': SD3, 'webdit/zimage-declared': declaredDir });
  });
  test.afterAll(async () => {
    await hub.close();
    fs.rmSync(declaredDir, { recursive: true, force: true });
  });
  test.beforeEach(() => {
    hub.requests.length = 0;
    hub.log.length = 0;
  });

  test('the picker lists the embedded model and the known models with sizes and needs', async ({ page }, info) => {
    const backend = info.project.metadata.backend as string;
    const { errors, foreign } = watch(page, info, hub.url);
    await page.goto(`/?backend=${backend}`);
    await ready(page);
    await openPicker(page);
    // the embedded model: its manifest's size, stored by the load
    const files = readManifest().files;
    const total = Object.values(files).reduce((n, f) => n + f.bytes, 0);
    const embedded = entry(page, 'embedded');
    await expect(embedded).toHaveAttribute('data-bytes', String(total));
    await expect(embedded).toHaveAttribute('data-cached', 'all');
    await expect(embedded.getByTestId('model-size')).toHaveText(/^\d+(\.\d)? MB$/);
    await expect(embedded.getByTestId('model-cached')).toHaveText('Cached');
    // the known real models: approximate sizes (marked as estimates where they are) and what they need
    const zimage = entry(page, 'z-image-turbo');
    await expect(zimage.getByTestId('model-size')).toHaveText('≈ 5.6 GB (estimate)');
    await expect(zimage).toContainText('WebGPU with shader-f16');
    await expect(entry(page, 'sd35-medium-4bit').getByTestId('model-size')).toHaveText('≈ 2.1 GB (estimate)');
    await expect(entry(page, 'sd35-medium-4bit')).toContainText('Optional T5: ≈ 2.9 GB more');
    await expect(entry(page, 'sd35-medium-tensorstack').getByTestId('model-size')).toHaveText('≈ 16.2 GB');
    await expect(entry(page, 'sd35-large-turbo-4bit')).toBeVisible();
    // storage used and available
    await expect(page.getByTestId('storage-estimate')).toHaveText(/^Browser storage: .+ used, .+ available to this site$/);
    expect(await usage(page)).toBeGreaterThan(total);
    // nothing was asked of the Hub for the known models
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('a pasted repo id loads from ?hub= and lands in the URL; cached after the load; delete from cache frees its storage', async ({ page }, info) => {
    const backend = info.project.metadata.backend as string;
    const { errors, foreign } = watch(page, info, hub.url);
    await page.goto(`/?backend=${backend}&hub=${encodeURIComponent(hub.url)}`);
    await ready(page);
    await openPicker(page);
    await page.getByTestId('model-input').fill('webdit/sd3-tiny');
    await page.getByTestId('model-input-load').click();
    await expect(page).toHaveURL(/[?&]model=webdit%2Fsd3-tiny(&|$)/);
    await ready(page);
    await expect(page.locator('.model-name')).toHaveText('webdit/sd3-tiny');
    expect(hub.requests).toContain('/webdit/sd3-tiny/resolve/main/transformer/model.onnx_data');
    const url = `${hub.url}/webdit/sd3-tiny/resolve/main/`;
    const sd3 = entryByUrl(page, url);
    await expect(sd3).toHaveAttribute('data-current', 'true');
    await expect(sd3).toHaveAttribute('data-cached', 'all');
    const bytes = Number(await sd3.getAttribute('data-bytes'));
    const replicaBytes = fs.readdirSync(SD3, { recursive: true }).map((p) => path.join(SD3, String(p))).filter((p) => fs.statSync(p).isFile()).reduce((n, p) => n + fs.statSync(p).size, 0);
    expect(bytes).toBe(replicaBytes);
    await expect(sd3.getByTestId('model-size')).toHaveText(/^2\.\d MB$/);
    // T5 fits here: offered, on
    await expect(sd3.getByTestId('use-t5')).toBeChecked();
    await expect(sd3.getByTestId('use-t5').locator('..')).toHaveText(/Use T5 \(\d+(\.\d)? kB more\)/);
    await expect.poll(() => usage(page)).toBeGreaterThan(bytes);
    const before = await usage(page);
    // delete from cache: every file gone, storage used goes down
    await sd3.getByTestId('model-delete').click();
    await expect(sd3).toHaveAttribute('data-cached', 'none');
    await expect(sd3).toHaveAttribute('data-stored', '0');
    await expect(sd3.getByTestId('model-delete')).toHaveCount(0);
    await expect.poll(() => usage(page), { timeout: 30_000 }).toBeLessThan(before);
    console.log(`[${backend}] storage used ${before} -> ${await usage(page)} bytes after deleting ${bytes} bytes of sd3-tiny`);
    // the embedded model is still stored
    await expect(entry(page, 'embedded')).toHaveAttribute('data-cached', 'all');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('a bad repo id or URL gets a clear error and loads nothing @wasm-only', async ({ page }, info) => {
    const { errors } = watch(page, info, hub.url);
    await page.goto(`/?backend=wasm&hub=${encodeURIComponent(hub.url)}`);
    await ready(page);
    const before = page.url();
    await openPicker(page);
    const input = page.getByTestId('model-input');
    const error = page.getByTestId('model-input-error');
    await input.fill('not a repo');
    await page.getByTestId('model-input-load').click();
    await expect(error).toHaveText('"not a repo" is neither a Hub repo id (owner/name, letters, digits, - _ .) nor an http(s) URL of a model folder.');
    await expect(input).toHaveAttribute('aria-invalid', 'true');
    await input.fill('ftp://example.com/model/');
    await input.press('Enter');
    await expect(error).toHaveText('"ftp:" URLs cannot be loaded: use an http(s) URL of a model folder, or a Hub repo id.');
    await input.fill('');
    await page.getByTestId('model-input-load').click();
    await expect(error).toHaveText('Type a Hub repo id (owner/name) or the URL of a model folder.');
    expect(page.url()).toBe(before);
    await expect(appState(page)).toHaveAttribute('data-state', 'ready');
    // a well-formed id the hub does not have: the load says so, and the studio keeps its model
    await input.fill('webdit/no-such-model');
    await page.getByTestId('model-input-load').click();
    await expect(page.getByTestId('error-banner')).toContainText('The Hub could not list', { timeout: 60_000 });
    await expect(page.getByTestId('error-banner')).toContainText('Check the repository id and revision');
    expect(errors).toEqual([]);
  });

  test('a model folder opened from disk is checked, kept in the browser, loaded, and loads again after a reload without any server @wasm-only', async ({ page }, info) => {
    const { errors, foreign } = watch(page, info, hub.url);
    await page.goto('/?backend=wasm');
    await ready(page);
    await openPicker(page);
    await page.getByTestId('model-folder-input').setInputFiles(SD3);
    await expect(page.getByTestId('model-folder-status')).toHaveText('sd3-tiny is stored in the browser; loading it.', { timeout: 120_000 });
    await ready(page);
    await expect(page.locator('.model-name')).toHaveText('local/sd3-tiny');
    const local = new URL('/webdit-local/local/sd3-tiny/resolve/local/', info.project.use.baseURL!).href;
    expect(new URL(page.url()).searchParams.get('model')).toBe(local);
    await expect(entryByUrl(page, local)).toHaveAttribute('data-cached', 'all');
    // a reload loads it from browser storage: nothing from the hub, nothing from disk
    await page.reload();
    await ready(page);
    await expect(page.locator('.model-name')).toHaveText('local/sd3-tiny');
    expect(hub.requests).toEqual([]);
    // a folder that is not a model says so
    await openPicker(page);
    await page.getByTestId('model-folder-input').setInputFiles(path.resolve('e2e'));
    await expect(page.getByTestId('model-folder-error')).toHaveText(/^The folder "e2e" has no manifest\.json, model_index\.json or \.onnx graph: it is not a model folder\./);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('SD3 with and without T5 both load; without T5 the image equals the PyTorch no-T5 golden', async ({ page }, info) => {
    const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
    const { errors, foreign } = watch(page, info, hub.url);
    const noT5 = sd3Golden.runs.find((r) => r.name === '64x64_cfg7_no_t5')!;
    const withT5 = sd3Golden.runs.find((r) => r.name === '64x64_cfg7_t5')!;
    // without T5, by URL (the picker writes the same ?t5=off)
    await page.goto(`/?backend=${backend}&model=webdit/sd3-tiny&hub=${encodeURIComponent(hub.url)}&t5=off`);
    await ready(page);
    expect(hub.requests.filter((u) => u.includes('/text_encoder_3/') || u.includes('/tokenizer_3/'))).toEqual([]);
    const pNoT5 = await generateAndCompare(page, noT5);
    console.log(`[${backend}] sd3-tiny without T5 vs PyTorch (${noT5.name}): PSNR ${pNoT5.toFixed(1)} dB`);
    expect(pNoT5).toBeGreaterThanOrEqual(45);
    // the picker shows T5 off for the loaded model; turning it on loads it with T5
    await openPicker(page);
    const sd3 = entryByUrl(page, `${hub.url}/webdit/sd3-tiny/resolve/main/`);
    const box = sd3.getByTestId('use-t5');
    await expect(box).not.toBeChecked();
    await box.check();
    await sd3.getByTestId('model-load').click();
    await expect(page).toHaveURL(/[?&]t5=on(&|$)/);
    await ready(page);
    expect(hub.requests).toContain(`/webdit/sd3-tiny/resolve/main/${T5_DATA}`);
    await page.getByTestId('model-picker-close').click();
    const pT5 = await generateAndCompare(page, withT5);
    console.log(`[${backend}] sd3-tiny with T5 vs PyTorch (${withT5.name}): PSNR ${pT5.toFixed(1)} dB`);
    expect(pT5).toBeGreaterThanOrEqual(45);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('a reload in the middle of a download continues from the stored parts with one Range request', async ({ page }, info) => {
    const backend = info.project.metadata.backend as string;
    const { errors, foreign } = watch(page, info, hub.url);
    const file = `webdit/sd3-resume/${T5_DATA}`;
    const size = fs.statSync(path.join(SD3, T5_DATA)).size;
    const cut = 300_000;
    hub.stalls.set(file, cut);
    await page.goto(`/?backend=${backend}&model=webdit/sd3-resume&hub=${encodeURIComponent(hub.url)}`);
    // the body stops after `cut` bytes; wait until the page has stored parts of it (its partial entry lists them)
    await expect.poll(() => hub.served(file), { timeout: 120_000 }).toBe(cut);
    const storedParts = () =>
      page.evaluate(async () => {
        const c = await caches.open('webdit-models-v2');
        const key = (await c.keys()).find((r) => r.url.includes('/sd3-resume/') && r.url.includes('text_encoder_3/model.onnx_data?webdit-partial'));
        const state = key ? ((await (await c.match(key))!.json()) as { parts: number[] }) : null;
        return state ? state.parts.reduce((a, b) => a + b, 0) : 0;
      });
    await expect.poll(storedParts, { timeout: 60_000 }).toBeGreaterThanOrEqual(2 * 64 * 1024);
    // the last part is committed once the buffer fills; give it a moment, then take what is stored
    await page.waitForTimeout(1000);
    const kept = await storedParts();
    expect(kept).toBeLessThanOrEqual(cut);
    await page.reload();
    await ready(page);
    const log = hub.log.filter((r) => r.path === file);
    expect(log.map((r) => r.status)).toEqual([200, 206]);
    expect(log[0]).toMatchObject({ range: null, bytes: cut });
    // the second request starts exactly where the stored parts end
    expect(log[1].range).toBe(`bytes=${kept}-`);
    const start = kept;
    expect(log[1].ifRange).toMatch(/^"[0-9a-f]{64}"$/);
    expect(log[1].bytes).toBe(size - start);
    console.log(`[${backend}] reload mid-download: ${cut} bytes, then Range bytes=${start}- (${log[1].bytes} bytes): ${hub.served(file)} served for a ${size}-byte file`);
    // every other file was asked for once
    const others = hub.log.filter((r) => r.path !== file);
    expect(new Set(others.map((r) => r.path)).size).toBe(others.length);
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('a model whose manifest declares float16 graphs is refused before any weight is downloaded, saying what would work', async ({ page }, info) => {
    const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
    const { errors } = watch(page, info, hub.url);
    if (backend === 'webgpu') {
      await page.goto('/?backend=wasm');
      const f16 = await page.evaluate(async () => !!(await navigator.gpu?.requestAdapter())?.features.has('shader-f16'));
      if (f16) {
        // a GPU with shader-f16 has what the manifest asks for: the model loads
        await page.goto(`/?backend=webgpu&model=webdit/zimage-declared&hub=${encodeURIComponent(hub.url)}`);
        await ready(page);
        await expect(page.getByTestId('error-banner')).toHaveCount(0);
        console.log('[webgpu] this adapter has shader-f16: the declared model loads');
        return;
      }
      hub.requests.length = 0;
    }
    await page.goto(`/?backend=${backend}&model=webdit/zimage-declared&hub=${encodeURIComponent(hub.url)}`);
    const banner = page.getByTestId('error-banner');
    // the WASM project runs Chromium with --disable-webgpu: the API is there, no adapter
    const have = backend === 'wasm' ? 'this browser has WebGPU but no adapter (GPU blocklisted or disabled)' : 'this browser has WebGPU without it (adapter: ';
    await expect(banner).toContainText(`Z-Image replica (declared needs) needs WebGPU with shader-f16 (its graphs take and give float16 tensors); ${have}`, { timeout: 120_000 });
    await expect(banner).toContainText('WASM cannot run it instead: at full size (5.6 GB) its weights do not fit the 4 GB WebAssembly memory.');
    await expect(banner).toContainText(/Try Chrome or Edge 121\+/);
    await expect(banner).toContainText('use the embedded model');
    // only the manifest was read: no graph, no weight
    expect(hub.requests).toEqual(['/webdit/zimage-declared/resolve/main/manifest.json', '/webdit/zimage-declared/resolve/main/model_index.json']);
    // the banner's button loads the embedded model
    await banner.getByRole('button', { name: 'Load the small built-in model' }).click();
    await ready(page);
    expect(errors).toEqual([]);
  });
});
