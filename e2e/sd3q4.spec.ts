/**
 * The 4-bit SD3 replica (training/convert_sd3.py: com.microsoft MatMulNBits, fp16-stored weights,
 * sharded external data, our manifest) loaded by repo id from a local hub in real Chromium, once on
 * WebGPU and once on WASM: it must make the image onnxruntime-node made from the same graphs, and stay
 * within the error training/replicas/sd3_q4.py reports against the PyTorch golden.
 */
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { f32, psnr, type FixtureRun } from '../src/engine/testing/fixtures';
import { startHubServer, type HubServer } from '../src/engine/testing/hubServer';
import { appState, canvasRGB, setParams } from './ui';

const DIR = path.resolve('src/engine/families/sd3/__replica__');
const REPLICA = path.join(DIR, 'sd3-tiny-q4');
const golden = JSON.parse(fs.readFileSync(path.join(DIR, 'sd3-golden.json'), 'utf8')) as { runs: (FixtureRun & { name: string })[] };
interface B64Tensor {
  dims: number[];
  b64: string;
}
const report = JSON.parse(fs.readFileSync(path.join(DIR, 'sd3-q4-error.json'), 'utf8')) as {
  floor_db: number;
  runs: { name: string; psnr_vs_pytorch_db: number; rgb: B64Tensor }[];
  matmulnbits_cases: { K: number; N: number; block_size: number; model: string; a: B64Tensor; y: B64Tensor }[];
};
const ORT_DIST = path.resolve('node_modules/onnxruntime-web/dist');

// the helpers below are small copies of e2e/studio.spec.ts' (that spec stays as it is)




function watch(page: Page, info: TestInfo): { errors: string[]; foreign: string[] } {
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.context().on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'https:'].includes(u.protocol)) return;
    if (u.origin !== new URL(info.project.use.baseURL!).origin) foreign.push(r.url());
  });
  return { errors, foreign };
}

// the ONNX Runtime build the studio bundles ('onnxruntime-web/webgpu'), served at /__ort__/ on our origin
const ORT_FILES: Record<string, string> = {
  'ort.webgpu.bundle.min.mjs': 'text/javascript',
  'ort-wasm-simd-threaded.asyncify.mjs': 'text/javascript',
  'ort-wasm-simd-threaded.asyncify.wasm': 'application/wasm',
};

test('4-bit kernels as the converter writes them run on the backend itself (WebGPU: no CPU fallback) and equals numpy', async ({ page }, info) => {
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  await page.route('**/__ort__/**', (route) => {
    const name = new URL(route.request().url()).pathname.replace('/__ort__/', '');
    if (name === 'index.html') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>ort</title>' });
    if (!ORT_FILES[name]) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({ contentType: ORT_FILES[name], body: fs.readFileSync(path.join(ORT_DIST, name)) });
  });
  await page.goto('/__ort__/index.html');
  const results = await page.evaluate(
    async ({ backend, cases }) => {
      const url = '/__ort__/ort.webgpu.bundle.min.mjs';
      const ort = await import(/* @vite-ignore */ url);
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.wasmPaths = '/__ort__/';
      const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const out: { y: number[]; error?: string }[] = [];
      for (const c of cases) {
        try {
          // session.disable_cpu_ep_fallback: creating the session fails if any node would run on the CPU EP
          const session = await ort.InferenceSession.create(bytes(c.model), {
            executionProviders: [backend],
            ...(backend === 'webgpu' ? { extra: { session: { disable_cpu_ep_fallback: '1' } } } : {}),
          });
          const a = new ort.Tensor('float32', new Float32Array(bytes(c.a.b64).buffer), c.a.dims);
          const y = (await session.run({ a })).y;
          out.push({ y: Array.from(y.data as Float32Array) });
          await session.release();
        } catch (e) {
          out.push({ y: [], error: String(e) });
        }
      }
      return out;
    },
    { backend, cases: report.matmulnbits_cases },
  );
  for (const [i, c] of report.matmulnbits_cases.entries()) {
    const r = results[i];
    expect(r.error, `K=${c.K} N=${c.N} block ${c.block_size}`).toBeUndefined();
    const want = Array.from(f32(c.y));
    const scale = Math.max(...want.map(Math.abs));
    const diff = Math.max(...want.map((v, j) => Math.abs(v - r.y[j])));
    console.log(`[${backend}] MatMulNBits K=${c.K} N=${c.N} block ${c.block_size}: max |diff| ${diff.toExponential(2)} (max |y| ${scale.toFixed(2)})`);
    expect(r.y.length).toBe(want.length);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  }
});

test.describe('the 4-bit SD3 replica from a Hub repo (?model=webdit/sd3-tiny-q4)', () => {
  let hub: HubServer;
  test.beforeAll(async () => {
    hub = await startHubServer({ 'webdit/sd3-tiny-q4': REPLICA });
  });
  test.afterAll(() => hub.close());

  test('loads through its manifest, shards and MatMulNBits included, and makes the 4-bit image', async ({ page }, info) => {
    const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
    const { errors, foreign } = watch(page, info);
    const run = golden.runs[0];
    const q4 = report.runs.find((r) => r.name === run.name)!;
    await page.goto(`/?backend=${backend}&model=webdit/sd3-tiny-q4&hub=${hub.url}`);
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    // no fallback: the 4-bit graphs run on the backend asked for
    await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
    await setParams(page, run);
    await page.getByTestId('generate').click();
    await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
    const rgb = await canvasRGB(page);
    const vsOrt = psnr(rgb, Buffer.from(q4.rgb.b64, 'base64'));
    const vsTorch = psnr(rgb, Buffer.from(run.rgb.b64, 'base64'));
    console.log(`[${backend}] 4-bit SD3 replica: ${vsOrt.toFixed(1)} dB vs onnxruntime-node 4-bit, ${vsTorch.toFixed(1)} dB vs PyTorch fp32 (reported ${q4.psnr_vs_pytorch_db})`);
    expect(vsOrt).toBeGreaterThanOrEqual(45);
    expect(vsTorch).toBeGreaterThanOrEqual(Math.max(report.floor_db, q4.psnr_vs_pytorch_db - 0.5));
    // the manifest was read (no tree listing), a second shard was fetched, and nothing came from elsewhere
    expect(hub.requests).toContain('/webdit/sd3-tiny-q4/resolve/main/manifest.json');
    expect(hub.requests.some((u) => /\/model\.onnx_data_\d+$/.test(u))).toBe(true);
    expect(foreign.filter((u) => !u.startsWith(hub.url))).toEqual([]);
    expect(errors).toEqual([]);
  });
});
