// Time per image in headless Chromium at the model's default settings (after a warm-up image).
// Usage: npm run bench [-- --backend wasm|webgpu] [--runs 3] [--screenshot docs/studio.png]
// Prints one JSON line per backend: wall time from Generate to the image on the canvas, and the
// engine's own split (encode / denoise / decode, ms per step).
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const backends = arg('backend', 'wasm,webgpu').split(',');
const runs = Number(arg('runs', 3));
const screenshot = arg('screenshot', null);
const PORT = 4180;

const server = spawn('npx', ['vite', 'preview', '--port', String(PORT), '--strictPort'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 2500));
const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
try {
  for (const backend of backends) {
    const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
    if (backend === 'webgpu') args.push('--enable-unsafe-webgpu');
    const browser = await chromium.launch({ executablePath, args });
    const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
    const t0 = Date.now();
    await page.goto(`http://localhost:${PORT}/?backend=${backend}`);
    await page.waitForSelector('.app[data-state="ready"]', { timeout: 600_000 });
    const loadMs = Date.now() - t0;
    await page.getByTestId('prompt').fill('a large red heart in the center on a white background');
    // previews cost extra VAE decodes: off, so numbers compare with earlier runs
    await page.getByTestId('live-preview').uncheck();
    const times = [];
    for (let i = 0; i <= runs; i++) {
      const s = Date.now();
      await page.getByTestId('generate').click();
      await page.waitForSelector('.app[data-state="running"]', { timeout: 10_000 }).catch(() => {});
      await page.waitForSelector('.app[data-state="ready"]', { timeout: 600_000 });
      if (i > 0) times.push(Date.now() - s); // the first image warms up (WebGPU compiles shaders)
    }
    const engine = await page.evaluate(() => document.querySelector('[data-testid="timings"]')?.textContent ?? null);
    const badge = await page.getByTestId('backend-badge').getAttribute('data-backend');
    const steps = await page.getByTestId('steps').inputValue();
    const guidance = await page.getByTestId('guidance').inputValue();
    times.sort((a, b) => a - b);
    console.log(JSON.stringify({ backend: badge, steps: Number(steps), guidance: Number(guidance), loadMs, runs, medianMs: times[Math.floor(times.length / 2)], minMs: times[0], maxMs: times.at(-1), engine }));
    if (screenshot && backend === backends[0]) {
      // the whole studio from the top: the form is taller than the benchmark's viewport
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    await browser.close();
  }
} finally {
  server.kill();
}
