import { describe, expect, it } from 'vitest';
import { eulerStep, getSigmas, getTimesteps, shiftSigma } from './scheduler';
import { loadFixtures } from '../testing/fixtures';

describe('flow-matching sigmas', () => {
  it("matches DESIGN.md's check values for 28 steps at shift 3", () => {
    const s = getSigmas(28, 3);
    expect(s.length).toBe(29);
    const head = [1.0, 0.98738, 0.97411, 0.96013];
    head.forEach((v, i) => expect(s[i]).toBeCloseTo(v, 5));
    const tail = [0.19983, 0.11091, 0.0089286, 0];
    tail.forEach((v, i) => expect(s[25 + i]).toBeCloseTo(v, 5));
  });

  it('matches the Python scheduler (training/sample.py) bit for bit', () => {
    for (const { steps, shift, sigmas } of loadFixtures().sigmas) {
      expect(Array.from(getSigmas(steps, shift)), `steps ${steps} shift ${shift}`).toEqual(sigmas.map((x) => Math.fround(x)));
    }
  });

  it("gives the model's timesteps from DESIGN.md's check values, without the final zero", () => {
    const t = getTimesteps(getSigmas(28, 3));
    expect(t.length).toBe(28);
    [1000, 987.38, 974.11, 960.13].forEach((v, i) => expect(t[i]).toBeCloseTo(v, 1));
    expect(t[27]).toBeCloseTo(8.9286, 3);
  });

  it('rejects step counts and shifts that make no schedule', () => {
    expect(() => getSigmas(0, 1)).toThrow(/numInferenceSteps/);
    expect(() => getSigmas(2.5, 1)).toThrow(/numInferenceSteps/);
    expect(() => getSigmas(4, 0)).toThrow(/shift/);
  });

  it('shift 1 is the identity and larger shifts stay noisier', () => {
    expect(shiftSigma(0.3, 1)).toBeCloseTo(0.3, 12);
    expect(shiftSigma(0.3, 3)).toBeGreaterThan(0.3);
  });
});

describe('Euler step', () => {
  it('moves along the velocity by the sigma difference (a full step lands on x - sigma v)', () => {
    const x = new Float32Array([1, -2, 0.5]);
    const v = new Float32Array([0.5, 1, -1]);
    eulerStep(x, v, 0.8, 0);
    expect(Array.from(x)).toEqual([1 - 0.8 * 0.5, -2 - 0.8, 0.5 + 0.8].map(Math.fround));
  });
});
