/**
 * The load's last stage, so the user's first image runs at the speed of the later ones:
 * 1. a 1-step image at the defaults runs every graph once (text encoder, the transformer at the CFG
 *    batch, the step graph on WebGPU, the VAE decoder): kernels compiled, memory planned;
 * 2. on WASM, the transformer's CFG step again until it stops getting faster. V8 runs WebAssembly
 *    first as baseline code and optimises a function only after it has run for a while (dynamic
 *    tiering); ORT's kernels reach full speed only after about a dozen forwards (onnxruntime-web in
 *    Node, 1 thread: 1.6 s, 1.3 s, 1.0 s, ... then 0.17 s from the 15th), and without this the first
 *    image's steps pay for it. Bounded by a time budget, so a large model runs one or two at most.
 */
import type { ResolvedGenerateParams } from '../schema';
import { doubleBatch } from './batch';
import type { LoadedModel } from './family';
import { usesGuidance } from './guidance';
import { initialLatents } from './noise';
import { runPipeline } from './pipeline';

/**
 * Whether forward times (in order) have settled: at least `min` of them, the last two within 10% of
 * the fastest so far. (A few runs before the check: optimised code arrives from background threads
 * after the hot functions have run, so the first forwards can be equally slow before they speed up.)
 */
export function settled(times: readonly number[], min = 4): boolean {
  if (times.length < Math.max(2, min)) return false;
  const best = Math.min(...times);
  return times.slice(-2).every((t) => t <= best * 1.1);
}

export interface WarmUpReport {
  /** ms of each extra transformer forward (WASM), in order. */
  forwards: number[];
}

export async function warmUp(model: LoadedModel, params: ResolvedGenerateParams, backend: 'webgpu' | 'wasm', signal: AbortSignal, budgetMs = 3000): Promise<WarmUpReport> {
  const t0 = performance.now();
  await runPipeline(model, params, undefined, { signal });
  const forwards: number[] = [];
  if (backend !== 'wasm') return { forwards };

  // the first step of the same image, as the pipeline feeds it
  const cfg = usesGuidance(params.guidanceScale);
  const cond = await model.encodePrompts(cfg ? [params.negativePrompt, params.prompt] : [params.prompt]);
  const [C, h, w] = model.latentShape(params.width, params.height);
  const x = { data: initialLatents(params.seed, [1, C, h, w]), dims: [1, C, h, w] };
  const feeds = model.transformerFeeds(cfg ? doubleBatch(x) : x, 1000, cond);
  while (!settled(forwards) && performance.now() - t0 < budgetMs) {
    if (signal.aborted) break;
    const t = performance.now();
    await model.transformer.run(feeds);
    forwards.push(performance.now() - t);
  }
  return { forwards };
}
