/**
 * GPU-resident sampling, tested in Node on onnxruntime-web's WASM build: the same device code path
 * as WebGPU (tensors kept inside the runtime, CFG + Euler as a built ONNX graph), with the tensors
 * in ORT's heap instead of GPU buffers. The step graph against the host maths (guidance.ts +
 * scheduler.ts), the whole pipeline against PyTorch's golden latents and the host path, and the
 * tensors it holds (none left after a run, a cancel or an error).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webdit } from '../families/webdit';
import { familyContext, resolveParams } from './engine';
import { FileStore } from './files';
import { openFolder } from './folder';
import { gpuTraffic } from './device';
import { applyGuidance } from './guidance';
import { initialLatents } from './noise';
import { runPipeline } from './pipeline';
import { eulerStep } from './scheduler';
import { createRunner } from './sessions';
import { buildStepGraph, STEP, type StepSpec } from './stepGraph';
import { fromHalfArray, toHalfArray } from './float16';
import { MemoryStorage } from './storage';
import type { LoadedModel } from './family';
import type { FloatTensor } from './tensor';
import { f32, fileFetcher, loadFixtures, MODEL_URL, maxAbsDiff, psnr, rgbOf, u8, type FixtureRun } from '../testing/fixtures';
import type { GeneratedImage } from '../protocol';

const fx = loadFixtures();

/** The host maths the step graph replaces: guidance.ts, then scheduler.ts's Euler step and x0_hat. */
function hostStep(latents: Float32Array, velocity: Float32Array, g: number, cfg: boolean, sigma: number, sigmaNext: number) {
  const v = cfg ? applyGuidance(velocity, g) : velocity;
  const x0 = latents.map((x, j) => x - sigma * v[j]);
  const next = latents.slice();
  eulerStep(next, v, sigma, sigmaNext);
  return { next, x0 };
}

describe('the CFG + Euler step graph (built in code)', () => {
  const cases: StepSpec[] = [
    { batch: 1, latentDims: [8, 16, 16], cfg: true, velocityType: 'float32', inputType: 'float32' },
    { batch: 3, latentDims: [4, 5, 7], cfg: true, velocityType: 'float32', inputType: 'float32' },
    { batch: 2, latentDims: [8, 16, 16], cfg: false, velocityType: 'float32', inputType: 'float32' },
    { batch: 2, latentDims: [16, 8, 8], cfg: true, velocityType: 'float16', inputType: 'float16' },
  ];
  it.each(cases.map((c) => [`B=${c.batch} [${c.latentDims}] ${c.cfg ? 'CFG' : 'no CFG'} ${c.velocityType}`, c] as const))('%s equals the host maths', async (_, spec) => {
    const runner = await createRunner({ name: 'step', model: buildStepGraph(spec) }, 'wasm', { inputs: [STEP.latents, STEP.velocity], outputs: [STEP.next, STEP.x0] });
    const per = spec.latentDims.reduce((a, b) => a * b, 1);
    const [C, h, w] = spec.latentDims;
    const x = initialLatents(11, [spec.batch, C, h, w]);
    let velocity = initialLatents(12, [spec.cfg ? 2 * spec.batch : spec.batch, C, h, w]);
    // float16 in: the host maths sees the values the graph sees
    if (spec.velocityType === 'float16') velocity = fromHalfArray(toHalfArray(velocity));
    const [g, sigma, sigmaNext] = [4.5, 0.9741, 0.9601];
    const s = (v: number) => ({ data: Float32Array.of(v), dims: [1] });
    const feeds = { [STEP.latents]: { data: x, dims: [spec.batch, ...spec.latentDims] }, [STEP.velocity]: { data: velocity, dims: [velocity.length / per, ...spec.latentDims] }, [STEP.sigma]: s(sigma), [STEP.sigmaNext]: s(sigmaNext), ...(spec.cfg ? { [STEP.guidance]: s(g) } : {}) };
    const out = await runner.run(feeds);
    const want = hostStep(x, velocity, g, spec.cfg, Math.fround(sigma), Math.fround(sigmaNext));
    // float32 in the graph vs float64 in JS: a few ulps of values of size ~10
    expect(maxAbsDiff(out[STEP.next].data, want.next)).toBeLessThan(2e-5);
    expect(maxAbsDiff(out[STEP.x0].data, want.x0)).toBeLessThan(2e-5);
    expect(out[STEP.next].dims).toEqual([spec.batch, ...spec.latentDims]);
    if (spec.cfg || spec.inputType !== 'float32') {
      const mi = out[STEP.modelInput];
      expect(mi.dims).toEqual([spec.cfg ? 2 * spec.batch : spec.batch, ...spec.latentDims]);
      const n = want.next.length;
      const tol = spec.inputType === 'float16' ? 1e-2 : 0;
      expect(maxAbsDiff(mi.data.subarray(0, n), out[STEP.next].data)).toBeLessThanOrEqual(tol);
      if (spec.cfg) expect(maxAbsDiff(mi.data.subarray(n), out[STEP.next].data)).toBeLessThanOrEqual(tol);
    } else {
      expect(runner.outputNames).not.toContain(STEP.modelInput);
    }
    await runner.dispose();
  });

  it('refuses a shape it cannot build', () => {
    expect(() => buildStepGraph({ batch: 0, latentDims: [8, 16, 16], cfg: true, velocityType: 'float32', inputType: 'float32' })).toThrow(/bad shape/);
  });
});

