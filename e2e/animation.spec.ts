/**
 * The run tools in real Chromium, on WebGPU (SwiftShader) and on WASM: a run's trajectory is kept
 * as a filmstrip that scrubs through distinct x0 estimates and ends on the final image, and saves
 * as PNG or zip; the run report charts one timing per step and names the backend and device; a
 * seed animation's end frames are the single runs with seeds A and B, a prompt animation's frames
 * are PyTorch's (training/animation_fixtures.py), and both save as WebM and animated WebP.
 */
import { expect, test, type Locator, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { loadFixtures, psnr, readManifest, type FixtureRun, type FixtureTensor } from '../src/engine/testing/fixtures';
import { setSlider, appState } from './ui';

const fixtures = loadFixtures();
const manifest = readManifest();

interface AnimationCase {
  kind: 'seed' | 'prompt';
  prompt: string;
  to: number | string;
  negativePrompt: string;
  seed: number;
  frames: number;
  numInferenceSteps: number;
  guidanceScale: number;
  rgb: FixtureTensor;
}
const animations: AnimationCase[] = JSON.parse(fs.readFileSync(path.resolve('src/engine/__fixtures__', `${manifest.id}-animation.json`), 'utf8')).animations;
// the cheap cases (3 frames, 3 steps) that SwiftShader can afford
const seedCase = animations.find((c) => c.kind === 'seed' && c.frames === 3 && c.numInferenceSteps === 3)!;
const promptCase = animations.find((c) => c.kind === 'prompt' && c.frames === 3 && c.numInferenceSteps === 3)!;

async function setParams(page: Page, run: Pick<FixtureRun, 'prompt' | 'negativePrompt' | 'numInferenceSteps' | 'guidanceScale' | 'seed'>) {
  await page.getByTestId('prompt').fill(run.prompt);
  await page.getByTestId('negative-prompt').fill(run.negativePrompt);
  await setSlider(page, 'steps', run.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', run.guidanceScale, 1, 0.5);
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  await page.getByTestId('seed').fill(String(run.seed));
}

/** Every RGB byte of a canvas. */
async function rgbOf(canvas: Locator): Promise<number[]> {
  return canvas.evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const out: number[] = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);
    return out;
  });
}

function backendOf(info: TestInfo): 'webgpu' | 'wasm' {
  return info.project.metadata.backend as 'webgpu' | 'wasm';
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

async function generate(page: Page, seed: number) {
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('timings')).toHaveText(new RegExp(`seed ${seed}$`), { timeout: 300_000 });
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
}

async function download(page: Page, click: () => Promise<void>): Promise<{ name: string; bytes: Buffer }> {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), click()]);
  return { name: d.suggestedFilename(), bytes: fs.readFileSync((await d.path())!) };
}

/** Entries of a zip, from its end-of-central-directory record. */
const zipEntries = (zip: Buffer) => zip.readUInt16LE(zip.length - 22 + 10);

async function makeAnimation(page: Page, c: AnimationCase) {
  await setParams(page, c);
  const panel = page.getByTestId('animation-panel');
  await panel.scrollIntoViewIfNeeded();
  if (c.kind === 'seed') {
    await page.getByTestId('animation-kind-seed').check();
    await page.getByTestId('animation-to-seed').fill(String(c.to));
  } else {
    await page.getByTestId('animation-kind-prompt').check();
    await page.getByTestId('animation-to-prompt').fill(String(c.to));
  }
  await setSlider(page, 'animation-frames', c.frames, 2, 1);
  await page.getByTestId('animation-start').click();
  await expect(panel).toHaveAttribute('data-status', 'running');
  await expect(page.getByTestId('animation-player')).toHaveAttribute('data-frames', String(c.frames), { timeout: 300_000 });
  await expect(panel).toHaveAttribute('data-status', 'idle');
  await expect(page.getByTestId('animation-error')).toHaveCount(0);
  const frames: number[][] = [];
  for (let k = 0; k < c.frames; k++) frames.push(await rgbOf(page.locator(`[data-testid="animation-frame"][data-index="${k}"]`)));
  return frames;
}

