/**
 * History, zip downloads and the narrow layout in real Chromium, on WebGPU and on WASM: every
 * image is kept in IndexedDB and comes back after a reload with the same pixels and the same PNG
 * bytes; "Restore settings" refills the form and makes the same image again; one or all can be
 * deleted; a batch downloads as a zip of the very PNGs its single downloads give; a full storage
 * quota is said and leaves the history as it was; on a phone, and at 200% zoom, the result sits
 * right under the Generate button.
 */
import { expect, test, type Download, type Page, type TestInfo } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { loadFixtures, readManifest, type FixtureRun } from '../src/engine/testing/fixtures';
import { readTextChunks } from '../src/png';
import { setSlider, setParams, appState } from './ui';

const manifest = readManifest();
const fixtures = loadFixtures();

// ---- helpers (small copies of e2e/studio.spec.ts's) ----

/** Every RGBA byte of a canvas, alpha included: "pixel-identical" means all of them. */
async function canvasRGBA(page: Page, testId: string): Promise<number[]> {
  return page.getByTestId(testId).evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
}

/** The project's backend and the fixture run it can afford (SwiftShader runs shaders on the CPU: 3 steps there). */
function setup(info: TestInfo): { backend: 'webgpu' | 'wasm'; run: FixtureRun } {
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  return { backend, run: backend === 'webgpu' ? fixtures.runs[2] : fixtures.runs[0] };
}

function watch(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

async function openStudio(page: Page, backend: 'webgpu' | 'wasm') {
  await page.goto(`/?backend=${backend}`);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
}

const seedText = (seed: number) => new RegExp(`seed ${seed}$`);

/** Generate with the form as it is and wait for the image of `seed`. */
async function generate(page: Page, seed: number) {
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('timings')).toHaveText(seedText(seed), { timeout: 300_000 });
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
}

async function downloadBytes(page: Page, click: () => Promise<void>): Promise<{ bytes: Buffer; name: string }> {
  const [download]: [Download, void] = await Promise.all([page.waitForEvent('download'), click()]);
  return { bytes: fs.readFileSync(await download.path()), name: download.suggestedFilename() };
}

/** The infotext formatParameters writes for a run of the fixture with this seed. */
function expectedParameters(run: FixtureRun, seed: number): string {
  const [height, width] = run.rgb.dims;
  const neg = run.negativePrompt ? `\nNegative prompt: ${run.negativePrompt}` : '';
  return (
    `${run.prompt}${neg}\nSteps: ${run.numInferenceSteps}, Sampler: Euler, CFG scale: ${run.guidanceScale}, Seed: ${seed}, ` +
    `Size: ${width}x${height}, Model: ${manifest.id}, Shift: ${run.shift}`
  );
}

/** Names and bytes of a zip as Python's zipfile reads it (testzip() checks every CRC first). */
function unzipWithPython(zip: Buffer, info: TestInfo): { name: string; bytes: Buffer }[] {
  const file = info.outputPath(`read-${Date.now()}.zip`);
  fs.writeFileSync(file, zip);
  const script = `
import base64, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None, 'bad CRC'
    print(json.dumps([[i.filename, base64.b64encode(z.read(i)).decode()] for i in z.infolist()]))
`;
  const entries = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' })) as [string, string][];
  return entries.map(([name, b64]) => ({ name, bytes: Buffer.from(b64, 'base64') }));
}

const historyItems = (page: Page) => page.getByTestId('history-item');
const usage = (page: Page) => page.getByTestId('history-usage');

/** Opens a history entry large and returns its pixels once the stored PNG is drawn. */
async function openFromHistory(page: Page, seed: number): Promise<number[]> {
  await page.locator(`[data-testid="history-item"][data-seed="${seed}"]`).click();
  const dialog = page.getByTestId('history-dialog');
  await expect(dialog).toBeVisible();
  await expect(page.getByTestId('history-canvas')).toHaveAttribute('data-drawn', 'true');
  return canvasRGBA(page, 'history-canvas');
}

// ---- history ----

