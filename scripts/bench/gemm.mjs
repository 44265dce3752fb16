// The hardware floor under the forward rows: a graph of nothing but MatMuls shaped like the
// transformer's MLP at a CFG step (tokens x hidden -> 4 hidden -> hidden), timed the same way in
// onnxruntime-node and in ORT-web inside Chromium. Its ratio is what SIMD128 (4 lanes, no FMA)
// against the CPU's native vector units costs a GEMM; the whole forward cannot beat it by much,
// since MatMuls are most of its time (ORT's profiler: 73% of the WASM forward of webdit-tiny).
// The weights are graph inputs, so the graph is a few hundred bytes written here (no initializers).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// ---- a minimal protobuf writer: varints, length-delimited fields -------------------------------
const varint = (n) => {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};
const field = (num, wire) => varint((num << 3) | wire);
const vint = (num, n) => [...field(num, 0), ...varint(n)];
const bytes = (num, b) => [...field(num, 2), ...varint(b.length), ...b];
const str = (num, s) => bytes(num, [...Buffer.from(s, 'utf8')]);

const FLOAT = 1;
const valueInfo = (name, dims) =>
  str(1, name).concat(bytes(2, bytes(1, [...vint(1, FLOAT), ...bytes(2, dims.flatMap((d) => bytes(1, vint(1, d))))])));
const node = (inputs, outputs, op) => [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(4, op)];

/** ONNX bytes: x [m,k] -> (x w1 [k,n]) w2 [n,k], `reps` times. */
export function gemmGraph(m, k, n, reps) {
  const nodes = [];
  let x = 'x';
  for (let i = 0; i < reps; i++) {
    nodes.push(node([x, 'w1'], [`h${i}`], 'MatMul'), node([`h${i}`, 'w2'], [`y${i}`], 'MatMul'));
    x = `y${i}`;
  }
  const graph = [
    ...nodes.flatMap((nd) => bytes(1, nd)),
    ...str(2, 'gemm_floor'),
    ...bytes(11, valueInfo('x', [m, k])), ...bytes(11, valueInfo('w1', [k, n])), ...bytes(11, valueInfo('w2', [n, k])),
    ...bytes(12, valueInfo(x, [m, k])),
  ];
  const model = [...vint(1, 8), ...str(2, 'webdit-bench'), ...bytes(7, graph), ...bytes(8, [...str(1, ''), ...vint(2, 17)])];
  return Uint8Array.from(model);
}

/** A model folder holding the GEMM graph as transformer/model.onnx (what the forward rows load). */
export function gemmFolder({ tokens, hidden, mlp, reps }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webdit-gemm-'));
  fs.mkdirSync(path.join(dir, 'transformer'));
  fs.writeFileSync(path.join(dir, 'transformer/model.onnx'), gemmGraph(tokens, hidden, mlp, reps));
  return { dir, gflop: (2 * 2 * tokens * hidden * mlp * reps) / 1e9 };
}
