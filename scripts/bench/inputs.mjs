// The transformer graph of a model folder and one fixed set of inputs for it (a CFG step: batch 2),
// shared by every forward row so native and browser time the same graph on the same numbers.
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

/** The transformer graph: --graph, else transformer/model.onnx (diffusers / optimum), else unet/model.onnx (TensorStack). */
export function transformerGraph(modelDir, graph) {
  const candidates = graph ? [graph] : ['transformer/model.onnx', 'unet/model.onnx'];
  const found = candidates.find((c) => fs.existsSync(path.join(modelDir, c)));
  if (!found) throw new Error(`${modelDir} has no ${candidates.join(' or ')}: pass --graph <path inside the folder>.`);
  const dir = path.dirname(found);
  const base = path.basename(found);
  // external data sits next to the graph (model.onnx_data, model.onnx.data, shards _1, _2, ...)
  const external = fs.readdirSync(path.join(modelDir, dir)).filter((f) => f !== base && f.startsWith(base));
  return { rel: found, dir, file: base, external };
}

// mulberry32 + Box-Muller (DESIGN.md §2): the same numbers everywhere, for any seed
function normals(seed, n) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next()));
    const a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

function toHalf(f32) {
  const out = new Uint16Array(f32.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < f32.length; i++) {
    f[0] = f32[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const e = ((x >>> 23) & 0xff) - 127 + 15;
    const m = x & 0x7fffff;
    if (e <= 0) out[i] = sign; // tiny: flush to zero (timing inputs only)
    else if (e >= 31) out[i] = sign | 0x7c00;
    else out[i] = sign | (e << 10) | (Math.round(m / 8192) === 1024 ? 1023 : Math.round(m / 8192));
  }
  return out;
}

/**
 * Feeds for a batch-2 forward: symbolic batch dims are 2, height/width the config's sample_size,
 * anything else from --dims name=value. Latents and conditioning N(0,1), timesteps 500.
 */
export async function makeInputs(modelDir, graph, dimsArg) {
  const session = await ort.InferenceSession.create(path.join(modelDir, graph.rel), { intraOpNumThreads: 1 });
  const meta = session.inputMetadata;
  await session.release();
  let config = {};
  try {
    config = JSON.parse(fs.readFileSync(path.join(modelDir, graph.dir, 'config.json'), 'utf8'));
  } catch {
    /* no config: --dims must name every symbolic size */
  }
  const given = Object.fromEntries((dimsArg ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')).map(([k, v]) => [k.trim(), Number(v)]));
  const missing = [];
  const resolve = (d, input) => {
    if (typeof d === 'number' && d > 0) return d;
    const name = String(d);
    if (name in given) return given[name];
    if (/batch|^step$|^N$/i.test(name)) return 2;
    if (/^(height|width)$/i.test(name) && config.sample_size) return config.sample_size;
    missing.push(`${name} (input ${input})`);
    return 1;
  };
  const feeds = meta.map((m, i) => {
    const dims = m.shape.map((d) => resolve(d, m.name));
    const n = dims.reduce((a, b) => a * b, 1);
    const values = dims.length === 1 && /time|sigma/i.test(m.name) ? new Float32Array(n).fill(500) : normals(1000 + i, n);
    const data = m.type === 'float16' ? toHalf(values) : m.type === 'int64' ? new BigInt64Array(n) : m.type === 'int32' ? new Int32Array(n) : values;
    return { name: m.name, type: m.type, dims, data };
  });
  if (missing.length) throw new Error(`cannot size the transformer's inputs: ${missing.join(', ')}. Pass --dims name=value,... (e.g. --dims sequence_length=154).`);
  return feeds;
}
