/**
 * The fault table's cases that e2e/reliability.spec.ts does not make (shared/reviews/
 * fault-table-2026-11-28.md; e2e/FAULTS.md maps every row to its test), made the way the review
 * made them: a route that holds a model file, hostile and extreme prompts typed into the form,
 * storms of clicks and keys, a reload in the middle of a run, two pages at once, a model file that
 * is an HTML page, a manifest that names an absolute URL, auto mode on a software GPU.
 *
 * Every image is checked against PyTorch: the model's fixtures (training/fixtures.py) and
 * src/engine/__fixtures__/webdit-tiny-faults.json (training/fault_fixtures.py: the empty, spaces-
 * only, 10,000-character and markup prompts, 1 step at CFG 1 and 12, 50 steps), within 35 dB; a
 * run after a fault must equal the same run before it, pixel for pixel.
 *
 * Cases share a page and a model load where they can (the CI budget): one test per page. @wasm-only
 * for paths that do not depend on the backend; the backends themselves (8b, 8c) are @webgpu-only.
 */
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { readTextChunks } from '../src/png';
import { formatBytes } from '../src/store/format';
import { loadFixtures, psnr, readManifest, type FixtureTensor } from '../src/engine/testing/fixtures';
import { appState, canvasRGB, setSlider } from './ui';

// a service worker would answer model requests before the routes that make the faults
test.use({ serviceWorkers: 'block' });

const manifest = readManifest();
const MODEL_FILES = Object.keys(manifest.files).filter((f) => f.endsWith('.onnx'));
const TRANSFORMER = 'transformer/model.onnx';

interface Golden {
  prompt: string;
  negativePrompt: string;
  seed: number;
  numInferenceSteps: number;
  guidanceScale: number;
  rgb: FixtureTensor;
}
const faultFixtures = JSON.parse(fs.readFileSync(path.resolve('src/engine/__fixtures__', `${manifest.id}-faults.json`), 'utf8')) as {
  model_files: Record<string, string>;
  runs: Record<string, Golden>;
};
const golden = (name: string): Golden => {
  const run = faultFixtures.runs[name];
  if (!run) throw new Error(`no golden run "${name}" in ${manifest.id}-faults.json: re-run training/fault_fixtures.py`);
  return run;
};
/** 3 steps at CFG 3, seed 5 (the model fixtures' run 2): the reference run of these tests. */
const BASE = loadFixtures().runs[2];

test('the fault goldens were computed with the shipped graphs', () => {
  expect(Object.keys(faultFixtures.model_files).length).toBeGreaterThanOrEqual(3);
  for (const [p, sha] of Object.entries(faultFixtures.model_files)) expect(manifest.files[p]?.sha256, `${p}: re-run training/fault_fixtures.py`).toBe(sha);
});

// ---- helpers ----

/** The run's settings typed into the form the way a user does (sliders by keyboard). */
async function fill(page: Page, run: Pick<Golden, 'prompt' | 'negativePrompt' | 'seed' | 'numInferenceSteps' | 'guidanceScale'>) {
  await page.getByTestId('prompt').fill(run.prompt);
  await page.getByTestId('negative-prompt').fill(run.negativePrompt);
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  await page.getByTestId('seed').fill(String(run.seed));
  await setSlider(page, 'steps', run.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', run.guidanceScale, 1, 0.5);
}

async function waitReady(page: Page) {
  await expect(appState(page)).not.toHaveAttribute('data-state', /starting|loading/, { timeout: 300_000 });
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
}

/** The run has ended with its image: "Done in …", no banner. */
async function done(page: Page) {
  await expect(page.getByTestId('status')).toHaveText(/^Done in /, { timeout: 300_000 });
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await expect(page.getByTestId('result-canvas')).toHaveAttribute('data-kind', 'image');
}

async function generate(page: Page) {
  await page.getByTestId('generate').click();
  await done(page);
}

/** The canvas is PyTorch's image for this run within 35 dB; returns its pixels. */
async function expectPyTorch(page: Page, rgb: FixtureTensor, what: string): Promise<number[]> {
  const got = await canvasRGB(page);
  const ref = Buffer.from(rgb.b64, 'base64');
  expect(got.length).toBe(ref.length);
  const p = psnr(got, ref);
  console.log(`${what}: PSNR ${p.toFixed(1)} dB against PyTorch`);
  expect(p, what).toBeGreaterThanOrEqual(35);
  return got;
}

async function downloadParameters(page: Page): Promise<string> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download').click()]);
  return readTextChunks(new Uint8Array(fs.readFileSync(await download.path()))).parameters;
}

