// A long-lived onnxruntime process for the Python side (webdit/ort_pipeline.py): sessions stay open
// between requests, so a whole sampler (20 steps) or a timing loop runs without re-creating them.
// One JSON request per stdin line, one JSON reply per stdout line:
//   {op: "load", id, model, runtime: "node"|"wasm", threads, optimized?}  -> {ms}  (session creation;
//       `optimized`: path where onnxruntime-node writes the graph after its optimisations)
//   {op: "run", id, inputs: {name: {type, dims, b64}}}                 -> {outputs: {name: {dims, b64}}}
//   {op: "time", id, inputs, warmup, repeats}                          -> {ms: [per run]}
//   {op: "close", id}                                                   -> {}
// runtime "node" is onnxruntime-node (native CPU); "wasm" is onnxruntime-web's WASM build, the
// one the studio runs (Node has no WebGPU). Both use graphOptimizationLevel 'all', as the engine.
import * as ortNode from 'onnxruntime-node';
import readline from 'node:readline';

let ortWeb = null;
const sessions = new Map();

async function runtime(name, threads) {
  if (name === 'node') return ortNode;
  if (!ortWeb) {
    ortWeb = await import('onnxruntime-web');
    ortWeb.env.wasm.numThreads = threads ?? 1;
    ortWeb.env.wasm.proxy = false;
  }
  return ortWeb;
}

function feeds(ort, inputs) {
  const out = {};
  for (const [name, t] of Object.entries(inputs)) {
    const buf = Buffer.from(t.b64, 'base64');
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = t.type === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
    out[name] = new ort.Tensor(t.type, data, t.dims);
  }
  return out;
}

async function handle(req) {
  if (req.op === 'load') {
    const ort = await runtime(req.runtime ?? 'node', req.threads);
    const opts = { graphOptimizationLevel: 'all', executionProviders: [req.runtime === 'wasm' ? 'wasm' : 'cpu'] };
    if ((req.runtime ?? 'node') === 'node') {
      opts.intraOpNumThreads = req.threads ?? 1;
      opts.interOpNumThreads = 1;
      if (req.optimized) opts.optimizedModelFilePath = req.optimized;
    }
    const t0 = performance.now();
    const session = await ort.InferenceSession.create(req.model, opts);
    sessions.set(req.id, { ort, session });
    return { ms: performance.now() - t0 };
  }
  const s = sessions.get(req.id);
  if (!s) throw new Error(`no session ${req.id}`);
  if (req.op === 'close') {
    await s.session.release();
    sessions.delete(req.id);
    return {};
  }
  const inputs = feeds(s.ort, req.inputs);
  if (req.op === 'run') {
    const out = await s.session.run(inputs);
    const res = {};
    for (const [name, t] of Object.entries(out)) {
      res[name] = { dims: t.dims, b64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') };
    }
    return { outputs: res };
  }
  if (req.op === 'time') {
    for (let i = 0; i < (req.warmup ?? 2); i++) await s.session.run(inputs);
    const ms = [];
    for (let i = 0; i < (req.repeats ?? 10); i++) {
      const t0 = performance.now();
      await s.session.run(inputs);
      ms.push(performance.now() - t0);
    }
    return { ms };
  }
  throw new Error(`unknown op ${req.op}`);
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    reply = { ok: true, ...(await handle(JSON.parse(line))) };
  } catch (e) {
    reply = { ok: false, error: String(e?.stack ?? e) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
