/**
 * Step 4 of the pipeline (denoise) with every tensor kept in the runtime: on WebGPU the latents,
 * the noise and the text conditioning are uploaded once, the transformer's velocity and the CFG +
 * Euler step (stepGraph.ts) stay GPU buffers, and nothing is read back per step unless a preview
 * is due. The final latents are read once. Same math and step order as the host loop in pipeline.ts.
 */
import type { DeviceOps, DeviceTensor } from './device';
import { doubleBatch } from './batch';
import type { Conditioning, LoadedModel } from './family';
import type { FloatTensor } from './tensor';

export interface DeviceDenoise {
  model: LoadedModel;
  device: DeviceOps;
  /** Starting latents [B, C, h, w] (noise, or the noised init image). */
  latents: FloatTensor;
  /** Conditioning rows as the transformer takes them ([2B] with CFG). */
  cond: Conditioning;
  cfg: boolean;
  guidanceScale: number;
  sigmas: Float32Array;
  timesteps: Float32Array;
  /** First step (image-to-image starts later), and the number of steps. */
  k: number;
  N: number;
  /** Called before each step: yields to the event loop and throws when cancelled. */
  beforeStep(i: number): Promise<void>;
  /** After each step; `x0` (the preview latents x0_hat) only where `wantPreview(step)` said so. */
  afterStep(step: number, x0?: FloatTensor): Promise<void>;
  wantPreview(step: number): boolean;
}

const asFloat = (t: string | undefined): 'float32' | 'float16' => (t === 'float16' ? 'float16' : 'float32');

/** Runs the denoise loop on the device; returns the final latents, read back once. */
export async function denoiseOnDevice(a: DeviceDenoise): Promise<Float32Array> {
  const { model, device, cfg, sigmas, timesteps } = a;
  const runner = model.transformer;
  const held = new Set<DeviceTensor>();
  const hold = <T extends DeviceTensor>(t: T) => (held.add(t), t);
  const drop = (t: DeviceTensor | undefined) => {
    if (t && held.delete(t)) t.dispose();
  };
  try {
    // which transformer input takes the latents (its dtype decides the step graph's cast)
    const probe = { dims: a.latents.dims };
    const probeFeeds = model.transformerFeeds(probe, 0, {});
    const latentInput = Object.keys(probeFeeds).find((k) => probeFeeds[k] === probe);
    const inputType = asFloat(latentInput ? runner.inputs.get(latentInput)?.type : undefined);

    const cond: Record<string, DeviceTensor> = {};
    for (const [name, t] of Object.entries(a.cond)) cond[name] = hold(await device.upload(t, runner.inputs.get(name)?.type ?? 'float32'));
    let latents = hold(await device.upload(a.latents, 'float32'));
    // the transformer's input: both CFG halves, in its dtype (the latents themselves when they match)
    let input = cfg || inputType !== 'float32' ? hold(await device.upload(cfg ? doubleBatch(a.latents) : a.latents, inputType)) : latents;

    for (let i = a.k; i < a.N; i++) {
      await a.beforeStep(i);
      if (sigmas[i + 1] === sigmas[i]) {
        await a.afterStep(i + 1); // a step from sigma 0 to 0 moves nothing (as in the host loop)
        continue;
      }
      const out = await device.run(model.transformerFeeds(input, timesteps[i], cond));
      const velocity = out[model.velocityOutput];
      for (const [name, t] of Object.entries(out)) if (name !== model.velocityOutput) t.dispose();
      if (!velocity) throw new Error(`transformer has no output "${model.velocityOutput}" (it gave ${Object.keys(out).join(', ')}).`);
      hold(velocity);
      const stepper = await device.stepper({ batch: a.latents.dims[0], latentDims: a.latents.dims.slice(1), cfg, velocityType: asFloat(velocity.type), inputType });
      const step = i + 1;
      const preview = a.wantPreview(step);
      const next = await stepper.step(latents, velocity, a.guidanceScale, sigmas[i], sigmas[i + 1], preview);
      drop(velocity);
      if (input !== latents) drop(input);
      drop(latents);
      latents = hold(next.latents);
      input = next.modelInput ? hold(next.modelInput) : latents;
      // the step is done on the device before it is reported (progress, the watchdog, a cancel within one step)
      await device.sync();
      let x0: FloatTensor | undefined;
      if (next.x0) {
        hold(next.x0);
        x0 = await device.read(next.x0);
        drop(next.x0);
      }
      await a.afterStep(step, x0);
    }
    return (await device.read(latents)).data;
  } finally {
    for (const t of held) t.dispose();
    held.clear();
  }
}