/** The step the progress row shows once a run is past its first step. */
async function runningAtStep(page: Page, total: number): Promise<number> {
  const progress = page.getByTestId('progress');
  await expect(progress).toContainText(new RegExp(`Step [1-9]\\d*/${total}`), { timeout: 120_000 });
  return Number((await progress.textContent())!.match(new RegExp(`Step (\\d+)/${total}`))![1]);
}

/** The wall-clock span (Date.now(), shared by the pages) of the next run: when the root's data-state
 *  turns to "running" and when it leaves it. */
async function runSpan(page: Page): Promise<() => Promise<{ start: number; end: number }>> {
  await page.evaluate(() => {
    const w = window as unknown as { __span: { start: number; end: number } };
    w.__span = { start: NaN, end: NaN };
    const root = document.querySelector('[data-state]')!;
    new MutationObserver(() => {
      const running = root.getAttribute('data-state') === 'running';
      if (running && Number.isNaN(w.__span.start)) w.__span.start = Date.now();
      if (!running && !Number.isNaN(w.__span.start) && Number.isNaN(w.__span.end)) w.__span.end = Date.now();
    }).observe(root, { attributes: true, attributeFilter: ['data-state'] });
  });
  return () => page.evaluate(() => (window as unknown as { __span: { start: number; end: number } }).__span);
}

/** Counts the runs that start from now on (the root's data-state turning to "running"). */
async function countRuns(page: Page): Promise<() => Promise<number>> {
  await page.evaluate(() => {
    const w = window as unknown as { __runs: number };
    w.__runs = 0;
    const root = document.querySelector('[data-state]')!;
    let last = root.getAttribute('data-state');
    new MutationObserver(() => {
      const now = root.getAttribute('data-state');
      if (now === 'running' && last !== 'running') w.__runs++;
      last = now;
    }).observe(root, { attributes: true, attributeFilter: ['data-state'] });
  });
  return () => page.evaluate(() => (window as unknown as { __runs: number }).__runs);
}

/** Requests for model files from now on (page and worker). */
function countModelRequests(context: BrowserContext): { n: number } {
  const count = { n: 0 };
  context.on('request', (r) => MODEL_FILES.some((f) => r.url().endsWith(`/${f}`)) && count.n++);
  return count;
}

async function formIs(page: Page, run: Pick<Golden, 'prompt' | 'seed' | 'numInferenceSteps' | 'guidanceScale'>) {
  await expect(page.getByTestId('prompt')).toHaveValue(run.prompt);
  await expect(page.getByTestId('seed')).toHaveValue(String(run.seed));
  await expect(page.getByTestId('steps')).toHaveValue(String(run.numInferenceSteps));
  await expect(page.getByTestId('guidance')).toHaveValue(String(run.guidanceScale));
}

// ---- 1b, 1, 2a, 2b, 2e, 11d, 3e: a first visit, then prompts and extremes ----

