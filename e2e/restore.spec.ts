/**
 * Restore from a PNG and input hygiene, in real Chromium on WebGPU and on WASM: a downloaded PNG
 * dropped back on the studio fills the form and the same settings make the same pixels; a hostile
 * prompt (a forged "Negative prompt:" line, a forged settings line, a control character) goes
 * through the PNG exactly as scripts/a1111_infotext.py's golden file says and comes back as typed;
 * an AUTOMATIC1111 PNG (pasted) fills the form, out-of-range values are refused by name, and
 * unreadable metadata says what could not be read and changes nothing; the seed field takes
 * exactly what it shows; a plain picture dropped on the image is still the init image.
 */
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { addTextChunk, readTextChunks } from '../src/png';
import { setSlider, appState } from './ui';

interface Golden {
  a1111: { name: string; text: string; a1111: Record<string, string> }[];
  hostile: {
    name: string;
    input: { prompt: string; negativePrompt: string; numInferenceSteps: number; guidanceScale: number; seed: number };
    text: string;
    webdit: { prompt: string; negativePrompt: string };
  }[];
}
const golden = JSON.parse(fs.readFileSync(path.resolve('src/png-infotext.golden.json'), 'utf8')) as Golden;
/** The hostile prompt the studio types: its PNG text must be exactly this case's. */
const HOSTILE = golden.hostile.find((c) => c.name === 'e2e')!;
/** A1111 texts that fit the embedded model, and one that does not. */
const A1111_TINY = golden.a1111.find((c) => c.name === 'tiny')!;
const A1111_BIG = golden.a1111.find((c) => c.name === 'out of range for the tiny model')!;

// control characters: C0 (but \t and \n), DEL, C1
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

async function openStudio(page: Page, info: TestInfo): Promise<string[]> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const backend = info.project.metadata.backend as 'webgpu' | 'wasm';
  await page.goto(`/?backend=${backend}`);
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
  return errors;
}

interface Form {
  prompt: string;
  negative: string;
  steps: string;
  guidance: string;
  seed: string;
}

async function readForm(page: Page): Promise<Form> {
  return {
    prompt: await page.getByTestId('prompt').inputValue(),
    negative: await page.getByTestId('negative-prompt').inputValue(),
    steps: (await page.getByTestId('steps-value').textContent()) ?? '',
    guidance: (await page.getByTestId('guidance-value').textContent()) ?? '',
    seed: await page.getByTestId('seed').inputValue(),
  };
}

async function canvasRGBA(page: Page): Promise<number[]> {
  return page.getByTestId('result-canvas').evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
}

/** Generate and wait for the image with this seed (callers make sure the status does not already say "Done"). */
async function generate(page: Page, seed: number) {
  await expect(page.getByTestId('status')).not.toHaveText(/^Done in /);
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('status')).toHaveText(/^Done in /, { timeout: 300_000 });
  await expect(page.getByTestId('timings')).toHaveText(new RegExp(`seed ${seed}$`));
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
}

/** A 64x64 PNG made here (pngjs), with a `parameters` text when given. */
function makePng(parameters?: string): Uint8Array {
  const png = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([(i / 4) % 64 * 4, 40, 200, 255], i);
  const bytes = new Uint8Array(PNG.sync.write(png));
  return parameters === undefined ? bytes : addTextChunk(bytes, 'parameters', parameters);
}

type Transfer = { b64: string; name: string; type: string };
const transfer = (bytes: Uint8Array, name: string, type = 'image/png'): Transfer => ({ b64: Buffer.from(bytes).toString('base64'), name, type });

/** Drops a file on `selector` the way a drag from the desktop ends: a drop event with a DataTransfer holding it. */
async function dropFile(page: Page, selector: string, file: Transfer) {
  const dataTransfer = await page.evaluateHandle(({ b64, name, type }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type }));
    return dt;
  }, file);
  await page.dispatchEvent(selector, 'dragover', { dataTransfer });
  await page.dispatchEvent(selector, 'drop', { dataTransfer });
}

/** Pastes a file into the focused element: a paste ClipboardEvent whose clipboardData holds it. */
async function pasteFile(page: Page, file: Transfer) {
  await page.evaluate(({ b64, name, type }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type }));
    const target = document.activeElement ?? document.body;
    target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, file);
}