describe('the pipeline with tensors kept in the runtime (the WebGPU path, on WASM)', () => {
  let resident: LoadedModel;
  let host: LoadedModel;

  beforeAll(async () => {
    const store = new FileStore(new MemoryStorage(), fileFetcher);
    const signal = new AbortController().signal;
    const folder = await openFolder(MODEL_URL, store, fileFetcher, signal);
    resident = await webdit.load(familyContext(store, folder, 'wasm', signal, () => undefined, { resident: true }));
    host = await webdit.load(familyContext(store, folder, 'wasm', signal, () => undefined));
  });
  afterAll(async () => {
    await resident?.dispose();
    await host?.dispose();
  });

  async function run(model: LoadedModel, r: FixtureRun, extra: { numImagesPerPrompt?: number; previewEvery?: number; signal?: AbortSignal } = {}) {
    const params = resolveParams(
      { prompt: r.prompt, negativePrompt: r.negativePrompt, seed: r.seed, numInferenceSteps: r.numInferenceSteps, guidanceScale: r.guidanceScale, numImagesPerPrompt: extra.numImagesPerPrompt ?? 1, strength: 0.6, previewEvery: extra.previewEvery ?? 0 },
      { id: 'm', name: 'm', family: 'webdit', ...model.info },
    );
    const images: { image: GeneratedImage; latents: Float32Array }[] = [];
    const previews: { index: number; step: number; image: GeneratedImage }[] = [];
    const steps: number[] = [];
    const out = await runPipeline(model, params, undefined, {
      signal: extra.signal,
      onImage: (i, image, latents) => (images[i] = { image, latents }),
      onPreview: (index, step, _, image) => previews.push({ index, step, image }),
      onStep: (s) => steps.push(s),
    });
    return { images, previews, steps, out };
  }

  it('uses the device path only where asked for', () => {
    expect(resident.transformer.device?.location).toBe('cpu');
    expect(host.transformer.device).toBeUndefined();
  });

  it.each(fx.runs.map((r, i) => [i, r] as const))('golden run %i matches PyTorch and the host path, and holds no tensor afterwards', async (_, r) => {
    const dev = await run(resident, r);
    const ref = await run(host, r);
    expect(dev.steps).toEqual(ref.steps);
    expect(maxAbsDiff(dev.images[0].latents, f32(r.latents))).toBeLessThanOrEqual(1e-3);
    expect(maxAbsDiff(dev.images[0].latents, ref.images[0].latents)).toBeLessThanOrEqual(1e-4);
    expect(psnr(rgbOf(dev.images[0].image.pixels), u8(r.rgb))).toBeGreaterThanOrEqual(40);
    expect(psnr(rgbOf(dev.images[0].image.pixels), rgbOf(ref.images[0].image.pixels))).toBeGreaterThanOrEqual(50);
    expect(dev.out.timings.liveDeviceTensors).toBe(0);
    expect(gpuTraffic.liveTensors).toBe(0);
  });

  it('a batch of 3 with previews: each image and each preview equals the host path, and nothing is left held', async () => {
    const r = { ...fx.runs[0], numInferenceSteps: 4 };
    const dev = await run(resident, r, { numImagesPerPrompt: 3, previewEvery: 2 });
    const ref = await run(host, r, { numImagesPerPrompt: 3, previewEvery: 2 });
    expect(dev.images).toHaveLength(3);
    for (let b = 0; b < 3; b++) expect(maxAbsDiff(dev.images[b].latents, ref.images[b].latents), `image ${b}`).toBeLessThanOrEqual(1e-4);
    // previews at step 2 (not at the last step), one per image
    expect(dev.previews.map((p) => [p.index, p.step])).toEqual([[0, 2], [1, 2], [2, 2]]);
    expect(dev.previews.map((p) => [p.index, p.step])).toEqual(ref.previews.map((p) => [p.index, p.step]));
    dev.previews.forEach((p, j) => expect(psnr(rgbOf(p.image.pixels), rgbOf(ref.previews[j].image.pixels))).toBeGreaterThanOrEqual(50));
    expect(gpuTraffic.liveTensors).toBe(0);
  });

  it('a cancel midway frees every tensor the run held', async () => {
    const ac = new AbortController();
    const r = { ...fx.runs[0], numInferenceSteps: 10 };
    const params = resolveParams({ prompt: r.prompt, negativePrompt: r.negativePrompt, seed: 1, numInferenceSteps: 10, guidanceScale: 4, numImagesPerPrompt: 2, strength: 0.6, previewEvery: 0 }, { id: 'm', name: 'm', family: 'webdit', ...resident.info });
    const steps: number[] = [];
    let heldMidway = 0;
    const done = runPipeline(resident, params, undefined, {
      signal: ac.signal,
      onStep: (s) => {
        steps.push(s);
        if (s === 3) {
          heldMidway = gpuTraffic.liveTensors;
          ac.abort();
        }
      },
    });
    await expect(done).rejects.toThrow(/at step 3 of 10/);
    expect(heldMidway).toBeGreaterThan(0); // latents, model input and conditioning were held
    expect(steps).toEqual([1, 2, 3]);
    expect(gpuTraffic.liveTensors).toBe(0);
  });

  it('a transformer that fails midway frees every tensor too', async () => {
    const broken: LoadedModel = { ...resident, velocityOutput: 'no_such_output' };
    await expect(run(broken, { ...fx.runs[2] })).rejects.toThrow(/no output "no_such_output"/);
    expect(gpuTraffic.liveTensors).toBe(0);
  });

  it('uploads as float16 where a graph declares it, and reads back float32 values', async () => {
    const x: FloatTensor = { data: initialLatents(3, [1, 8, 16, 16]), dims: [1, 8, 16, 16] };
    const dev = resident.transformer.device!;
    const up = await dev.upload(x, 'float16');
    expect(up.type).toBe('float16');
    const back = await dev.read(up);
    expect(maxAbsDiff(back.data, x.data)).toBeLessThan(4e-3);
    up.dispose();
    expect(gpuTraffic.liveTensors).toBe(0);
  });
});