test('a stalled model file is named in the status line, and Ctrl+Enter pressed meanwhile runs once it loads; empty, spaces-only, 10,000-character and markup prompts and 1 step at CFG 1 and 12 each make PyTorch\'s image, as plain text (1b, 1, 2a, 2b, 2e, 11d, 3e) @wasm-only', async ({ page, context }) => {
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => errors.push(e.message));

  // 1b: transformer/model.onnx held back, as the review did (the other files arrive)
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  await context.route(new RegExp(`/${TRANSFORMER.replace(/[./]/g, '\\$&')}$`), async (route) => {
    await released;
    await route.continue();
  });
  await page.goto('/?backend=wasm');
  const waiting = `Loading model… waiting for ${TRANSFORMER} (0 of ${formatBytes(manifest.files[TRANSFORMER].bytes)})`;
  await expect(page.getByTestId('status')).toHaveText(waiting, { timeout: 60_000 });
  // the file has its row in the download list, at 0 bytes
  await expect(page.getByTestId('load-progress').locator('li', { hasText: TRANSFORMER })).toContainText(`0 B / ${formatBytes(manifest.files[TRANSFORMER].bytes)}`);
  // and the status keeps saying so while it stalls, not the last preparation message
  await page.waitForTimeout(3000);
  await expect(page.getByTestId('status')).toHaveText(waiting);

  // 1: Ctrl+Enter while the model loads waits for it (once: Enter in the negative prompt and a
  // click on Generate add nothing), then runs; 2a: with an empty prompt (an unconditional sample)
  const empty = golden('empty prompt (2a)');
  await page.getByTestId('live-preview').uncheck();
  await fill(page, empty);
  const runs = await countRuns(page);
  await page.getByTestId('prompt').press('Control+Enter');
  await expect(page.getByTestId('status')).toHaveText('Will start when the model is ready');
  await expect(page.getByTestId('generate')).toHaveText('Waiting…');
  await page.getByTestId('negative-prompt').press('Enter');
  await page.getByTestId('generate').click({ force: true });
  await expect(page.getByTestId('status')).toHaveText('Will start when the model is ready');
  release();
  await done(page);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  await context.unrouteAll({ behavior: 'ignoreErrors' });
  await expectPyTorch(page, empty.rgb, 'empty prompt, pressed during the load');
  expect(await runs()).toBe(1);
  await expect(page.getByTestId('history-usage')).toHaveAttribute('data-count', '1');
  const spaces = golden('spaces only (2a)');
  await fill(page, spaces);
  await expect(page.getByTestId('prompt')).toHaveValue(spaces.prompt);
  await generate(page);
  await expectPyTorch(page, spaces.rgb, 'spaces-only prompt');

  // 2b: 10,000 characters: the image, the whole prompt in the PNG, a label a screen reader can read
  const long = golden('10,000 characters (2b)');
  expect(long.prompt.length).toBe(10_000);
  await fill(page, long);
  await expect(page.getByTestId('prompt')).toHaveValue(long.prompt);
  await generate(page);
  await expectPyTorch(page, long.rgb, '10,000-character prompt');
  expect((await downloadParameters(page)).startsWith(`${long.prompt}\nSteps: ${long.numInferenceSteps}, `)).toBe(true);
  const label = (await page.getByTestId('result-canvas').getAttribute('aria-label'))!;
  expect(label.length).toBeLessThan(300);
  expect(label).toMatch(/^Generated image, 64×64, prompt: a purple heart on a black background\. .*… \(10,000 characters in all\), seed 5$/);
  const item = page.getByTestId('history-item').first();
  expect(((await item.getAttribute('aria-label'))!).length).toBeLessThan(300);

  // 2e, 11d: markup in both prompts is text: shown, stored and written as typed, never run
  const markup = golden('markup (2e, 11d)');
  const planted = () => page.evaluate(() => ({
    pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
    elements: document.querySelectorAll('img[src="x"], svg[onload], [onerror], [onload], script:not([src])').length,
  }));
  await fill(page, markup);
  await expect(page.getByTestId('prompt')).toHaveValue(markup.prompt);
  await expect(page.getByTestId('negative-prompt')).toHaveValue(markup.negativePrompt);
  await generate(page);
  await expectPyTorch(page, markup.rgb, 'markup prompt');
  expect(await page.getByTestId('result-canvas').getAttribute('aria-label')).toBe(`Generated image, 64×64, prompt: ${markup.prompt}, seed ${markup.seed}`);
  const parameters = await downloadParameters(page);
  expect(parameters.startsWith(`${markup.prompt}\nNegative prompt: ${markup.negativePrompt}\nSteps: 3, `)).toBe(true);
  // the history: its thumbnail's label and its dialog show the text, as text
  await expect(page.getByTestId('history-item').first()).toHaveAttribute('aria-label', `Open ${markup.prompt}, seed ${markup.seed}`);
  await page.getByTestId('history-item').first().click();
  const details = page.getByTestId('history-details');
  await expect(details.locator('dd').first()).toHaveText(markup.prompt);
  await expect(details.locator('dd').nth(1)).toHaveText(markup.negativePrompt);
  await expect(page.getByTestId('history-canvas')).toHaveAttribute('aria-label', `Image from history: ${markup.prompt}, seed ${markup.seed}`);
  expect(await planted()).toEqual({ pwned: null, elements: 0 });
  await page.getByTestId('history-close').click();

  // 3e: 1 step at CFG 1 and at CFG 12; Home, End, PageUp and PageDown on the sliders
  const cfg1 = golden('1 step, CFG 1 (3e)');
  await fill(page, cfg1);
  await generate(page);
  await expectPyTorch(page, cfg1.rgb, '1 step, CFG 1');
  const cfg12 = golden('1 step, CFG 12 (3e)');
  const guidance = page.getByTestId('guidance');
  await guidance.focus();
  await page.keyboard.press('End');
  await expect(guidance).toHaveValue(String(cfg12.guidanceScale));
  await generate(page);
  await expectPyTorch(page, cfg12.rgb, '1 step, CFG 12');
  expect(await downloadParameters(page)).toContain(`Steps: 1, Sampler: Euler, CFG scale: ${cfg12.guidanceScale}, Seed: ${cfg12.seed}`);
  const steps = page.getByTestId('steps');
  await steps.focus();
  await page.keyboard.press('End');
  await expect(steps).toHaveValue('50');
  await page.keyboard.press('Home');
  await expect(steps).toHaveValue('1');
  await page.keyboard.press('PageUp');
  const up = Number(await steps.inputValue());
  expect(up).toBeGreaterThan(1);
  await page.keyboard.press('PageDown');
  await expect(steps).toHaveValue('1');
  await expect(page.getByTestId('steps-value')).toHaveText('1');

  expect(dialogs).toEqual([]);
  expect(errors).toEqual([]);
  expect(await planted()).toEqual({ pwned: null, elements: 0 });
});