test('a downloaded PNG with a hostile prompt, dropped on the image after a reload, restores every setting and makes the same pixels', async ({ page }, info) => {
  const errors = await openStudio(page, info);
  const { input } = HOSTILE;

  // the hostile prompt typed as it is: the BEL is gone at once, the forged lines stay as text
  await page.getByTestId('prompt').fill(input.prompt);
  await expect(page.getByTestId('prompt')).toHaveValue(HOSTILE.webdit.prompt);
  expect(HOSTILE.webdit.prompt).not.toMatch(CONTROL);
  await page.getByTestId('negative-prompt').fill(input.negativePrompt);
  await setSlider(page, 'steps', input.numInferenceSteps, 1, 1);
  await setSlider(page, 'guidance', input.guidanceScale, 1, 0.5);
  await page.getByTestId('seed').fill(String(input.seed));
  await generate(page, input.seed);
  const first = await canvasRGBA(page);
  const label = await page.getByTestId('result-canvas').getAttribute('aria-label');
  expect(label).toContain(HOSTILE.webdit.prompt);
  expect(label).not.toMatch(CONTROL);

  // the PNG's text is exactly what the spec (Python) writes for this prompt: A1111 is not forged
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download').click()]);
  const bytes = new Uint8Array(fs.readFileSync(await download.path()));
  expect(readTextChunks(bytes).parameters).toBe(HOSTILE.text);
  const name = download.suggestedFilename();
  expect(name).toBe(`webdit-${input.seed}.png`);

  // a reload keeps the form (saved): change every field so the restore has something to do
  await page.reload();
  await expect(appState(page)).toHaveAttribute('data-state', 'ready', { timeout: 300_000 });
  await page.getByTestId('prompt').fill('something else entirely');
  await page.getByTestId('negative-prompt').fill('other');
  await setSlider(page, 'steps', 5, 1, 1);
  await setSlider(page, 'guidance', 1, 1, 0.5);
  await page.getByTestId('seed').fill('1');
  expect(await readForm(page)).toEqual({ prompt: 'something else entirely', negative: 'other', steps: '5', guidance: '1', seed: '1' });

  // dropped on the image: a PNG with settings asks first
  await dropFile(page, '[data-testid="result-canvas"]', transfer(bytes, name));
  const panel = page.getByTestId('restore-panel');
  await expect(panel).toHaveAttribute('data-kind', 'settings');
  await expect(page.getByTestId('restore-apply')).toBeFocused();
  await expect(page.getByTestId('restore-as-init')).toBeVisible();
  await expect(page.getByTestId('init-image')).toHaveCount(0);
  await page.getByTestId('restore-apply').click();
  await expect(page.getByTestId('restore-message')).toHaveText(`Restored from ${name}: prompt, negative prompt, steps 3, CFG 3, size 64×64, seed 5.`);
  await expect(page.getByTestId('restore-notes')).toHaveCount(0);
  expect(await readForm(page)).toEqual({
    prompt: HOSTILE.webdit.prompt,
    negative: input.negativePrompt,
    steps: String(input.numInferenceSteps),
    guidance: String(input.guidanceScale),
    seed: String(input.seed),
  });

  // the same settings, a fresh engine: the same pixels, exactly
  await generate(page, input.seed);
  const again = await canvasRGBA(page);
  expect(again.length).toBe(64 * 64 * 4);
  expect(again).toEqual(first);
  expect(errors).toEqual([]);
});

test('an AUTOMATIC1111 PNG pasted fills the form; out-of-range values are refused by name; unreadable metadata changes nothing', async ({ page }, info) => {
  const errors = await openStudio(page, info);
  const message = page.getByTestId('restore-message');

  // pasted while the prompt field has the focus (Ctrl+V with an image on the clipboard)
  await page.getByTestId('prompt').focus();
  await pasteFile(page, transfer(makePng(A1111_TINY.text), 'image.png'));
  await expect(page.getByTestId('restore-panel')).toHaveAttribute('data-kind', 'settings');
  await expect(message).toContainText(A1111_TINY.a1111.Prompt);
  await page.getByTestId('restore-apply').click();
  const a = A1111_TINY.a1111;
  await expect(message).toHaveText(`Restored from image.png: prompt, negative prompt, steps ${a.Steps}, CFG ${a['CFG scale']}, size 64×64, seed ${a.Seed}.`);
  await expect(page.getByTestId('restore-notes')).toContainText(`Sampler "${a.Sampler}" is not used`);
  await expect(page.getByTestId('restore-notes')).toContainText('Not used: Model hash.');
  await expect(page.getByTestId('restore-notes')).toContainText(`made with the model "${a.Model}"`);
  expect(await readForm(page)).toEqual({ prompt: a.Prompt, negative: a['Negative prompt'], steps: a.Steps, guidance: a['CFG scale'], seed: a.Seed });
  await page.getByTestId('restore-dismiss').click();
  await expect(page.getByTestId('restore-panel')).toHaveCount(0);

  // dropped anywhere on the page: values the model cannot take are refused, each by name; the rest applies
  await dropFile(page, 'header.topbar', transfer(makePng(A1111_BIG.text), 'big.png'));
  await page.getByTestId('restore-apply').click();
  const b = A1111_BIG.a1111;
  await expect(message).toContainText(`Restored from big.png: prompt, negative prompt (empty), seed ${b.Seed}.`);
  await expect(message).toContainText(`Steps ${b.Steps}: outside 1–50`);
  await expect(message).toContainText(`CFG scale ${b['CFG scale']}: outside 1–12`);
  await expect(message).toContainText(`Size ${b['Size-1']}×${b['Size-2']}: WebDiT tiny`);
  const afterBig = await readForm(page);
  expect(afterBig).toEqual({ prompt: b.Prompt, negative: '', steps: a.Steps, guidance: a['CFG scale'], seed: b.Seed });

  // a parameters chunk that fails its CRC: the message names it, and the form stays as it was
  const good = makePng(A1111_TINY.text);
  const corrupt = good.slice();
  corrupt[33 + 8 + 12] ^= 0x20; // a byte of the text chunk, which follows IHDR (8 + 25 bytes)
  await dropFile(page, 'header.topbar', transfer(corrupt, 'corrupt.png'));
  await expect(page.getByTestId('restore-panel')).toHaveAttribute('data-kind', 'unreadable');
  await expect(message).toHaveText(/^Could not read the settings: The metadata of corrupt\.png could not be read: Corrupt PNG: [it]EXt chunk at byte 33 fails its CRC check\. Nothing was changed\.$/);
  await expect(page.getByTestId('restore-apply')).toHaveCount(0);
  expect(await readForm(page)).toEqual(afterBig);

  // a parameters text that is not an infotext
  await pasteFile(page, transfer(makePng('a caption, not settings'), 'caption.png'));
  await expect(message).toHaveText(/^Could not read the settings: The "parameters" text of caption\.png could not be read: its last line holds no settings/);
  expect(await readForm(page)).toEqual(afterBig);

  // a plain picture pasted: no settings, and it can still be the init image
  await pasteFile(page, transfer(makePng(), 'plain.png'));
  await expect(page.getByTestId('restore-panel')).toHaveAttribute('data-kind', 'none');
  await expect(message).toHaveText('plain.png carries no generation settings (no "parameters" text).');
  await expect(page.getByTestId('restore-as-init')).toBeFocused();
  await page.getByTestId('restore-as-init').click();
  await expect(page.getByTestId('init-image-source')).toHaveText('plain.png');
  expect(await readForm(page)).toEqual(afterBig);
  expect(errors).toEqual([]);
});

