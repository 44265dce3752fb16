// The gap between the browser and native, in one run (issue 11). Prints one JSON line per row:
//   machine         CPU, cores, load average (timings on a busy machine are noise), versions
//   native-forward  the transformer at batch 2 (one CFG step) in onnxruntime-node, 1 and N threads
//   wasm-forward    the same graph and inputs in ORT-web inside Chromium, 1 and N threads, in the
//                   plain build (the studio's WASM loads) and the asyncify build (its WebGPU loads)
//   op-profile      ONNX Runtime's profiler, op type by op type: WASM (its .wasm run by Node's V8) vs
//                   native, 1 thread: where the forward's time goes and which ops lose most
//   gemm-floor      a graph of only MatMuls shaped like the transformer's MLP, native vs the plain
//                   build in Chromium: what SIMD128 costs a GEMM on this CPU (the floor under wasm-forward)
//   studio-visit    page open -> model ready -> first image, cold (fresh profile) and warm (same profile)
//   first-vs-later  the first image after the load against later ones (engine time)
//   studio-step     the studio's ms per step at its defaults; overhead = step - forward
//   memory          peak resident memory of the browser's processes, and the page's own measure
//   webgpu          the WebGPU path (SwiftShader here: the image vs WASM and GPU reads per step, not speed)
// Each timed row carries vsNative: its ms over native's with the same threads (studio: N threads).
// Writes the rows to docs/bench.json and a chart to docs/bench.svg (README shows it).
//
// Usage: npm run bench [-- --model <folder>] [--graph transformer/model.onnx] [--dims name=n,...]
//   [--runs 3] [--forward-runs 20] [--only native,wasm,studio,webgpu] [--builds plain,asyncify,jspi] [--webgpu-steps 3]
//   [--dist dist] [--port 4180] [--chart docs/bench.svg] [--json docs/bench.json] [--screenshot docs/studio.png]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from '@playwright/test';
import { benchChart } from './bench/chart.mjs';
import { makeInputs, transformerGraph } from './bench/inputs.mjs';
import { gemmFolder } from './bench/gemm.mjs';
import { nativeForward } from './bench/native.mjs';
import { opProfile } from './bench/ops.mjs';
import { startBenchServer } from './bench/server.mjs';
import { BASE_ARGS, executablePath, studioRows, webgpuRow } from './bench/studio.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const EMBEDDED = path.join(ROOT, 'public/models/webdit-tiny');
const modelDir = path.resolve(arg('model', EMBEDDED));
const embedded = modelDir === EMBEDDED;
const only = new Set(arg('only', 'native,wasm,studio,webgpu').split(','));
const runs = Number(arg('runs', 3));
const forwardRuns = Number(arg('forward-runs', 20));
const webgpuSteps = Number(arg('webgpu-steps', 3));
const dist = arg('dist', 'dist');
const port = Number(arg('port', 4180));
const name = embedded ? 'bench' : `bench-${path.basename(modelDir)}`;
const chartPath = arg('chart', `docs/${name}.svg`);
const jsonPath = arg('json', `docs/${name}.json`);
const screenshot = arg('screenshot', null);
// the studio's thread count: min(4, cores) when cross-origin isolated (src/engine/core/sessions.ts)
const N = Math.max(1, Math.min(4, os.cpus().length));
const threadCounts = [...new Set([1, N])];

const rows = [];
const emit = (row) => {
  rows.push(row);
  console.log(JSON.stringify(row));
};
const round = (x) => (typeof x === 'number' && Number.isFinite(x) ? Math.round(x * 100) / 100 : x);

const ortWeb = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version;
const ortNode = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version;
const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
emit({
  row: 'machine', date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.cpus().length, avx512: /avx512f/.test(cpuinfo), loadavg: os.loadavg().map(round),
  chromium: executablePath, onnxruntimeWeb: ortWeb, onnxruntimeNode: ortNode, model: path.relative(ROOT, modelDir) || modelDir,
});

let graph, feeds;
try {
  graph = transformerGraph(modelDir, arg('graph'));
  feeds = await makeInputs(modelDir, graph, arg('dims'));
} catch (e) {
  console.error(`bench: ${e.message}`);
  process.exit(1);
}
const shapes = Object.fromEntries(feeds.map((f) => [f.name, f.dims]));

const native = {};
if (only.has('native') || only.has('wasm') || only.has('studio')) {
  for (const t of threadCounts) {
    const r = await nativeForward(modelDir, graph, feeds, t, { runs: Math.max(forwardRuns, 10) });
    native[t] = r.ms;
    emit({ row: 'native-forward', graph: graph.rel, inputs: shapes, threads: t, ms: round(r.ms), minMs: round(r.min), runs: r.runs, vsNative: 1 });
  }
}

if (only.has('wasm') && only.has('native')) {
  const p = await opProfile(modelDir, graph, feeds);
  for (const r of p.rows.filter((x) => x.wasmShare >= 0.005)) {
    emit({ row: 'op-profile', op: r.op, count: r.count, wasmMs: round(r.wasmMs), nativeMs: round(r.nativeMs), vsNative: round(r.vsNative), wasmShare: round(r.wasmShare) });
  }
  emit({ row: 'op-profile', op: 'total (profiled)', wasmMs: round(p.wasmTotal), nativeMs: round(p.nativeTotal), vsNative: round(p.wasmTotal / p.nativeTotal), wasmShare: 1 });
}