// ---- 6a, 6b, 6c, 6d, 10a: storms, sliders moved mid-run, the keyboard ----

test('tab order and focus on Cancel during a run; sliders moved mid-run leave the run and its PNG alone; Generate/Cancel clicked 30x, Ctrl+Enter/Esc 30x and Esc 20x each end idle with no banner, and the next run is the same pixels (10a, 6c, 6a, 6b, 6d) @wasm-only', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?backend=wasm');
  await waitReady(page);
  await page.getByTestId('live-preview').uncheck();
  await fill(page, BASE);

  // 10a: Tab from the backend select reaches the form's controls in reading order; disabled Cancel
  // and Download are skipped
  await page.getByTestId('backend-select').focus();
  const order: string[] = [];
  for (let i = 0; i < 60 && order.at(-1) !== 'generate'; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName ?? ''));
  }
  const expected = ['prompt', 'negative-prompt', 'steps', 'guidance', 'seed', 'dice', 'random-seed', 'generate'];
  expect(order.filter((id) => expected.includes(id))).toEqual(expected);
  expect(order).not.toContain('cancel');
  expect(order).not.toContain('download');

  // the reference run, started with Enter on the focused Generate
  await expect(page.getByTestId('generate')).toBeFocused();
  await page.keyboard.press('Enter');
  await done(page);
  const reference = await expectPyTorch(page, BASE.rgb, 'reference run (3 steps, CFG 3)');

  // 6c (and 10a): a 50-step run started from the keyboard; focus moves to Cancel; the steps and
  // guidance sliders are moved while it runs
  const long = golden('50 steps, CFG 3 (6c, 9c)');
  await setSlider(page, 'steps', long.numInferenceSteps, 1, 1);
  await page.getByTestId('generate').focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('cancel')).toBeFocused();
  await runningAtStep(page, 50);
  await setSlider(page, 'steps', 5, 1, 1);
  await setSlider(page, 'guidance', 1, 1, 0.5);
  await expect(appState(page)).toHaveAttribute('data-state', 'running'); // still the same run
  await done(page);
  await expectPyTorch(page, long.rgb, '50 steps at CFG 3, sliders moved to 5 and 1 mid-run');
  expect(await downloadParameters(page)).toContain(`Steps: 50, Sampler: Euler, CFG scale: ${long.guidanceScale}, Seed: ${long.seed}`);
  await expect(page.getByTestId('steps')).toHaveValue('5');
  await expect(page.getByTestId('guidance')).toHaveValue('1');

  // 6d: Esc x20 in the middle of a 50-step run: cancelled within a step, focus back on Generate
  await setSlider(page, 'steps', 50, 1, 1);
  await setSlider(page, 'guidance', BASE.guidanceScale, 1, 0.5);
  await page.getByTestId('generate').focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('cancel')).toBeFocused();
  const at = await runningAtStep(page, 50);
  for (let i = 0; i < 20; i++) await page.keyboard.press('Escape');
  await expect(page.getByTestId('status')).toHaveText(/^Cancelled at step \d+\/50/, { timeout: 60_000 });
  expect(Number((await page.getByTestId('status').textContent())!.match(/step (\d+)\/50/)![1])).toBeGreaterThanOrEqual(at);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  await expect(page.getByTestId('generate')).toBeFocused();
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await setSlider(page, 'steps', BASE.numInferenceSteps, 1, 1);
  await generate(page);
  expect(await canvasRGB(page)).toEqual(reference);

  // 6a: Generate and Cancel clicked alternately 30x, 30 ms apart, with real mouse clicks on 50-step runs
  await setSlider(page, 'steps', 50, 1, 1);
  const centre = async (id: string) => {
    const box = (await page.getByTestId(id).boundingBox())!;
    return [box.x + box.width / 2, box.y + box.height / 2] as const;
  };
  const [gen, cancel] = [await centre('generate'), await centre('cancel')];
  let runs = await countRuns(page);
  for (let i = 0; i < 30; i++) {
    await page.mouse.click(...gen);
    await page.waitForTimeout(30);
    await page.mouse.click(...cancel);
    await page.waitForTimeout(30);
  }
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 120_000 });
  await expect(page.getByTestId('status')).toHaveText(/^(Cancelled at step \d+\/50|Done in )/);
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  const clicked = await runs();
  console.log(`6a: ${clicked} of 30 clicks on Generate started a run`);
  expect(clicked).toBeGreaterThanOrEqual(2); // the storm did start and cancel runs

  // 6b: Ctrl+Enter and Esc x30 from the prompt
  await page.getByTestId('prompt').focus();
  runs = await countRuns(page);
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Control+Enter');
    await page.keyboard.press('Escape');
  }
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 120_000 });
  await expect(page.getByTestId('status')).toHaveText(/^(Cancelled at step \d+\/50|Done in )/);
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await expect(page.getByTestId('prompt')).toHaveValue(BASE.prompt);
  const pressed = await runs();
  console.log(`6b: ${pressed} of 30 Ctrl+Enter started a run`);
  expect(pressed).toBeGreaterThanOrEqual(2);

  // and the studio is unharmed: the same settings make the same pixels
  await setSlider(page, 'steps', BASE.numInferenceSteps, 1, 1);
  await generate(page);
  expect(await canvasRGB(page)).toEqual(reference);
  expect(errors).toEqual([]);
});

