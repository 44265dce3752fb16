/**
 * Z-Image-Turbo replicas (training/replicas/zimage.py) loaded in real Chromium by repo id from a local
 * hub, once on WebGPU and once on WASM: both graph contracts (the older fp32 one with 5-D latents and
 * `unified_results`, the newer fp16 one with two weight shards) make the image PyTorch makes for a
 * share link's prompt, seed, steps and size (the fp16 one on WebGPU only where the adapter has
 * shader-f16: elsewhere the load says so); a repo that lacks a weight shard says which file.
 */
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { psnr } from '../src/engine/testing/fixtures';
import { startHubServer, type HubServer } from '../src/engine/testing/hubServer';

const DIR = path.resolve('src/engine/families/zimage/__replica__');
interface Run {
  name: string;
  version: 'zimage-tiny' | 'zimage-tiny-fp16';
  prompt: string;
  seed: number;
  numInferenceSteps: number;
  width: number;
  height: number;
  rgb: { dims: number[]; b64: string };
}
const golden = JSON.parse(fs.readFileSync(path.join(DIR, 'zimage-golden.json'), 'utf8')) as { runs: Run[] };

const appState = (page: Page) => page.locator('[data-state]').first();

async function canvasRGB(page: Page): Promise<number[]> {
  return page.getByTestId('result-canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: number[] = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);
    return out;
  });
}

/** Page errors, and requests to origins other than ours and the hub. */
function watch(page: Page, info: TestInfo, hubUrl: string): { errors: string[]; foreign: string[]; fromHub: string[] } {
  const errors: string[] = [];
  const foreign: string[] = [];
  const fromHub: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.context().on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'https:'].includes(u.protocol)) return;
    if (r.url().startsWith(hubUrl)) fromHub.push(u.pathname);
    else if (u.origin !== new URL(info.project.use.baseURL!).origin) foreign.push(r.url());
  });
  return { errors, foreign, fromHub };
}

/** The share link that loads `repo` from the hub and runs `run` once the model is ready. */
function link(backend: string, repo: string, hubUrl: string, run: Run): string {
  const q = new URLSearchParams({ backend, model: repo, hub: hubUrl, prompt: run.prompt, seed: String(run.seed), steps: String(run.numInferenceSteps), width: String(run.width), height: String(run.height), run: '1' });
  return `/?${q}`;
}

test.describe('Z-Image-Turbo replicas from a Hub repo (?model=), webnn layout', () => {
  let hub: HubServer;
  test.beforeAll(async () => {
    hub = await startHubServer({ 'webdit/zimage-tiny': path.join(DIR, 'zimage-tiny'), 'webdit/zimage-tiny-fp16': path.join(DIR, 'zimage-tiny-fp16') });
  });
  test.afterAll(() => hub.close());

  for (const version of ['zimage-tiny', 'zimage-tiny-fp16'] as const) {
    const title = version === 'zimage-tiny-fp16' ? ' (on WebGPU without shader-f16: refused, with the fix)' : '';
    test(`${version} loads by repo id and a 9-step share link makes the image PyTorch makes${title}`, async ({ page }, info) => {
      const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
      const run = golden.runs.find((r) => r.version === version && r.width === 64)!;
      const { errors, foreign, fromHub } = watch(page, info, hub.url);
      if (backend === 'webgpu' && version === 'zimage-tiny-fp16') {
        await page.goto('/?backend=wasm');
        const f16 = await page.evaluate(async () => !!(await navigator.gpu?.requestAdapter())?.features.has('shader-f16'));
        if (!f16) {
          // fp16 inputs/outputs are cast on the GPU: without shader-f16 (SwiftShader) the load says so, naming the graph and the fix
          await page.goto(link(backend, `webdit/${version}`, hub.url, run));
          const banner = page.getByTestId('error-banner');
          await expect(banner).toContainText('onnx/text_encoder_model_q4f16.onnx takes and gives float16 tensors', { timeout: 300_000 });
          await expect(banner).toContainText('shader-f16');
          await expect(banner).toContainText('WASM');
          console.log('[webgpu] zimage-tiny-fp16: this adapter has no shader-f16; the load is refused with the fix');
          expect(errors).toEqual([]);
          return;
        }
      }
      await page.goto(link(backend, `webdit/${version}`, hub.url, run));
      await expect(page.getByTestId('timings')).toHaveText(new RegExp(`seed ${run.seed}$`), { timeout: 300_000 });
      await expect(appState(page)).toHaveAttribute('data-state', 'ready');
      await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
      const rgb = await canvasRGB(page);
      const ref = Buffer.from(run.rgb.b64, 'base64');
      expect(rgb.length).toBe(ref.length);
      const p = psnr(rgb, ref);
      console.log(`[${backend}] ${version} canvas vs PyTorch: PSNR ${p.toFixed(1)} dB (${run.numInferenceSteps} steps, ${run.width}x${run.height})`);
      expect(p).toBeGreaterThanOrEqual(45);
      // the graphs came from the hub with their weight files; the scheduler-step graph never did
      expect(fromHub).toContain(`/webdit/${version}/resolve/main/onnx/transformer_model_q4f16.onnx_data`);
      expect(fromHub.filter((u) => u.includes('scheduler_step'))).toEqual([]);
      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);
    });
  }

  test('a repo that lacks a weight file says which one, before running anything', async ({ page }, info) => {
    const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
    // WASM: the newer contract without its second shard; WebGPU (no shader-f16 on SwiftShader): the older one without its only weight file
    const [version, missing] = backend === 'wasm' ? (['zimage-tiny-fp16', 'onnx/transformer_model_q4f16.onnx_data_1'] as const) : (['zimage-tiny', 'onnx/transformer_model_q4f16.onnx_data'] as const);
    const run = golden.runs.find((r) => r.version === version && r.width === 64)!;
    hub.hidden.add(missing);
    try {
      await page.goto(link(backend, `webdit/${version}`, hub.url, run));
      const banner = page.getByTestId('error-banner');
      await expect(banner).toContainText(`keeps its weights in ${missing},`, { timeout: 300_000 });
      await expect(banner).toContainText(/repository is incomplete/i);
      await expect(page.getByTestId('timings')).not.toHaveText(/seed/);
    } finally {
      hub.hidden.clear();
    }
  });
});