test('the filmstrip scrubs through distinct estimates to the final image and saves them; the run report shows every step and the backend', async ({ page }, info) => {
  const backend = backendOf(info);
  const errors = watch(page);
  await openStudio(page, backend);
  // every step recorded: 3 steps on SwiftShader, 6 on WASM
  const run = { ...fixtures.runs[2], numInferenceSteps: backend === 'webgpu' ? 3 : 6 };
  await setParams(page, run);
  await page.getByTestId('record-trajectory').check();
  await generate(page, run.seed);

  const N = run.numInferenceSteps;
  const film = page.getByTestId('filmstrip');
  await expect(film).toHaveAttribute('data-frames', String(N)); // N - 1 estimates + the final image
  await expect(page.getByTestId('filmstrip-thumb')).toHaveCount(N);
  const slider = page.getByTestId('filmstrip-slider');
  await slider.focus();
  await page.keyboard.press('Home');
  const frames: number[][] = [];
  for (let i = 0; i < N; i++) {
    if (i > 0) await page.keyboard.press('ArrowRight');
    await expect(slider).toHaveValue(String(i));
    await expect(page.getByTestId('filmstrip-label')).toHaveAttribute('data-step', String(i + 1));
    await expect(page.getByTestId('filmstrip-canvas')).toHaveAccessibleName(new RegExp(`^Step ${i + 1} of ${N}`));
    frames.push(await rgbOf(page.getByTestId('filmstrip-canvas')));
  }
  await expect(page.getByTestId('filmstrip-label')).toHaveAttribute('data-final', 'true');
  // each estimate differs from the next, and the last frame is exactly the final image
  for (let i = 1; i < N; i++) expect(frames[i], `frame ${i + 1} vs ${i}`).not.toEqual(frames[i - 1]);
  const final = await rgbOf(page.getByTestId('result-canvas'));
  expect(frames[N - 1]).toEqual(final);
  console.log(`[${backend}] filmstrip: ${N} frames; PSNR of consecutive frames ${frames.slice(1).map((f, i) => psnr(f, frames[i]).toFixed(1)).join(', ')} dB`);
  // the keyboard goes back too
  await page.keyboard.press('ArrowLeft');
  await expect(page.getByTestId('filmstrip-label')).toHaveAttribute('data-step', String(N - 1));
  expect(await rgbOf(page.getByTestId('filmstrip-canvas'))).toEqual(frames[N - 2]);

  // save one frame (a PNG) and all of them (a zip of N PNGs)
  const png = await download(page, () => page.getByTestId('filmstrip-save-frame').click());
  expect(png.name).toBe(`webdit-${run.seed}-step-${N - 1}-of-${N}.png`);
  expect(png.bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  const zip = await download(page, () => page.getByTestId('filmstrip-save-zip').click());
  expect(zip.name).toBe(`webdit-${run.seed}-trajectory-${N}-frames.zip`);
  expect(zip.bytes.readUInt32LE(0)).toBe(0x04034b50);
  expect(zipEntries(zip.bytes)).toBe(N);

  // the run report: one bar per step, each a positive time, all marked as preview steps but the last
  const report = page.getByTestId('timing-panel');
  await expect(report).toHaveAttribute('data-steps', String(N));
  const bars = page.getByTestId('timing-bar');
  await expect(bars).toHaveCount(N);
  const ms = await bars.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-ms'))));
  for (const v of ms) expect(v).toBeGreaterThan(0);
  expect(await bars.evaluateAll((els) => els.map((e) => e.getAttribute('data-preview')))).toEqual([...Array(N - 1).fill('true'), 'false']);
  await expect(page.getByTestId('timing-encode')).toHaveText(/\d/);
  await expect(page.getByTestId('timing-decode')).toHaveText(/\d/);
  const device = page.getByTestId('device-report');
  await expect(device).toHaveAttribute('data-backend', backend);
  await expect(page.getByTestId('device-backend')).toContainText(backend === 'webgpu' ? 'WebGPU' : 'WASM');
  await expect(page.getByTestId('device-wasm')).toContainText(/\d+ threads?.*SIMD yes, cross-origin isolated (yes|no)/);
  if (backend === 'webgpu') {
    // SwiftShader: a named adapter, its buffer limits, and no shader-f16
    await expect(page.getByTestId('device-adapter')).toContainText(/\w/);
    await expect(page.getByTestId('device-adapter')).not.toContainText('not reported');
    await expect(page.getByTestId('device-max-buffer')).toHaveText(/^\d+(\.\d)? (MiB|GiB)$/);
    await expect(page.getByTestId('device-max-binding')).toHaveText(/^\d+(\.\d)? (MiB|GiB)$/);
    await expect(page.getByTestId('device-f16')).toHaveText(/^(yes|no)$/);
  } else {
    // Chromium started with --disable-webgpu: the report says there is no adapter
    await expect(page.getByTestId('device-adapter')).toContainText(/no WebGPU/);
  }
  console.log(`[${backend}] run report: ${ms.map((v) => v.toFixed(0)).join(', ')} ms per step; ${(await device.innerText()).replace(/\s+/g, ' ')}`);
  expect(errors).toEqual([]);
});

test('a seed animation of 3 frames: frames 0 and 2 are the single runs with seeds A and B; it plays and saves as WebM and animated WebP', async ({ page }, info) => {
  const backend = backendOf(info);
  const errors = watch(page);
  await openStudio(page, backend);
  const c = seedCase;
  const frames = await makeAnimation(page, c);
  const ref = Buffer.from(c.rgb.b64, 'base64');
  const px = ref.length / c.frames;
  frames.forEach((f, k) => console.log(`[${backend}] seed animation frame ${k} vs PyTorch: PSNR ${psnr(f, ref.subarray(k * px, (k + 1) * px)).toFixed(1)} dB`));
  for (let k = 0; k < c.frames; k++) expect(psnr(frames[k], ref.subarray(k * px, (k + 1) * px)), `frame ${k}`).toBeGreaterThanOrEqual(40);
  // the middle frame is neither end
  expect(frames[1]).not.toEqual(frames[0]);
  expect(frames[1]).not.toEqual(frames[2]);

  // plays: the shown frame moves on by itself; pause holds it
  const canvas = page.getByTestId('animation-canvas');
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 3; i++) {
    seen.add((await canvas.getAttribute('data-frame'))!);
    await page.waitForTimeout(60);
  }
  expect(seen.size).toBe(3);
  await page.getByTestId('animation-play').click();
  await expect(page.getByTestId('animation-play')).toHaveAttribute('aria-pressed', 'false');
  const held = await canvas.getAttribute('data-frame');
  await page.waitForTimeout(600);
  await expect(canvas).toHaveAttribute('data-frame', held!);
  expect(await rgbOf(canvas)).toEqual(frames[Number(held)]);
  await setSlider(page, 'animation-fps', 12, 1, 1);
  await expect(page.getByTestId('animation-fps-value')).toHaveText('12');

  // saved as WebM (EBML header) and as an animated WebP the browser decodes back to 3 frames
  const webm = await download(page, () => page.getByTestId('animation-save-webm').click());
  expect(webm.name).toBe(`webdit-${c.seed}-to-${c.to}-3-frames.webm`);
  expect(webm.bytes.length).toBeGreaterThan(100);
  expect(webm.bytes.subarray(0, 4).toString('hex')).toBe('1a45dfa3');
  const webp = await download(page, () => page.getByTestId('animation-save-webp').click());
  expect(webp.name).toBe(`webdit-${c.seed}-to-${c.to}-3-frames.webp`);
  expect(webp.bytes.subarray(0, 4).toString('latin1')).toBe('RIFF');
  expect(webp.bytes.subarray(8, 16).toString('latin1')).toBe('WEBPVP8X');
  const decoded = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const dec = new (globalThis as unknown as { ImageDecoder: new (o: object) => { tracks: { ready: Promise<void>; selectedTrack: { frameCount: number; animated: boolean } }; decode(o: object): Promise<{ image: { codedWidth: number; close(): void } }> } }).ImageDecoder({ data: bytes, type: 'image/webp' });
    await dec.tracks.ready;
    const { image } = await dec.decode({ frameIndex: 2 });
    const width = image.codedWidth;
    image.close();
    return { frames: dec.tracks.selectedTrack.frameCount, animated: dec.tracks.selectedTrack.animated, width };
  }, webp.bytes.toString('base64'));
  expect(decoded).toEqual({ frames: 3, animated: true, width: 256 });

  // frame 0 = the single run with seed A, frame 2 = the single run with seed B
  await generate(page, c.seed);
  const a = await rgbOf(page.getByTestId('result-canvas'));
  await page.getByTestId('seed').fill(String(c.to));
  await generate(page, Number(c.to));
  const b = await rgbOf(page.getByTestId('result-canvas'));
  console.log(`[${backend}] seed animation ends vs single runs: PSNR ${psnr(frames[0], a).toFixed(1)} / ${psnr(frames[2], b).toFixed(1)} dB`);
  expect(frames[0]).toEqual(a);
  expect(frames[2]).toEqual(b);
  expect(errors).toEqual([]);
});