// ---- 9c, 9b, 5b: a reload mid-run, two pages at once, storage deleted under an open page ----

test('a reload during a 50-step run keeps the form and a usable studio; two pages generate at once; storage deleted under an open page: the model runs from memory (9c, 9b, 5b) @wasm-only', async ({ page, context }) => {
  await page.goto('/?backend=wasm');
  await waitReady(page);
  await page.getByTestId('live-preview').uncheck();
  await fill(page, BASE);
  await generate(page);
  const reference = await expectPyTorch(page, BASE.rgb, 'reference run (3 steps, CFG 3)');
  const models = countModelRequests(context);

  // 9c: reload in the middle of a 50-step run
  const long = golden('50 steps, CFG 3 (6c, 9c)');
  await setSlider(page, 'steps', long.numInferenceSteps, 1, 1);
  await page.getByTestId('generate').click();
  await runningAtStep(page, 50);
  await page.reload();
  await waitReady(page);
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await formIs(page, long);
  expect(models.n).toBe(0); // the model came from storage
  await setSlider(page, 'steps', BASE.numInferenceSteps, 1, 1);
  await generate(page);
  expect(await canvasRGB(page)).toEqual(reference);

  // 9b: a second page (model cached, form restored) and both generate 50 steps at the same time
  const other = await context.newPage();
  await other.goto('/?backend=wasm');
  await waitReady(other);
  await formIs(other, BASE);
  for (const p of [page, other]) await setSlider(p, 'steps', long.numInferenceSteps, 1, 1);
  const spans = await Promise.all([page, other].map(runSpan));
  await Promise.all([page.getByTestId('generate').click(), other.getByTestId('generate').click()]);
  await Promise.all([runningAtStep(page, 50), runningAtStep(other, 50)]);
  await Promise.all([done(page), done(other)]);
  // both ran at once (each page has its own engine): each run started before the other ended
  const [a, b] = await Promise.all(spans.map((read) => read()));
  expect(a.start).toBeLessThan(b.end);
  expect(b.start).toBeLessThan(a.end);
  const both = [await expectPyTorch(page, long.rgb, 'page 1 of 2, 50 steps'), await expectPyTorch(other, long.rgb, 'page 2 of 2, 50 steps')];
  expect(both[1]).toEqual(both[0]);
  await other.close();
  expect(models.n).toBe(0);

  // 5b: every cache deleted while the page is open: the model in memory keeps running
  await setSlider(page, 'steps', BASE.numInferenceSteps, 1, 1);
  const deleted = await page.evaluate(async () => {
    const names = await caches.keys();
    await Promise.all(names.map((n) => caches.delete(n)));
    return names.length;
  });
  expect(deleted).toBeGreaterThan(0);
  await generate(page);
  expect(await canvasRGB(page)).toEqual(reference);
  // and the next visit downloads every file again
  await page.reload();
  await waitReady(page);
  expect(models.n).toBe(MODEL_FILES.length);
  await generate(page);
  expect(await canvasRGB(page)).toEqual(reference);
});

