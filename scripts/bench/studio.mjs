// The studio itself in headless Chromium: page open -> model ready -> first image on a cold visit
// (fresh profile) and a warm one (same profile: files in the Cache API), first image vs later ones,
// the engine's ms per step, peak memory, and the WebGPU path's readbacks and image.
import { chromium } from '@playwright/test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from './native.mjs';

export const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
export const BASE_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--enable-blink-features=ForceEagerMeasureMemory'];

/** Records, in page time (ms since navigation start), every load/generate `done` the engine worker posts. */
function recordEngine() {
  const w = window;
  w.__bench = { load: [], generate: [] };
  const Base = w.Worker;
  w.Worker = class extends Base {
    constructor(url, options) {
      super(url, options);
      this.addEventListener('message', (e) => {
        const d = e.data;
        if (d?.type !== 'done') return;
        if (d.result?.request === 'load') w.__bench.load.push({ at: performance.now(), result: d.result });
        if (d.result?.request === 'generate') w.__bench.generate.push({ at: performance.now(), clickAt: w.__bench.clickAt, timings: d.result.timings });
      });
    }
  };
  // the time of the Generate click the next done event answers
  document.addEventListener('click', (e) => {
    if (e.target?.closest?.('[data-testid="generate"]')) w.__bench.clickAt = performance.now();
  }, true);
}

const benchState = (page) => page.evaluate(() => window.__bench);

async function waitGenerates(page, n) {
  await page.waitForFunction((k) => window.__bench.generate.length >= k, n, { timeout: 900_000, polling: 100 });
  await page.waitForSelector('.app[data-state="ready"]', { timeout: 60_000 });
}

/** Pids of one Chromium (the processes started with this profile) and all their descendants. */
function processTree(userDataDir) {
  const pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  const parent = new Map();
  const roots = [];
  for (const p of pids) {
    try {
      parent.set(p, fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`--user-data-dir=${userDataDir}`)) roots.push(p);
    } catch {
      /* the process ended meanwhile */
    }
  }
  const tree = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp] of parent) if (!tree.has(p) && tree.has(pp)) (tree.add(p), (grew = true));
  }
  return [...tree];
}

