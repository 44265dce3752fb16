/**
 * GPU-resident sampling on WebGPU (SwiftShader here; @webgpu-only: the wasm project runs Chromium
 * without WebGPU): with preview off a run reads nothing back from the GPU inside its denoise loop
 * (the engine counts every read of a GPU buffer and reports it with the run), it makes the image
 * the WASM path (run first, in the same worker) and PyTorch make, and a batch leaves no tensor held
 * on the GPU.
 */
import { expect, test, type Page } from '@playwright/test';
import { loadFixtures, psnr, type FixtureRun } from '../src/engine/testing/fixtures';
import type { GenerateTimings } from '../src/engine/protocol';
import { appState, canvasRGB, setSlider } from './ui';

const fixtures = loadFixtures();
// SwiftShader runs shaders on the CPU: the 3-step CFG run
const run = fixtures.runs[2];

// the helpers below are small copies of e2e/studio.spec.ts' (that spec stays as it is)

async function setParams(page: Page, r: FixtureRun) {
  await page.getByTestId('prompt').fill(r.prompt);
  await page.getByTestId('negative-prompt').fill(r.negativePrompt);
  await setSlider(page, 'steps', r.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', r.guidanceScale, 1, 0.5);
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  await page.getByTestId('seed').fill(String(r.seed));
  const preview = page.getByTestId('live-preview');
  if (await preview.isChecked()) await preview.uncheck();
}



/**
 * Every `done` event of a generate request the engine worker posts, kept in the page: a second
 * listener on the worker (the app's own listener is untouched).
 */
async function recordDoneEvents(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { __generateDone: unknown[]; Worker: typeof Worker };
    w.__generateDone = [];
    const Base = w.Worker;
    w.Worker = class extends Base {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        this.addEventListener('message', (e: MessageEvent) => {
          const d = e.data as { type?: string; result?: { request?: string } } | null;
          if (d?.type === 'done' && d.result?.request === 'generate') w.__generateDone.push(d.result);
        });
      }
    };
  });
}

async function generate(page: Page): Promise<GenerateTimings> {
  const before = await page.evaluate(() => (window as unknown as { __generateDone: unknown[] }).__generateDone.length);
  await page.getByTestId('generate').click();
  await expect.poll(() => page.evaluate(() => (window as unknown as { __generateDone: unknown[] }).__generateDone.length), { timeout: 300_000 }).toBe(before + 1);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
  return page.evaluate(() => ((window as unknown as { __generateDone: { timings: GenerateTimings }[] }).__generateDone.at(-1)!.timings));
}

test('WebGPU sampling reads nothing back per step and makes the WASM path\'s image; a batch holds nothing afterwards @webgpu-only', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await recordDoneEvents(page);

  // the WASM path's image first (ORT's plain WASM build in the engine worker)
  await page.goto('/?backend=wasm');
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'wasm');
  await setParams(page, run);
  const wasmTimings = await generate(page);
  expect(wasmTimings.readbacks).toBe(0); // nothing lives on a GPU there
  const wasmRGB = await canvasRGB(page);

  // then WebGPU in the same worker (ORT's WebGPU build starts beside the WASM one)
  await page.getByTestId('backend-select').selectOption('webgpu');
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'webgpu', { timeout: 300_000 });
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  const t = await generate(page);
  console.log(`[webgpu] ${run.numInferenceSteps} steps: ${t.denoiseReadbacks} readbacks in the denoise loop, ${t.readbacks} in the run, ${t.msPerStep.toFixed(0)} ms/step`);
  // zero reads per step; the run reads the final latents once and the decoded image once
  expect(t.denoiseReadbacks).toBe(0);
  expect(t.readbacks).toBe(2);
  expect(t.liveDeviceTensors).toBe(0);
  const rgb = await canvasRGB(page);
  const vsWasm = psnr(rgb, wasmRGB);
  const vsTorch = psnr(rgb, Buffer.from(run.rgb.b64, 'base64'));
  console.log(`[webgpu] canvas vs WASM path: PSNR ${vsWasm.toFixed(1)} dB; vs PyTorch: ${vsTorch.toFixed(1)} dB`);
  expect(vsWasm).toBeGreaterThanOrEqual(40);
  expect(vsTorch).toBeGreaterThanOrEqual(40);

  // a batch of 2 after it: still no reads per step, its first image is the single run's, nothing left on the GPU
  await setSlider(page, 'images', 2, 1, 1);
  const b = await generate(page);
  expect(b.denoiseReadbacks).toBe(0);
  expect(b.readbacks).toBe(2);
  expect(b.liveDeviceTensors).toBe(0);
  await expect(page.getByTestId('thumbnail')).toHaveCount(2);
  expect(psnr(await canvasRGB(page), rgb)).toBeGreaterThanOrEqual(40);
  expect(errors).toEqual([]);
});
