// The README's screenshot: the built studio in headless Chromium (WASM), a batch of 4 and one more
// image, so the result, the batch thumbnails, the run report and the history gallery are all on it.
//   npx vite build --outDir dist && node scripts/screenshot.mjs [--dist dist] [--port 4192] [--out docs/studio.png]
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const dist = arg('dist', 'dist');
const port = Number(arg('port', 4192));
const out = arg('out', 'docs/studio.png');
if (!fs.existsSync(`${dist}/index.html`)) throw new Error(`${dist}/index.html is missing: run npx vite build --outDir ${dist} first`);

const server = spawn('npx', ['vite', 'preview', '--port', String(port), '--strictPort', '--outDir', dist], { stdio: 'ignore' });
const base = `http://localhost:${port}`;
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(base)).ok) break; } catch { /* not up yet */ }
    if (i > 400) throw new Error(`vite preview did not answer on ${base}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-webgpu'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${base}/?backend=wasm`);
  const state = page.locator('[data-state]').first();
  const ready = () => page.waitForFunction(() => document.querySelector('[data-state]')?.getAttribute('data-state') === 'ready', null, { timeout: 300_000 });
  await ready();
  const setSlider = async (id, value, min) => {
    await page.getByTestId(id).focus();
    await page.keyboard.press('Home');
    for (let v = min; v < value; v++) await page.keyboard.press('ArrowRight');
  };
  const random = page.getByTestId('random-seed');
  if (await random.isChecked()) await random.uncheck();
  const run = async (prompt, seed, images) => {
    await page.getByTestId('prompt').fill(prompt);
    await page.getByTestId('seed').fill(String(seed));
    await setSlider('images', images, 1);
    await page.getByTestId('generate').click();
    await page.waitForFunction(() => document.querySelector('[data-state]')?.getAttribute('data-state') !== 'ready', null, { timeout: 60_000 }).catch(() => {});
    await ready();
  };
  await run('a large red heart in the center on a white background', 3, 1);
  await run('a small yellow star at the top left on a dark blue background', 11, 1);
  await run('a red apple', 42, 4);
  // history saves after the image is shown: wait for all 6 in the gallery
  await page.waitForFunction(() => document.querySelector('[data-testid="history-usage"]')?.getAttribute('data-count') === '6', null, { timeout: 60_000 });
  await state.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: out, fullPage: true });
  console.log(JSON.stringify({ screenshot: out, bytes: fs.statSync(out).size }));
  await browser.close();
} finally {
  server.kill();
}
