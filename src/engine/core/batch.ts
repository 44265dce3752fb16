/** Batch helpers over [B, ...] float tensors. */
import type { FloatTensor, GraphRunner, HostTensor } from './tensor';

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

/** Rows [from, to) of a host tensor of any dtype. */
function sliceRows(t: HostTensor, from: number, to: number): HostTensor {
  const n = t.data.length / t.dims[0];
  return { data: t.data.subarray(from * n, to * n), dims: [to - from, ...t.dims.slice(1)] } as HostTensor;
}

/**
 * A graph exported with a fixed batch of 1 (TensorStack's SD3 exports): run each row on its own and
 * stack the outputs, so CFG's batch of 2B becomes 2B passes instead of an error.
 */
export function rowByRow(runner: GraphRunner): GraphRunner {
  return {
    inputs: runner.inputs,
    outputNames: runner.outputNames,
    dispose: () => runner.dispose(),
    async run(feeds) {
      const B = Object.values(feeds)[0]?.dims[0] ?? 1;
      if (B <= 1) return runner.run(feeds);
      const parts: Record<string, FloatTensor>[] = [];
      for (let b = 0; b < B; b++) parts.push(await runner.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, sliceRows(t, b, b + 1)]))));
      return Object.fromEntries(
        Object.keys(parts[0]).map((k) => {
          const first = parts[0][k];
          const data = new Float32Array(first.data.length * B);
          parts.forEach((p, b) => data.set(p[k].data, b * first.data.length));
          return [k, { data, dims: [B, ...first.dims.slice(1)] }];
        }),
      );
    },
  };
}

/** Whether every input that has a batch axis declares it as the number 1. */
export function hasFixedBatchOne(runner: GraphRunner): boolean {
  const shapes = [...runner.inputs.values()].map((i) => i.shape).filter((s): s is (number | string)[] => !!s && s.length > 0);
  return shapes.length > 0 && shapes.every((s) => s[0] === 1);
}
