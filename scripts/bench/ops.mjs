// Where the WASM forward's time goes, op type by op type, against native: ONNX Runtime's own
// profiler (enableProfiling) in onnxruntime-node and in onnxruntime-web's WASM build (run by Node's
// V8 here: the same .wasm the browser runs; its profiler prints the events to stdout, which this
// captures), on the same graph and inputs, 1 thread. Profiling adds a little to every node, so the
// rows are shares and ratios, not the forward's time.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ortNode from 'onnxruntime-node';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

function byOp(events, runs) {
  const ms = {};
  const count = {};
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args.op_name;
    ms[op] = (ms[op] ?? 0) + e.dur / 1000 / runs;
    count[op] = (count[op] ?? 0) + 1 / runs;
  }
  return { ms, count };
}

/** [{op, count, wasmMs, nativeMs, vsNative, wasmShare}] sorted by WASM time, and the totals. */
export async function opProfile(modelDir, graph, feeds, { runs = 10 } = {}) {
  const file = path.join(modelDir, graph.rel);
  // native: the profile goes to a JSON file
  const prefix = path.join(fs.mkdtempSync('/tmp/webdit-prof-'), 'native');
  const nWarm = await ortNode.InferenceSession.create(file, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const nFeeds = Object.fromEntries(feeds.map((f) => [f.name, new ortNode.Tensor(f.type, f.data, f.dims)]));
  for (let i = 0; i < 5; i++) await nWarm.run(nFeeds);
  await nWarm.release();
  const ns = await ortNode.InferenceSession.create(file, { intraOpNumThreads: 1, graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix });
  for (let i = 0; i < runs; i++) await ns.run(nFeeds);
  ns.endProfiling();
  await ns.release();
  const dir = path.dirname(prefix);
  const nFile = fs.readdirSync(dir).find((f) => f.startsWith('native'));
  const native = byOp(JSON.parse(fs.readFileSync(path.join(dir, nFile), 'utf8')), runs);
  fs.rmSync(dir, { recursive: true, force: true });

  // WASM: the build's profiler prints the events to stdout (Emscripten writes fd 1 itself), so it
  // runs in a child process whose stdout is read
  const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--wasm-child', file, JSON.stringify(feeds.map(({ name, type, dims }) => ({ name, type, dims }))), String(runs)], {
    input: Buffer.concat(feeds.map((f) => Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength))),
    maxBuffer: 1 << 30,
  });
  const text = child.stdout.toString();
  const start = text.indexOf('[');
  const end = text.lastIndexOf(']');
  if (child.status !== 0 || start < 0 || end < start) throw new Error(`the WASM build printed no profile: ${child.stderr.toString().slice(0, 500)}`);
  const wasm = byOp(JSON.parse(text.slice(start, end + 1)), runs);

  const wasmTotal = Object.values(wasm.ms).reduce((a, b) => a + b, 0);
  const nativeTotal = Object.values(native.ms).reduce((a, b) => a + b, 0);
  const rows = Object.keys(wasm.ms)
    .sort((a, b) => wasm.ms[b] - wasm.ms[a])
    .map((op) => ({ op, count: Math.round(wasm.count[op]), wasmMs: wasm.ms[op], nativeMs: native.ms[op] ?? 0, vsNative: native.ms[op] ? wasm.ms[op] / native.ms[op] : null, wasmShare: wasm.ms[op] / wasmTotal }));
  return { rows, wasmTotal, nativeTotal };
}

const TYPED = { float32: Float32Array, float16: Uint16Array, int64: BigInt64Array, int32: Int32Array };
const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);

// the child: one WASM session with the profiler on; the inputs' bytes arrive on stdin
if (isMain && process.argv[2] === '--wasm-child') {
  const [file, metaText, runsText] = process.argv.slice(3);
  const meta = JSON.parse(metaText);
  const input = fs.readFileSync(0);
  const ortWeb = await import('onnxruntime-web/wasm');
  ortWeb.env.wasm.numThreads = 1;
  const feeds = {};
  let off = 0;
  for (const m of meta) {
    const n = m.dims.reduce((a, b) => a * b, 1);
    const T = TYPED[m.type];
    feeds[m.name] = new ortWeb.Tensor(m.type, new T(input.buffer.slice(input.byteOffset + off, input.byteOffset + off + n * T.BYTES_PER_ELEMENT)), m.dims);
    off += n * T.BYTES_PER_ELEMENT;
  }
  const bytes = new Uint8Array(fs.readFileSync(file));
  // V8 runs new wasm code unoptimised first: warm the module up in a session without the profiler
  const warm = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  for (let i = 0; i < 15; i++) await warm.run(feeds);
  await warm.release();
  const ws = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableProfiling: true });
  for (let i = 0; i < Number(runsText); i++) await ws.run(feeds);
  ws.endProfiling();
  await ws.release();
}

// node scripts/bench/ops.mjs [model folder]: the table alone
if (isMain && process.argv[2] !== '--wasm-child') {
  const { makeInputs, transformerGraph } = await import('./inputs.mjs');
  const modelDir = path.resolve(process.argv[2] ?? path.join(ROOT, 'public/models/webdit-tiny'));
  const graph = transformerGraph(modelDir);
  const feeds = await makeInputs(modelDir, graph);
  const { rows, wasmTotal, nativeTotal } = await opProfile(modelDir, graph, feeds);
  for (const r of rows) console.log(`${r.op.padEnd(24)} x${String(r.count).padStart(4)}  wasm ${r.wasmMs.toFixed(2).padStart(7)} ms (${(100 * r.wasmShare).toFixed(1).padStart(5)}%)  native ${r.nativeMs.toFixed(2).padStart(6)} ms  ${r.vsNative ? r.vsNative.toFixed(1) + 'x' : ''}`);
  console.log(`total (profiled)         wasm ${wasmTotal.toFixed(2)} ms  native ${nativeTotal.toFixed(2)} ms  ${(wasmTotal / nativeTotal).toFixed(2)}x`);
}