/** Peak resident memory (VmHWM) of each process of the tree: the largest one and the sum. */
function peakMemory(userDataDir) {
  const peaks = processTree(userDataDir).map((p) => {
    try {
      return Number(fs.readFileSync(`/proc/${p}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
    } catch {
      return 0;
    }
  });
  return { maxProcessMB: Math.max(0, ...peaks), sumMB: peaks.reduce((a, b) => a + b, 0), processes: peaks.length };
}

/**
 * One visit: open the page, press Generate during the load (the studio runs it once the model is
 * ready), then `later` more images. Times come from the page's own clock.
 */
async function visit(context, url, later) {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.addInitScript(recordEngine);
  await page.goto(url);
  await page.getByTestId('generate').waitFor({ state: 'visible', timeout: 60_000 });
  const preview = page.getByTestId('live-preview');
  if (await preview.isChecked()) await preview.uncheck(); // previews cost extra VAE decodes
  await page.getByTestId('generate').click();
  await waitGenerates(page, 1);
  for (let i = 0; i < later; i++) {
    await page.getByTestId('generate').click();
    await waitGenerates(page, i + 2);
  }
  return { page, state: await benchState(page) };
}

export async function studioRows({ baseUrl, query, runs, emit, forwardMs, nativeMs, screenshot, threads }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'webdit-bench-'));
  const url = `${baseUrl}/?backend=wasm&${query}`;
  const launch = () => chromium.launchPersistentContext(profile, { executablePath, headless: true, args: [...BASE_ARGS, '--disable-webgpu'], viewport: { width: 1280, height: 820 } });
  try {
    // cold visit: nothing stored
    let ctx = await launch();
    const cold = await visit(ctx, url, runs);
    const memory = peakMemory(profile);
    const ua = await cold.page
      .evaluate(async () => (window.crossOriginIsolated && performance.measureUserAgentSpecificMemory ? (await performance.measureUserAgentSpecificMemory()).bytes : null))
      .catch(() => null);
    const load = cold.state.load[0];
    const gens = cold.state.generate;
    emit({ row: 'studio-visit', visit: 'cold', openToReadyMs: load.at, openToFirstImageMs: gens[0].at, engineLoadMs: load.result.loadMs, threads: load.result.backend.threads });
    const laterTotal = median(gens.slice(1).map((g) => g.timings.totalMs));
    const laterStep = median(gens.slice(1).map((g) => g.timings.msPerStep));
    const firstVsLater = (visit, g) => {
      const later = median(g.slice(1).map((x) => x.timings.totalMs));
      return {
        row: 'first-vs-later', visit, firstMs: g[0].timings.totalMs, laterMs: later, ratio: g[0].timings.totalMs / later, firstMsPerStep: g[0].timings.msPerStep, laterMsPerStep: median(g.slice(1).map((x) => x.timings.msPerStep)), later: g.length - 1,
        // where the first image loses its time: each step, the first image's and the next one's
        firstStepsMs: g[0].timings.stepMs?.map(Math.round), nextStepsMs: g[1].timings.stepMs?.map(Math.round),
      };
    };
    emit(firstVsLater('cold', gens));
    emit({ row: 'studio-step', msPerStep: laterStep, forwardMs, overheadMs: laterStep - forwardMs, threads, vsNative: laterStep / nativeMs, clickToImageMs: median(gens.slice(1).map((g) => g.at - g.clickAt)) });
    emit({ row: 'memory', peakProcessMB: memory.maxProcessMB, peakSumMB: memory.sumMB, processes: memory.processes, uaMemoryMB: ua === null ? null : ua / 2 ** 20 });
    if (screenshot) {
      await cold.page.evaluate(() => window.scrollTo(0, 0));
      await cold.page.screenshot({ path: screenshot, fullPage: true });
    }
    await ctx.close();

    // warm visit: the same profile, every model file in the Cache API
    ctx = await launch();
    const warm = await visit(ctx, url, 2);
    emit({ row: 'studio-visit', visit: 'warm', openToReadyMs: warm.state.load[0].at, openToFirstImageMs: warm.state.generate[0].at, engineLoadMs: warm.state.load[0].result.loadMs, threads: warm.state.load[0].result.backend.threads });
    emit(firstVsLater('warm', warm.state.generate));
    await ctx.close();
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function canvasRGB(page) {
  return page.getByTestId('result-canvas').evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const out = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);
    return out;
  });
}

function psnr(a, b) {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** WebGPU (SwiftShader here: correctness and readbacks, not speed): the same image as WASM, reads per step. */
export async function webgpuRow({ baseUrl, query, steps, emit }) {
  const browser = await chromium.launch({ executablePath, headless: true, args: [...BASE_ARGS, '--enable-unsafe-webgpu'] });
  try {
    const image = async (backend) => {
      const page = await browser.newPage();
      await page.addInitScript(recordEngine);
      await page.goto(`${baseUrl}/?backend=${backend}&steps=${steps}&${query}`);
      await page.waitForSelector('.app[data-state="ready"]', { timeout: 900_000 });
      const preview = page.getByTestId('live-preview');
      if (await preview.isChecked()) await preview.uncheck();
      await page.getByTestId('generate').click();
      await waitGenerates(page, 1);
      const state = await benchState(page);
      const got = { rgb: await canvasRGB(page), timings: state.generate[0].timings, info: state.load[0]?.result.backend };
      await page.close();
      return got;
    };
    const wasm = await image('wasm');
    const gpu = await image('webgpu');
    const t = gpu.timings;
    emit({
      row: 'webgpu', backend: gpu.info?.backend, adapter: gpu.info?.adapter, shaderF16: gpu.info?.shaderF16, steps, msPerStep: t.msPerStep, denoiseReadbacks: t.denoiseReadbacks ?? null,
      readbacksPerStep: t.denoiseReadbacks === undefined ? null : t.denoiseReadbacks / steps, readbacks: t.readbacks ?? null, liveDeviceTensors: t.liveDeviceTensors ?? null, psnrVsWasm: psnr(gpu.rgb, wasm.rgb),
    });
  } finally {
    await browser.close();
  }
}
