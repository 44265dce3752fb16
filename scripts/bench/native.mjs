// Native onnxruntime-node (the CPU build in the npm package: MLAS with AVX2/AVX-512) forward of the
// transformer: the floor the browser is measured against.
import path from 'node:path';
import * as ort from 'onnxruntime-node';

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Median ms of `runs` forwards after `warmup` untimed ones, with `threads` intra-op threads. */
export async function nativeForward(modelDir, graph, feeds, threads, { warmup = 5, runs = 30 } = {}) {
  const session = await ort.InferenceSession.create(path.join(modelDir, graph.rel), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const inputs = Object.fromEntries(feeds.map((f) => [f.name, new ort.Tensor(f.type, f.data, f.dims)]));
  for (let i = 0; i < warmup; i++) await session.run(inputs);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run(inputs);
    times.push(performance.now() - t);
  }
  await session.release();
  return { ms: median(times), min: Math.min(...times), runs };
}
