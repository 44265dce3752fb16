// The transformer of two model folders timed in headless Chromium with the studio's onnxruntime-web
// bundle (WASM EP, graphOptimizationLevel 'all', cross-origin isolated so threads work): both
// sessions in one page, runs interleaved (the order flips every round), batch 2, random inputs.
// Prints one JSON line: median / min ms per forward and the ratio b / a (session_ms of a includes
// onnxruntime's own start-up: the first session in a page pays it).
//   node training/browser_ab.mjs <folder a> <folder b> [--threads 2] [--rounds 40] [--port 4191]
// e.g. the fp32 graphs (training/compress.py report --fp32-rev ... writes training/runs/compress/fp32)
// vs the shipped ones:  node training/browser_ab.mjs training/runs/compress/fp32 public/models/webdit-tiny
import { chromium } from '@playwright/test';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args.splice(i, 2)[1] : def; };
const threads = Number(opt('threads', 2)), rounds = Number(opt('rounds', 40)), port = Number(opt('port', 4191));
const [a, b] = args;
if (!a || !b) throw new Error('usage: node training/browser_ab.mjs <folder a> <folder b> [--threads N] [--rounds N]');
const MAP = { '/ort/': 'node_modules/onnxruntime-web/dist/', '/a/': a, '/b/': b };

const html = `<!doctype html><script type="module">
import * as ort from '/ort/ort.webgpu.bundle.min.mjs';
ort.env.wasm.numThreads = ${threads}; ort.env.wasm.wasmPaths = '/ort/';
const rnd = (n) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
window.bench = async () => {
  const cfg = await (await fetch('/a/transformer/config.json')).json();
  const [C, h, L, D, P] = [cfg.in_channels, cfg.sample_size, cfg.max_text_length, cfg.joint_attention_dim, cfg.pooled_projection_dim];
  const feeds = () => ({ hidden_states: new ort.Tensor('float32', rnd(2 * C * h * h), [2, C, h, h]),
    encoder_hidden_states: new ort.Tensor('float32', rnd(2 * L * D), [2, L, D]),
    pooled_projections: new ort.Tensor('float32', rnd(2 * P), [2, P]), timestep: new ort.Tensor('float32', Float32Array.from([1000, 345.5]), [2]) });
  const S = {}, load = {}, ms = { a: [], b: [] };
  for (const k of ['a', 'b']) {
    const bytes = new Uint8Array(await (await fetch('/' + k + '/transformer/model.onnx')).arrayBuffer());
    const t0 = performance.now();
    S[k] = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    load[k] = performance.now() - t0;
    await S[k].run(feeds()); await S[k].run(feeds());
  }
  for (let r = 0; r < ${rounds}; r++) for (const k of (r % 2 ? ['b', 'a'] : ['a', 'b'])) {
    const fd = feeds(); const t0 = performance.now(); await S[k].run(fd); ms[k].push(performance.now() - t0);
  }
  return { isolated: crossOriginIsolated, threads: ort.env.wasm.numThreads, load, ms };
};
window.ready = true;
</script>`;

const server = http.createServer((req, res) => {
  const h = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  if (req.url === '/') { res.writeHead(200, { ...h, 'Content-Type': 'text/html' }); return res.end(html); }
  const pre = Object.keys(MAP).find((p) => req.url.startsWith(p));
  if (!pre) { res.writeHead(404); return res.end(); }
  const file = path.resolve(MAP[pre], req.url.slice(pre.length));
  const type = file.endsWith('.mjs') ? 'text/javascript' : file.endsWith('.wasm') ? 'application/wasm' : file.endsWith('.json') ? 'application/json' : 'application/octet-stream';
  fs.readFile(file, (e, d) => { if (e) { res.writeHead(404); return res.end(); } res.writeHead(200, { ...h, 'Content-Type': type }); res.end(d); });
}).listen(port);

const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  await page.goto(`http://localhost:${port}/`);
  await page.waitForFunction(() => window.ready === true);
  const r = await page.evaluate(() => window.bench());
  const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
  const round = (x) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ a, b, isolated: r.isolated, threads: r.threads, rounds,
    median_ms: { a: round(med(r.ms.a)), b: round(med(r.ms.b)) }, min_ms: { a: round(Math.min(...r.ms.a)), b: round(Math.min(...r.ms.b)) },
    session_ms: { a: Math.round(r.load.a), b: Math.round(r.load.b) }, b_over_a_median: round(med(r.ms.b) / med(r.ms.a)) }));
} finally {
  await browser.close();
  server.close();
}