// ---- 4b, 4e'', 4f, 9d: a model file that is an HTML page, a manifest that names an absolute URL,
// a slow download left by navigating away and by a reload ----

const WORKER_SCRIPT = /\/assets\/worker-[^/]+\.js$/;
/** Bytes of one transformer response the worker reads before its body stalls (a very slow server). */
const STALL_AFTER = 4 * 2 ** 20;
/** At the top of the served worker bundle: every transformer/model.onnx body stalls after STALL_AFTER bytes. */
const STALL = `(() => {
  const fetch0 = self.fetch.bind(self);
  self.fetch = async (input, init) => {
    const res = await fetch0(input, init);
    if (!(typeof input === 'string' ? input : input.url).endsWith('/${TRANSFORMER}') || !res.body || res.status >= 300) return res;
    const reader = res.body.getReader();
    let n = 0;
    const body = new ReadableStream({
      async pull(c) {
        if (n >= ${STALL_AFTER}) return new Promise(() => {});
        const { done, value } = await reader.read();
        if (done) return c.close();
        n += value.byteLength;
        c.enqueue(value);
      },
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
})();`;

/** Bytes of transformer/model.onnx kept in storage as parts of an unfinished download. */
const storedParts = (page: Page) =>
  page.evaluate(async (file) => {
    let bytes = 0;
    for (const name of await caches.keys()) {
      const c = await caches.open(name);
      for (const key of await c.keys()) {
        if (!key.url.includes(`/${file}?webdit-partial`)) continue;
        const state = (await (await c.match(key))!.json()) as { parts: number[] };
        bytes = Math.max(bytes, state.parts.reduce((a, b) => a + b, 0));
      }
    }
    return bytes;
  }, TRANSFORMER);

