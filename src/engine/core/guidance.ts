/**
 * Classifier-free guidance. The transformer runs once on a batch of 2 ([uncond, cond]); the two
 * halves are combined as v = v_uncond + g (v_cond - v_uncond). At g <= 1 the uncond half is skipped.
 */

export function usesGuidance(guidanceScale: number): boolean {
  return guidanceScale > 1;
}

/** Combine a batched output [2, ...] laid out [uncond, cond] into one velocity. */
export function applyGuidance(batched: Float32Array, guidanceScale: number): Float32Array {
  const n = batched.length / 2;
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const u = batched[k];
    out[k] = u + guidanceScale * (batched[n + k] - u);
  }
  return out;
}

/** Two copies of `x` back to back: the batch-of-2 input for a CFG forward. */
export function duplicateBatch(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length * 2);
  out.set(x, 0);
  out.set(x, x.length);
  return out;
}

