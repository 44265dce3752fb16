import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { graphFacts } from './onnxFacts';

// golden from the onnx package: training/replicas/graph_facts.py
const golden = JSON.parse(fs.readFileSync(path.resolve('src/engine/core/__fixtures__/graph-facts.json'), 'utf8')) as {
  graphs: Record<string, { largest_initializer: number; float16_io: string[] }>;
};

describe('graphFacts: largest weight and float16 I/O from the graph file alone', () => {
  const entries = Object.entries(golden.graphs);

  it('covers inline and external weights, fp32 and fp16 contracts', () => {
    expect(entries.length).toBeGreaterThan(20);
    expect(entries.some(([, g]) => g.float16_io.length > 0)).toBe(true);
    expect(entries.some(([p]) => fs.existsSync(path.resolve(p) + '_data') || fs.existsSync(path.resolve(p) + '.data'))).toBe(true);
  });

  it.each(entries)('%s', (file, want) => {
    const got = graphFacts(new Uint8Array(fs.readFileSync(path.resolve(file))));
    expect(got.largestInitializer).toBe(want.largest_initializer);
    expect([...got.float16Io].sort()).toEqual([...want.float16_io].sort());
  });
});