test('an image comes back from history after a reload with the same pixels and the same PNG bytes', async ({ page }, info) => {
  const { backend, run } = setup(info);
  const errors = watch(page);
  await openStudio(page, backend);
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await setParams(page, run);
  await generate(page, run.seed);
  const generated = await canvasRGBA(page, 'result-canvas');
  const single = await downloadBytes(page, () => page.getByTestId('download').click());
  await expect(historyItems(page)).toHaveCount(1);

  await page.reload();
  await expect(historyItems(page)).toHaveCount(1, { timeout: 60_000 });
  await expect(historyItems(page).first()).toHaveAttribute('data-seed', String(run.seed));
  // the storage line sums exactly the stored PNG's bytes, and reports the site's use
  await expect(usage(page)).toHaveAttribute('data-bytes', String(single.bytes.length));
  await expect(usage(page)).toContainText('1 image');
  await expect(usage(page)).toContainText('this site uses');

  const restored = await openFromHistory(page, run.seed);
  expect(restored.length).toBe(generated.length);
  expect(restored).toEqual(generated);
  await expect(page.getByTestId('history-details')).toContainText(backend === 'webgpu' ? 'WebGPU' : 'WASM');
  await expect(page.getByTestId('history-details')).toContainText(run.prompt);
  const fromHistory = await downloadBytes(page, () => page.getByTestId('history-download').click());
  expect(fromHistory.name).toBe(`webdit-${run.seed}.png`);
  expect(fromHistory.bytes.equals(single.bytes)).toBe(true);
  expect(readTextChunks(new Uint8Array(fromHistory.bytes)).parameters).toBe(expectedParameters(run, run.seed));
  expect(errors).toEqual([]);
});

test('"Restore settings" puts prompt, seed, steps and CFG back, and Generate makes the identical image', async ({ page }, info) => {
  const { backend, run } = setup(info);
  const errors = watch(page);
  await openStudio(page, backend);
  await setParams(page, run);
  await generate(page, run.seed);
  const generated = await canvasRGBA(page, 'result-canvas');

  // another setup entirely, then back to the first image's through history
  await page.getByTestId('prompt').fill('something else entirely');
  await page.getByTestId('negative-prompt').fill('nothing');
  await setSlider(page, 'steps', run.numInferenceSteps + 2, 1, 1);
  await setSlider(page, 'guidance', run.guidanceScale + 1, 1, 0.5);
  await page.getByTestId('seed').fill(String(run.seed + 77));
  await setSlider(page, 'images', 2, 1, 1);
  await page.reload(); // the form (persisted) and the history both come back
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await expect(page.getByTestId('prompt')).toHaveValue('something else entirely');

  await openFromHistory(page, run.seed);
  await page.getByTestId('history-restore').click();
  await expect(page.getByTestId('history-dialog')).toHaveCount(0);
  await expect(page.getByTestId('prompt')).toHaveValue(run.prompt);
  await expect(page.getByTestId('negative-prompt')).toHaveValue(run.negativePrompt);
  await expect(page.getByTestId('seed')).toHaveValue(String(run.seed));
  await expect(page.getByTestId('steps-value')).toHaveText(String(run.numInferenceSteps));
  await expect(page.getByTestId('guidance-value')).toHaveText(String(run.guidanceScale));
  await expect(page.getByTestId('images-value')).toHaveText('1');
  await expect(page.getByTestId('random-seed')).not.toBeChecked();
  await expect(page.getByTestId('generate')).toBeFocused();
  await expect(page.getByTestId('form-notice')).toHaveCount(0); // same model: nothing it could not restore

  await generate(page, run.seed);
  expect(await canvasRGBA(page, 'result-canvas')).toEqual(generated);
  await expect(historyItems(page)).toHaveCount(2);
  expect(errors).toEqual([]);
});

