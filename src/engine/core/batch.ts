/** Batch helpers over [B, ...] float tensors. */
import type { FloatTensor } from './tensor';

/** Rows of `t` picked by `rows` (each an index into dim 0), stacked into a new batch. */
export function gatherRows(t: FloatTensor, rows: number[]): FloatTensor {
  const [B, ...rest] = t.dims;
  const n = t.data.length / B;
  const out = new Float32Array(rows.length * n);
  rows.forEach((r, i) => out.set(t.data.subarray(r * n, (r + 1) * n), i * n));
  return { data: out, dims: [rows.length, ...rest] };
}

/** Row `i` of a batch as a batch of one. */
export function row(t: FloatTensor, i: number): FloatTensor {
  return gatherRows(t, [i]);
}

/** Two copies of `x` back to back on dim 0: the CFG batch [uncond half, cond half] input. */
export function doubleBatch(x: FloatTensor): FloatTensor {
  const data = new Float32Array(x.data.length * 2);
  data.set(x.data, 0);
  data.set(x.data, x.data.length);
  return { data, dims: [x.dims[0] * 2, ...x.dims.slice(1)] };
}