test('an HTML page served with status 200 as a model file, then a manifest naming an absolute URL: each refused by name, nothing stored or sent away; a stalled download left by navigating away, then by a reload, continues from its stored parts and the model runs (4b, 4e\'\', 9d, 4f) @wasm-only', async ({ page, context }, info) => {
  const origin = new URL(info.project.use.baseURL!).origin;
  const foreign: string[] = [];
  context.on('request', (r) => {
    const u = new URL(r.url());
    if (['http:', 'https:'].includes(u.protocol) && u.origin !== origin) foreign.push(r.url());
    if (r.url().includes('evil.example')) foreign.push(r.url());
  });
  // the transformer's body stalls on the first two visits (the worker is stubbed when it is served)
  let stalls = 2;
  await context.route(WORKER_SCRIPT, async (route) => {
    const res = await route.fetch();
    await route.fulfill({ response: res, body: stalls-- > 0 ? `${STALL}\n${await res.text()}` : await res.text() });
  });
  const ranges: (string | null)[] = [];
  context.on('request', (r) => r.url().endsWith(`/${TRANSFORMER}`) && ranges.push(r.headers().range ?? null));
  const html = '<!doctype html><html><head><title>Not found</title></head><body>Single-page app fallback</body></html>';
  let fault: 'html' | 'manifest' | null = 'html';
  await context.route(new RegExp(`/${TRANSFORMER.replace(/[./]/g, '\\$&')}$`), (route) =>
    fault === 'html' ? route.fulfill({ status: 200, contentType: 'text/html', body: html }) : route.continue(),
  );
  await context.route(/\/webdit-tiny\/manifest\.json$/, async (route) => {
    const res = await route.fetch();
    const m = await res.json();
    if (fault === 'manifest') {
      // the transformer graph named as a file on another host
      m.files['http://evil.example/x.onnx'] = m.files[TRANSFORMER];
      delete m.files[TRANSFORMER];
    }
    await route.fulfill({ response: res, json: m });
  });
  await page.goto('/?backend=wasm');
  await page.getByTestId('prompt').fill(BASE.prompt);

  // 4b: the size check names the file; the page is not stored
  const banner = page.getByTestId('error-banner');
  await expect(banner).toHaveAttribute('data-error', 'ModelError', { timeout: 180_000 });
  await expect(page.getByTestId('error-message')).toHaveText(
    `Model file ${TRANSFORMER} has ${Buffer.byteLength(html)} bytes but its manifest says ${manifest.files[TRANSFORMER].bytes}: the download was cut short or the file was replaced.`,
  );
  await expect(page.getByTestId('fix-retry-load')).toBeVisible();
  await expect(banner).not.toContainText(/\breload\b/i);
  const stored = () => page.evaluate(async () => {
    const urls: string[] = [];
    for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
    return urls;
  });
  expect((await stored()).filter((u) => u.includes('/transformer/model.onnx'))).toEqual([]);

  // 4e'': Retry reads a manifest that names http://evil.example/x.onnx as a file
  fault = 'manifest';
  await page.getByTestId('fix-retry-load').click();
  await expect(page.getByTestId('error-message')).toHaveText('Invalid model manifest: file "http://evil.example/x.onnx" must be a relative path inside the model folder.', { timeout: 60_000 });
  await expect(banner).toHaveAttribute('data-error', 'ModelError');
  await expect(page.getByTestId('fix-retry-load')).toBeVisible();
  await expect(banner).not.toContainText(/\breload\b/i);
  expect(foreign).toEqual([]);
  await expect(page.getByTestId('prompt')).toHaveValue(BASE.prompt);

  // Retry with the folder as it should be, from a very slow server: the body stalls after 4 MiB,
  // and the status line says how far the file got
  fault = null;
  await page.getByTestId('fix-retry-load').click();
  const size = formatBytes(manifest.files[TRANSFORMER].bytes);
  await expect(page.getByTestId('status')).toHaveText(new RegExp(`^Loading model… downloading ${TRANSFORMER}, \\d+% of ${size}$`), { timeout: 60_000 });
  await expect.poll(() => storedParts(page), { timeout: 60_000 }).toBeGreaterThanOrEqual(2 ** 20);
  await page.waitForTimeout(500);
  const kept1 = await storedParts(page);

  // 9d: away to about:blank and back: the download continues from the stored parts (and stalls again)
  await page.goto('about:blank');
  await page.goto('/?backend=wasm');
  await expect(page.getByTestId('status')).toHaveText(new RegExp(`^Loading model… downloading ${TRANSFORMER}, \\d+% of ${size}$`), { timeout: 60_000 });
  await expect.poll(() => storedParts(page), { timeout: 60_000 }).toBeGreaterThanOrEqual(kept1 + 2 ** 20);
  await page.waitForTimeout(500);
  const kept2 = await storedParts(page);

  // 4f: a reload, the server fast again: the rest, then the model runs
  await page.reload();
  await waitReady(page);
  expect(ranges).toEqual([null /* the HTML page */, null, `bytes=${kept1}-`, `bytes=${kept2}-`]);
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
  await expect(page.getByTestId('prompt')).toHaveValue(BASE.prompt);
  await page.getByTestId('live-preview').uncheck();
  await fill(page, BASE);
  await generate(page);
  await expectPyTorch(page, BASE.rgb, 'after 4b, 4e\'\', 9d and 4f');
  expect(foreign).toEqual([]);
});