// the GEMM floor: the MLP's MatMuls at a CFG step (2 x tokens rows), from the transformer's config
let gemm = null;
if (only.has('wasm') && only.has('native')) {
  let cfg = {};
  try {
    cfg = JSON.parse(fs.readFileSync(path.join(modelDir, graph.dir, 'config.json'), 'utf8'));
  } catch {
    /* no config: the embedded model's sizes */
  }
  const hidden = Math.min(cfg.hidden_size ?? 256, 1024);
  const tokens = Math.min(2 * ((cfg.sample_size ?? 16) / (cfg.patch_size ?? 2)) ** 2, 1024);
  const g = gemmFolder({ tokens, hidden, mlp: 4 * hidden, reps: 6 });
  const gGraph = transformerGraph(g.dir);
  const gFeeds = await makeInputs(g.dir, gGraph);
  gemm = { ...g, graph: gGraph, feeds: gFeeds, shape: `[${tokens},${hidden}]x[${hidden},${4 * hidden}]x[${4 * hidden},${hidden}] x6`, native: {} };
  for (const t of threadCounts) gemm.native[t] = (await nativeForward(g.dir, gGraph, gFeeds, t, { runs: Math.max(forwardRuns, 10) })).ms;
}

const server = await startBenchServer({ modelDir, feeds });
let studioForward = null;
try {
  if (only.has('wasm') || only.has('studio')) {
    const browser = await chromium.launch({ executablePath, headless: true, args: [...BASE_ARGS, '--disable-webgpu'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/bench/forward.html`);
      await page.waitForFunction(() => window.benchReady === true);
      for (const build of arg('builds', 'plain,asyncify').split(',')) {
        for (const t of threadCounts) {
          const r = await page.evaluate((o) => window.forward(o), { build, threads: t, graph, warmup: 20, runs: forwardRuns });
          if (build === 'plain' && t === N) studioForward = r.ms; // the build the studio's WASM loads run
          emit({ row: 'wasm-forward', build, threads: r.threads, isolated: r.isolated, ms: round(r.ms), minMs: round(r.min), firstRunMs: round(r.firstMs), sessionCreateMs: round(r.createMs), runs: r.runs, vsNative: round(r.ms / native[t]), firstForwardsMs: r.curve.slice(0, 20) });
        }
      }
      if (gemm) {
        const gServer = await startBenchServer({ modelDir: gemm.dir, feeds: gemm.feeds });
        try {
          const gPage = await browser.newPage();
          await gPage.goto(`${gServer.url}/bench/forward.html`);
          await gPage.waitForFunction(() => window.benchReady === true);
          for (const t of threadCounts) {
            const r = await gPage.evaluate((o) => window.forward(o), { build: 'plain', threads: t, graph: gemm.graph, warmup: 10, runs: forwardRuns });
            emit({ row: 'gemm-floor', shape: gemm.shape, gflop: round(gemm.gflop), threads: t, nativeMs: round(gemm.native[t]), wasmMs: round(r.ms), nativeGflops: round(gemm.gflop / (gemm.native[t] / 1000)), wasmGflops: round(gemm.gflop / (r.ms / 1000)), vsNative: round(r.ms / gemm.native[t]) });
          }
        } finally {
          await gServer.close();
          fs.rmSync(gemm.dir, { recursive: true, force: true });
        }
      }
    } finally {
      await browser.close();
    }
  }

  if (only.has('studio') || only.has('webgpu')) {
    // the built studio (npm run bench builds it), served as `vite preview` serves it: cross-origin isolated, strict CSP
    const preview = spawn('npx', ['vite', 'preview', '--port', String(port), '--strictPort', '--outDir', dist], { cwd: ROOT, stdio: 'ignore', detached: true });
    const stopPreview = () => {
      try {
        process.kill(-preview.pid);
      } catch {
        /* already gone */
      }
    };
    try {
      const baseUrl = `http://localhost:${port}`;
      for (let i = 0; ; i++) {
        if (await fetch(baseUrl).then((r) => r.ok, () => false)) break;
        if (i > 120) throw new Error(`vite preview did not answer on ${baseUrl}: is ${dist}/ built (npm run bench builds it)?`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const model = embedded ? '' : `model=bench/model&hub=${encodeURIComponent(server.url)}&`;
      const query = `${model}prompt=${encodeURIComponent('a large red heart in the center on a white background')}&seed=42`;
      if (only.has('studio')) {
        await studioRows({ baseUrl, query, runs, emit: (r) => emit(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]))), forwardMs: studioForward ?? NaN, nativeMs: native[N] ?? NaN, screenshot, threads: N });
      }
      if (only.has('webgpu')) await webgpuRow({ baseUrl, query, steps: webgpuSteps, emit: (r) => emit(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]))) });
    } finally {
      stopPreview();
    }
  }
} finally {
  await server.close();
}

if (chartPath !== 'none') {
  const m = rows[0];
  const title = `WebDiT benchmark: ${m.model}`;
  const subtitle = `${m.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cores}-core ${m.cpu}${m.avx512 ? ', AVX-512' : ''} · load average ${m.loadavg[0]} at start · onnxruntime-web ${m.onnxruntimeWeb.replace(/-dev\.(\d+)-.*/, '-dev.$1')}, -node ${m.onnxruntimeNode}`;
  fs.writeFileSync(path.resolve(ROOT, chartPath), benchChart(rows, { title, subtitle }));
}
if (jsonPath !== 'none') fs.writeFileSync(path.resolve(ROOT, jsonPath), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
