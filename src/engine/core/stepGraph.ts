/**
 * Classifier-free guidance + one Euler step (DESIGN.md §3) as an ONNX graph, so on WebGPU the
 * latents never leave the GPU between transformer passes:
 *
 *   v         = v_uncond + g (v_cond - v_uncond)       (v = velocity itself without CFG)
 *   latents'  = latents + (sigma_next - sigma) v
 *   x0_hat    = latents - sigma v                      (the preview; fetched only when wanted)
 *   model_in  = [latents', latents'] with CFG          (the next transformer input, in its dtype)
 *
 * Latents are kept in float32 whatever the transformer takes; a float16 graph gets casts.
 */
import { buildModel, type ElemType, type NodeSpec, type ValueSpec } from './onnxBuilder';

export interface StepSpec {
  /** Images in the batch (B); the velocity has 2B rows with CFG. */
  batch: number;
  /** [C, h, w] of one latent image. */
  latentDims: readonly number[];
  cfg: boolean;
  /** dtype of the transformer's velocity output. */
  velocityType: 'float32' | 'float16';
  /** dtype of the transformer's latent input. */
  inputType: 'float32' | 'float16';
}

/** Names of the step graph's inputs and outputs. */
export const STEP = {
  latents: 'latents',
  velocity: 'velocity',
  guidance: 'guidance',
  sigma: 'sigma',
  sigmaNext: 'sigma_next',
  next: 'latents_next',
  modelInput: 'model_input',
  x0: 'x0_hat',
} as const;

/** Whether the step graph has a model_input output (otherwise the next latents are the transformer's input as they are). */
export function hasModelInput(spec: StepSpec): boolean {
  return spec.cfg || spec.inputType !== 'float32';
}

/** A key that tells step graphs apart (one session per key). */
export function stepKey(spec: StepSpec): string {
  return [spec.batch, ...spec.latentDims, spec.cfg ? 'cfg' : 'nocfg', spec.velocityType, spec.inputType].join('/');
}

/** The step graph's ONNX bytes, with static shapes. */
export function buildStepGraph(spec: StepSpec): Uint8Array {
  const { batch: B, latentDims, cfg } = spec;
  if (!Number.isInteger(B) || B < 1 || latentDims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new RangeError(`step graph: bad shape batch ${B}, latent [${latentDims}]`);
  }
  const x = [B, ...latentDims];
  const scalar = (name: string): ValueSpec => ({ name, type: 'float32', shape: [1] });
  const nodes: NodeSpec[] = [];
  const f16 = (t: ElemType) => t === 'float16';

  let velocity: string = STEP.velocity;
  if (f16(spec.velocityType)) {
    nodes.push({ op: 'Cast', inputs: [velocity], outputs: ['velocity_f32'], attributes: { to: { int: 1 } } });
    velocity = 'velocity_f32';
  }
  let v = velocity;
  if (cfg) {
    // opset 17 Split without sizes: equal halves [uncond x B, cond x B]
    nodes.push({ op: 'Split', inputs: [velocity], outputs: ['v_uncond', 'v_cond'], attributes: { axis: { int: 0 } } });
    nodes.push({ op: 'Sub', inputs: ['v_cond', 'v_uncond'], outputs: ['v_diff'] });
    nodes.push({ op: 'Mul', inputs: ['v_diff', STEP.guidance], outputs: ['v_scaled'] });
    nodes.push({ op: 'Add', inputs: ['v_uncond', 'v_scaled'], outputs: ['v_guided'] });
    v = 'v_guided';
  }
  nodes.push({ op: 'Sub', inputs: [STEP.sigmaNext, STEP.sigma], outputs: ['dt'] });
  nodes.push({ op: 'Mul', inputs: [v, 'dt'], outputs: ['v_dt'] });
  nodes.push({ op: 'Add', inputs: [STEP.latents, 'v_dt'], outputs: [STEP.next] });
  nodes.push({ op: 'Mul', inputs: [v, STEP.sigma], outputs: ['v_sigma'] });
  nodes.push({ op: 'Sub', inputs: [STEP.latents, 'v_sigma'], outputs: [STEP.x0] });

  const outputs: ValueSpec[] = [
    { name: STEP.next, type: 'float32', shape: x },
    { name: STEP.x0, type: 'float32', shape: x },
  ];
  if (hasModelInput(spec)) {
    let mi: string = STEP.next;
    if (cfg) {
      nodes.push({ op: 'Concat', inputs: [STEP.next, STEP.next], outputs: [f16(spec.inputType) ? 'model_input_f32' : STEP.modelInput], attributes: { axis: { int: 0 } } });
      mi = f16(spec.inputType) ? 'model_input_f32' : STEP.modelInput;
    }
    if (f16(spec.inputType)) nodes.push({ op: 'Cast', inputs: [mi], outputs: [STEP.modelInput], attributes: { to: { int: 10 } } });
    outputs.push({ name: STEP.modelInput, type: spec.inputType, shape: [cfg ? 2 * B : B, ...latentDims] });
  }

  return buildModel({
    name: 'webdit_cfg_euler_step',
    opset: 17,
    nodes,
    inputs: [
      { name: STEP.latents, type: 'float32', shape: x },
      { name: STEP.velocity, type: spec.velocityType, shape: [cfg ? 2 * B : B, ...latentDims] },
      ...(cfg ? [scalar(STEP.guidance)] : []),
      scalar(STEP.sigma),
      scalar(STEP.sigmaNext),
    ],
    outputs,
  });
}