test('delete one, then delete all; a reload shows what is left', async ({ page }, info) => {
  const { backend, run } = setup(info);
  const errors = watch(page);
  await openStudio(page, backend);
  await setParams(page, run);
  await setSlider(page, 'images', 2, 1, 1);
  await generate(page, run.seed);
  await expect(historyItems(page)).toHaveCount(2);
  // newest first: the batch's second image (seed+1), then its first
  await expect(historyItems(page).nth(0)).toHaveAttribute('data-seed', String(run.seed + 1));
  await expect(historyItems(page).nth(1)).toHaveAttribute('data-seed', String(run.seed));
  const bytesOfTwo = Number(await usage(page).getAttribute('data-bytes'));

  await openFromHistory(page, run.seed + 1);
  await page.getByTestId('history-delete').click();
  await expect(historyItems(page)).toHaveCount(1);
  await expect(historyItems(page).first()).toHaveAttribute('data-seed', String(run.seed));
  const bytesOfOne = Number(await usage(page).getAttribute('data-bytes'));
  expect(bytesOfOne).toBeGreaterThan(0);
  expect(bytesOfOne).toBeLessThan(bytesOfTwo);
  await page.reload();
  await expect(historyItems(page)).toHaveCount(1, { timeout: 60_000 });
  await expect(historyItems(page).first()).toHaveAttribute('data-seed', String(run.seed));

  // delete all asks first; Keep keeps
  await page.getByTestId('history-clear').click();
  await page.getByTestId('history-clear-keep').click();
  await expect(historyItems(page)).toHaveCount(1);
  await page.getByTestId('history-clear').click();
  await page.getByTestId('history-clear-confirm').click();
  await expect(historyItems(page)).toHaveCount(0);
  await expect(usage(page)).toHaveAttribute('data-bytes', '0');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('history')).toHaveAttribute('data-status', 'ready', { timeout: 60_000 });
  await expect(historyItems(page)).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('a batch of 2 downloads as a zip of the PNGs its single downloads give, and a cancelled run keeps the finished images', async ({ page }, info) => {
  const { backend, run } = setup(info);
  const errors = watch(page);
  await openStudio(page, backend);
  await setParams(page, run);
  await setSlider(page, 'images', 2, 1, 1);
  await generate(page, run.seed);
  const thumbnails = page.getByTestId('thumbnail');
  await expect(thumbnails).toHaveCount(2);

  const singles: { bytes: Buffer; name: string }[] = [];
  for (const k of [0, 1]) {
    await thumbnails.nth(k).click();
    await expect(page.getByTestId('timings')).toHaveText(seedText(run.seed + k));
    singles.push(await downloadBytes(page, () => page.getByTestId('download').click()));
  }
  expect(singles.map((s) => s.name)).toEqual([`webdit-${run.seed}.png`, `webdit-${run.seed + 1}.png`]);
  expect(singles[0].bytes.equals(singles[1].bytes)).toBe(false);

  const zip = await downloadBytes(page, () => page.getByTestId('download-zip').click());
  expect(zip.name).toBe(`webdit-${run.seed}-batch-of-2.zip`);
  const inZip = unzipWithPython(zip.bytes, info);
  expect(inZip.map((e) => e.name)).toEqual(singles.map((s) => s.name));
  inZip.forEach((e, k) => expect(e.bytes.equals(singles[k].bytes), e.name).toBe(true));

  // the whole history as a zip: the same two PNGs, as stored
  await expect(historyItems(page)).toHaveCount(2);
  const all = unzipWithPython((await downloadBytes(page, () => page.getByTestId('history-zip').click())).bytes, info);
  expect(all.map((e) => e.name)).toEqual(singles.map((s) => s.name));
  all.forEach((e, k) => expect(e.bytes.equals(singles[k].bytes), e.name).toBe(true));

  // a long run cancelled midway: the finished batch stays, on screen and in history
  await thumbnails.nth(0).click();
  const shown = await canvasRGBA(page, 'result-canvas');
  await setSlider(page, 'images', 1, 1, 1);
  await setSlider(page, 'steps', 50, 1, 1);
  await page.getByTestId('seed').fill(String(run.seed + 500));
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('progress')).toContainText(/Step [1-9]\d*\/50/, { timeout: 120_000 });
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('status')).toContainText(/Cancelled at step \d+\/50/, { timeout: 120_000 });
  await expect(thumbnails).toHaveCount(2);
  await expect(thumbnails.nth(0)).toHaveAttribute('data-seed', String(run.seed));
  await expect(thumbnails.nth(1)).toHaveAttribute('data-seed', String(run.seed + 1));
  await expect(page.getByTestId('result-canvas')).toHaveAttribute('data-kind', 'image');
  expect(await canvasRGBA(page, 'result-canvas')).toEqual(shown);
  await expect(historyItems(page)).toHaveCount(2);
  expect(errors).toEqual([]);
});

