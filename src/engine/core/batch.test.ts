import { describe, expect, it } from 'vitest';
import { hasFixedBatchOne, rowByRow } from './batch';
import type { FloatTensor, GraphRunner, HostTensor } from './tensor';

/** A graph of batch 1 that doubles x and adds the timestep: y = 2x + t. It refuses any other batch. */
function fixedBatchGraph(calls: number[]): GraphRunner {
  return {
    inputs: new Map([['x', { type: 'float32', shape: [1, 3] }], ['t', { type: 'float32', shape: [1] }]]),
    outputNames: ['y'],
    dispose: async () => undefined,
    async run(feeds: Record<string, HostTensor>): Promise<Record<string, FloatTensor>> {
      const x = feeds.x, t = feeds.t;
      if (x.dims[0] !== 1) throw new Error(`batch ${x.dims[0]} given to a batch-1 graph`);
      calls.push(Number(t.data[0]));
      return { y: { data: Float32Array.from(x.data as Float32Array, (v) => 2 * v + Number(t.data[0])), dims: [1, 3] } };
    },
  };
}

describe('graphs exported with a fixed batch of 1', () => {
  it('are recognised from the shapes the session declares', () => {
    expect(hasFixedBatchOne(fixedBatchGraph([]))).toBe(true);
    const dynamic = { ...fixedBatchGraph([]), inputs: new Map([['x', { type: 'float32', shape: ['batch', 3] }]]) };
    expect(hasFixedBatchOne(dynamic)).toBe(false);
    expect(hasFixedBatchOne({ ...fixedBatchGraph([]), inputs: new Map([['x', { type: undefined, shape: undefined }]]) })).toBe(false);
  });

  it('run a batch of 3 as three passes and stack the outputs in order', async () => {
    const calls: number[] = [];
    const r = rowByRow(fixedBatchGraph(calls));
    const out = await r.run({ x: { data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), dims: [3, 3] }, t: { data: Float32Array.from([10, 20, 30]), dims: [3] } });
    expect(calls).toEqual([10, 20, 30]);
    expect(out.y.dims).toEqual([3, 3]);
    expect(Array.from(out.y.data)).toEqual([12, 14, 16, 28, 30, 32, 44, 46, 48]);
  });
});