// ---- 8b, 8c: the backends (SwiftShader's WebGPU) ----

test('auto mode on a software GPU picks WASM and says why on the page; auto -> WASM -> WebGPU -> WASM in one page, each run PyTorch\'s image (8b, 8c) @webgpu-only', async ({ page }) => {
  await page.goto('/');
  await waitReady(page);
  const badge = page.getByTestId('backend-badge');
  await expect(badge).toHaveAttribute('data-backend', 'wasm');
  // the reason is on the page, not only in a tooltip
  const reason = page.getByTestId('backend-reason');
  await expect(reason).toBeVisible();
  await expect(reason).toHaveText(/^WebGPU not used: only a software WebGPU adapter .*is available; WASM is faster$/);
  await page.getByTestId('live-preview').uncheck();
  await fill(page, BASE);
  await generate(page);
  const wasm = await expectPyTorch(page, BASE.rgb, 'auto (WASM)');

  const select = page.getByTestId('backend-select');
  for (const backend of ['wasm', 'webgpu', 'wasm'] as const) {
    await select.selectOption(backend);
    await waitReady(page);
    await expect(badge).toHaveAttribute('data-backend', backend);
    expect(new URL(page.url()).searchParams.get('backend')).toBe(backend);
    await expect(reason).toHaveCount(0); // chosen, not fallen back to
    await formIs(page, BASE);
    await generate(page);
    const rgb = await expectPyTorch(page, BASE.rgb, backend === 'webgpu' ? 'WebGPU (SwiftShader)' : 'WASM');
    if (backend === 'wasm') expect(rgb).toEqual(wasm);
  }
});