test('a picture without settings dropped on the image is the init image at once; a PNG with settings can be used as one too', async ({ page }, info) => {
  const errors = await openStudio(page, info);
  await dropFile(page, '[data-testid="result-canvas"]', transfer(makePng(), 'plain.png'));
  await expect(page.getByTestId('init-image-source')).toHaveText('plain.png');
  await expect(page.getByTestId('restore-panel')).toHaveCount(0);
  await page.getByTestId('init-image-clear').click();

  const before = await readForm(page);
  await dropFile(page, '[data-testid="result-canvas"]', transfer(makePng(A1111_TINY.text), 'settings.png'));
  await page.getByTestId('restore-as-init').click();
  await expect(page.getByTestId('init-image-source')).toHaveText('settings.png');
  await expect(page.getByTestId('restore-panel')).toHaveCount(0);
  expect(await readForm(page)).toEqual(before);
  expect(errors).toEqual([]);
});

test('the seed field keeps exactly what is typed, refuses to run from what is not a seed, and runs from what it shows', async ({ page }, info) => {
  const errors = await openStudio(page, info);
  await setSlider(page, 'steps', 2, 1, 1);
  const seed = page.getByTestId('seed');
  const seedError = page.getByTestId('seed-error');

  // typed key by key: never rewritten (it used to become 1, 100, 1000)
  await seed.fill('');
  await seed.pressSequentially('1e20');
  await expect(seed).toHaveValue('1e20');
  await expect(seed).toHaveAttribute('aria-invalid', 'true');
  await expect(seedError).toHaveText('Seed "1e20" is not a whole number from 0 to 4294967295 (digits only).');
  await expect(seed).toHaveAttribute('aria-describedby', 'seed-error');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('status')).toHaveText('Not started: Seed "1e20" is not a whole number from 0 to 4294967295 (digits only).');
  await expect(appState(page)).toHaveAttribute('data-state', 'ready');
  await expect(page.getByTestId('result-canvas')).toHaveAttribute('data-kind', 'empty');
  await seed.blur();
  await expect(seed).toHaveValue('1e20'); // leaving the field does not rewrite it either

  // emptied: no hidden seed (Ctrl+Enter in the prompt too)
  await seed.fill('');
  await expect(seedError).toHaveText(/^Seed is empty/);
  await page.getByTestId('prompt').press('Control+Enter');
  await expect(page.getByTestId('status')).toHaveText(/^Not started: Seed is empty/);
  await expect(page.getByTestId('result-canvas')).toHaveAttribute('data-kind', 'empty');

  // too large: refused, not clamped
  await seed.fill('4294967296');
  await expect(seedError).toHaveText('Seed 4294967296 is larger than 4294967295, the largest seed.');

  // a seed: the run uses exactly it
  await seed.fill('77');
  await expect(seed).toHaveAttribute('aria-invalid', 'false');
  await expect(seedError).toHaveCount(0);
  await generate(page, 77);
  await expect(seed).toHaveValue('77');
  expect(errors).toEqual([]);
});
