/**
 * A new user's session in real Chromium, once on WebGPU and once on WASM: the model loads with
 * the page, a prompt becomes the same image PyTorch makes for that seed, the PNG download
 * carries its parameters, and a run cancels within one step and leaves the studio usable.
 */
import { expect, test, type Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { readTextChunks } from '../src/png';
import { psnr } from '../src/engine/testing/fixtures';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'public/models/webdit-tiny/manifest.json'), 'utf8'));
const fixtures = JSON.parse(
  fs.readFileSync(process.env.WEBDIT_FIXTURES ?? path.join(root, 'src/engine/__fixtures__', `${manifest.id}.json`), 'utf8'),
);
type Run = { prompt: string; negativePrompt: string; seed: number; numInferenceSteps: number; guidanceScale: number; shift: number; rgb: { b64: string } };

/** Set a range slider the way a keyboard user does: focus, Home, then ArrowRight. */
async function setSlider(page: Page, testId: string, value: number, min: number, step: number) {
  const slider = page.getByTestId(testId);
  await slider.focus();
  await page.keyboard.press('Home');
  for (let v = min; v < value - 1e-9; v += step) await page.keyboard.press('ArrowRight');
  await expect(slider).toHaveValue(String(value));
}

async function setParams(page: Page, run: Pick<Run, 'prompt' | 'negativePrompt' | 'seed' | 'numInferenceSteps' | 'guidanceScale'>) {
  await page.getByTestId('prompt').fill(run.prompt);
  await page.getByTestId('negative-prompt').fill(run.negativePrompt);
  await setSlider(page, 'steps', run.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', run.guidanceScale, 1, 0.5);
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  await page.getByTestId('seed').fill(String(run.seed));
}

async function canvasRGB(page: Page): Promise<number[]> {
  return page.getByTestId('result-canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: number[] = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);
    return out;
  });
}

test('a new user generates, downloads, cancels and generates again', async ({ page }, info) => {
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  // WebGPU on SwiftShader runs shaders on the CPU: prove correctness with a 3-step run there
  const run: Run = backend === 'webgpu' ? fixtures.runs[2] : fixtures.runs[0];
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // everything (page, worker, ORT's .wasm, model files) must come from our own origin
  const foreign: string[] = [];
  page.context().on('request', (r) => {
    const u = new URL(r.url());
    if (!['http:', 'https:'].includes(u.protocol)) return; // blob:/data: made in the page
    if (u.origin !== new URL(info.project.use.baseURL!).origin) foreign.push(r.url());
  });

  await page.goto(`/?backend=${backend}`);
  await expect(page.locator('[data-state]').first()).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  const badge = page.getByTestId('backend-badge');
  await expect(badge).toHaveAttribute('data-backend', backend);
  await expect(badge).toContainText(backend === 'webgpu' ? 'WebGPU' : 'WASM');

  // 1. generate with the fixture's seed and compare with PyTorch
  await setParams(page, run);
  await page.getByTestId('prompt').press('Control+Enter');
  await expect(page.getByTestId('timings')).toContainText(`seed ${run.seed}`, { timeout: 300_000 });
  await expect(page.locator('[data-state]').first()).toHaveAttribute('data-state', 'ready');
  const rgb = await canvasRGB(page);
  const ref = Buffer.from(run.rgb.b64, 'base64');
  expect(rgb.length).toBe(ref.length);
  const p = psnr(rgb, ref);
  console.log(`[${backend}] canvas vs PyTorch: PSNR ${p.toFixed(1)} dB (${run.numInferenceSteps} steps, CFG ${run.guidanceScale})`);
  expect(p).toBeGreaterThanOrEqual(35);

  // 2. download the PNG and read its parameters back
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download').click()]);
  const file = await download.path();
  const chunks = readTextChunks(new Uint8Array(fs.readFileSync(file)));
  const neg = run.negativePrompt ? `\nNegative prompt: ${run.negativePrompt}` : '';
  expect(chunks.parameters).toBe(
    `${run.prompt}${neg}\nSteps: ${run.numInferenceSteps}, Sampler: Euler, CFG scale: ${run.guidanceScale}, Seed: ${run.seed}, ` +
      `Size: ${manifest.image_size}x${manifest.image_size}, Model: ${manifest.id}, Shift: ${run.shift}`,
  );

  // 3. cancel a long run midway: it stops within one step and the UI stays usable
  await setSlider(page, 'steps', 50, 1, 1);
  await page.getByTestId('generate').click();
  const progress = page.getByTestId('progress');
  await expect(progress).toContainText(/Step [1-9]\d*\/50/, { timeout: 120_000 });
  const atCancel = Number((await progress.textContent())!.match(/Step (\d+)\/50/)![1]);
  expect(atCancel).toBeLessThan(40); // still well inside the run when Esc goes out
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('status')).toContainText(/Cancelled at step \d+\/50/, { timeout: 120_000 });
  const stoppedAt = Number((await page.getByTestId('status').textContent())!.match(/Cancelled at step (\d+)\/50/)![1]);
  expect(stoppedAt).toBeLessThanOrEqual(atCancel + 1);
  await expect(page.locator('[data-state]').first()).toHaveAttribute('data-state', 'ready');
  await expect(page.getByTestId('error-banner')).toHaveCount(0);

  // 4. and generate again: the same seed gives the same image
  await setSlider(page, 'steps', run.numInferenceSteps, 1, 1);
  await page.getByTestId('generate').click();
  await expect(page.locator('[data-state]').first()).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  expect(psnr(await canvasRGB(page), ref)).toBeGreaterThanOrEqual(35);
  expect(errors).toEqual([]);
  expect(foreign).toEqual([]);
});
