/**
 * FlowMatchEulerDiscreteScheduler, as diffusers does it (DESIGN.md §3). Pure functions: the
 * pipeline owns the loop and the step index.
 */

/** SD3's time shift: pushes sigmas towards the noisy end for s > 1. */
export function shiftSigma(x: number, shift: number): number {
  return (shift * x) / (1 + (shift - 1) * x);
}

/**
 * Sigmas for `numInferenceSteps` steps, with the trailing 0: length N + 1. The training sigmas are
 * shifted once at init (sigma_min = shift(1/1000)), then the linspace is shifted again, exactly as
 * diffusers does, so a model trained with diffusers' scheduler samples the same here. `sigmaMin`
 * overrides where the linspace ends (diffusers' ZImagePipeline sets the scheduler's sigma_min to 0).
 */
export function getSigmas(numInferenceSteps: number, shift: number, numTrainTimesteps = 1000, sigmaMin = shiftSigma(1 / numTrainTimesteps, shift)): Float32Array {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new RangeError(`numInferenceSteps must be an integer >= 1, got ${numInferenceSteps}`);
  }
  if (!(shift > 0)) throw new RangeError(`shift must be > 0, got ${shift}`);
  const sigmaMax = 1;
  const out = new Float32Array(numInferenceSteps + 1);
  for (let i = 0; i < numInferenceSteps; i++) {
    // numpy's linspace: i * step + start, with the last point exactly `stop`
    const step = (sigmaMin - sigmaMax) / (numInferenceSteps - 1);
    const t = numInferenceSteps === 1 ? sigmaMax : i === numInferenceSteps - 1 ? sigmaMin : i * step + sigmaMax;
    out[i] = shiftSigma(t, shift);
  }
  out[numInferenceSteps] = 0;
  return out;
}

/** The model's timestep input for each sigma (sigma * 1000), without the trailing 0. */
export function getTimesteps(sigmas: Float32Array, numTrainTimesteps = 1000): Float32Array {
  return sigmas.slice(0, -1).map((s) => s * numTrainTimesteps);
}

/** One Euler step of the flow ODE: x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v_i, in place. */
export function eulerStep(latents: Float32Array, velocity: Float32Array, sigma: number, sigmaNext: number): void {
  const dt = sigmaNext - sigma;
  for (let k = 0; k < latents.length; k++) latents[k] += dt * velocity[k];
}