test("a prompt animation's frames are PyTorch's, and a bad second seed is refused with what to do", async ({ page }, info) => {
  const backend = backendOf(info);
  const errors = watch(page);
  await openStudio(page, backend);
  const c = promptCase;
  const frames = await makeAnimation(page, c);
  const ref = Buffer.from(c.rgb.b64, 'base64');
  const px = ref.length / c.frames;
  for (let k = 0; k < c.frames; k++) {
    const p = psnr(frames[k], ref.subarray(k * px, (k + 1) * px));
    console.log(`[${backend}] prompt animation frame ${k} vs PyTorch: PSNR ${p.toFixed(1)} dB`);
    expect(p, `frame ${k}`).toBeGreaterThanOrEqual(40);
  }
  const zip = await download(page, () => page.getByTestId('animation-save-zip').click());
  expect(zipEntries(zip.bytes)).toBe(c.frames);

  // seed B = seed A: refused in the panel, nothing is sent
  await page.getByTestId('animation-kind-seed').check();
  await page.getByTestId('animation-to-seed').fill(String(c.seed));
  await page.getByTestId('animation-start').click();
  await expect(page.getByTestId('animation-error')).toContainText(`Seed B is seed A (${c.seed})`);
  await expect(page.getByTestId('animation-panel')).toHaveAttribute('data-status', 'idle');
  await page.getByTestId('animation-to-seed').fill('1e20');
  await page.getByTestId('animation-start').click();
  await expect(page.getByTestId('animation-error')).toContainText('Seed B: Seed "1e20" is not a whole number');
  expect(errors).toEqual([]);
});