test('a full storage quota says the image was not saved and what to do, and keeps the history and the image on screen', async ({ page }, info) => {
  const { backend, run } = setup(info);
  const errors = watch(page);
  // IndexedDB refuses every put while the flag is set, as a full origin quota does
  await page.addInitScript(() => {
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      if (localStorage.getItem('e2e.quotaFull') === '1') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    };
  });
  await openStudio(page, backend);
  await setParams(page, run);
  await generate(page, run.seed);
  await expect(historyItems(page)).toHaveCount(1);
  const bytesBefore = await usage(page).getAttribute('data-bytes');

  await page.evaluate(() => localStorage.setItem('e2e.quotaFull', '1'));
  const seed = run.seed + 1;
  await page.getByTestId('seed').fill(String(seed));
  await generate(page, seed);
  const problem = page.getByTestId('history-problem');
  await expect(problem).toBeVisible();
  await expect(problem).toHaveAttribute('data-quota', 'true');
  await expect(problem).toContainText(`The image with seed ${seed} was not saved to history`);
  await expect(problem).toContainText('storage is full');
  await expect(problem).toContainText('delete old images from the history');
  // and a pointer to it right by the result, where the user is looking
  await expect(page.getByTestId('history-save-notice')).toHaveText('Not saved to history: storage is full. See History');
  // the new image is on screen and downloadable; the stored one is untouched; the studio is not in error
  await expect(page.getByTestId('result-canvas')).toHaveAttribute('data-kind', 'image');
  await expect(page.getByTestId('download')).toBeEnabled();
  await expect(historyItems(page)).toHaveCount(1);
  await expect(historyItems(page).first()).toHaveAttribute('data-seed', String(run.seed));
  await expect(usage(page)).toHaveAttribute('data-bytes', bytesBefore!);
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');

  // with room again: the reload finds the earlier image intact, and the next one is saved
  await page.evaluate(() => localStorage.removeItem('e2e.quotaFull'));
  await page.reload();
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await expect(historyItems(page)).toHaveCount(1);
  await expect(historyItems(page).first()).toHaveAttribute('data-seed', String(run.seed));
  await generate(page, seed);
  await expect(historyItems(page)).toHaveCount(2);
  await expect(page.getByTestId('history-problem')).toHaveCount(0);
  await expect(page.getByTestId('history-save-notice')).toHaveCount(0);
  expect(errors).toEqual([]);
});

// ---- layout ----

/** Where the result sits relative to the Generate button, in CSS px, plus horizontal overflow. */
async function resultPlacement(page: Page) {
  const generateBox = (await page.getByTestId('generate').boundingBox())!;
  const resultBox = (await page.getByTestId('result-canvas').boundingBox())!;
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
  return { generateBox, resultBox, gap: resultBox.y - (generateBox.y + generateBox.height), scrollWidth, innerWidth };
}

/**
 * Narrow screens: the result's top within 400 px under the Generate button's bottom, nothing
 * wider than the screen. "200% zoom" is a 1280-px-wide window zoomed to 200%: Chromium then lays
 * the page out in a 640-CSS-px viewport with 2 device pixels per CSS pixel, which is what
 * viewport 640x400 with deviceScaleFactor 2 gives (media queries and layout see 640 px, as with zoom).
 */
for (const screen of [
  { name: 'a 375x800 phone', viewport: { width: 375, height: 800 }, deviceScaleFactor: 1 },
  { name: 'a 1280x800 window at 200% zoom', viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 },
]) {
  test.describe(screen.name, () => {
    test.use({ viewport: screen.viewport, deviceScaleFactor: screen.deviceScaleFactor });

    test(`on ${screen.name} the result appears just under the Generate button`, async ({ page }, info) => {
      const { backend, run } = setup(info);
      const errors = watch(page);
      await openStudio(page, backend);
      expect(await page.evaluate(() => window.devicePixelRatio)).toBe(screen.deviceScaleFactor);
      await setParams(page, run);
      await generate(page, run.seed);
      const p = await resultPlacement(page);
      console.log(`[${backend}] ${screen.name}: result top ${p.gap.toFixed(0)} px under Generate's bottom (Generate at y=${p.generateBox.y.toFixed(0)}, result ${p.resultBox.width.toFixed(0)} px wide)`);
      expect(p.gap).toBeGreaterThanOrEqual(0);
      expect(p.gap).toBeLessThanOrEqual(400);
      expect(p.resultBox.x).toBeGreaterThanOrEqual(0);
      expect(p.resultBox.x + p.resultBox.width).toBeLessThanOrEqual(screen.viewport.width);
      expect(p.scrollWidth).toBeLessThanOrEqual(p.innerWidth);
      // pressing Generate scrolled into view leaves the top of the result on screen too
      await page.getByTestId('generate').scrollIntoViewIfNeeded();
      const after = await resultPlacement(page);
      expect(after.resultBox.y).toBeLessThan(screen.viewport.height);
      expect(errors).toEqual([]);
    });
  });
}

test.describe('a 1280x800 desktop window', () => {
  test.use({ viewport: { width: 1280, height: 800 } });

  test('keeps two columns: the settings on the left, the result beside them at the top', async ({ page }, info) => {
    const { backend } = setup(info);
    await openStudio(page, backend);
    const p = await resultPlacement(page);
    const form = (await page.getByRole('form', { name: 'Generation settings' }).boundingBox())!;
    expect(p.resultBox.x).toBeGreaterThan(form.x + form.width);
    expect(p.resultBox.y).toBeLessThan(p.generateBox.y);
    expect(Math.abs(p.resultBox.y - form.y)).toBeLessThan(100);
    expect(p.scrollWidth).toBeLessThanOrEqual(p.innerWidth);
  });
});
