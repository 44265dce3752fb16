import { describe, expect, it } from 'vitest';
import { formatBound, silenceBound, StepTimes, WATCHDOG } from './watchdog';

describe('silenceBound: how long the worker may stay silent', () => {
  it('a run may go 20 times its expected step, never less than 10 s', () => {
    expect(silenceBound('step', 45)).toBe(10_000); // WASM, 64x64: 20 x 45 ms = 0.9 s, so the floor
    expect(silenceBound('step', 500)).toBe(10_000);
    expect(silenceBound('step', 501)).toBe(10_020);
    expect(silenceBound('step', 8_000)).toBe(160_000); // SwiftShader WebGPU: 8 s a step
  });

  it('a run before any step was timed gets 2 minutes; loads get longer bounds than runs', () => {
    expect(silenceBound('step', null)).toBe(120_000);
    // before the first step and after the last: encoding, decoding, kernels compiled for a new shape
    expect(silenceBound('run-edge', 45)).toBe(120_000);
    expect(silenceBound('run-edge', 8_000)).toBe(160_000);
    expect(silenceBound('run-edge', null)).toBe(120_000);
    expect(silenceBound('start', null)).toBe(60_000);
    expect(silenceBound('download', null)).toBe(120_000);
    expect(silenceBound('prepare', null)).toBe(300_000);
    expect(silenceBound('request', null)).toBe(10_000);
  });

  it('takes other limits (the supervisor tests shrink them)', () => {
    expect(silenceBound('step', 100, { ...WATCHDOG, minMs: 1_000, stepFactor: 5 })).toBe(1_000);
    expect(silenceBound('step', 300, { ...WATCHDOG, minMs: 1_000, stepFactor: 5 })).toBe(1_500);
  });
});

describe('StepTimes: the slowest step per pixel', () => {
  it('scales the slowest step seen to the next run\'s images x pixels', () => {
    const t = new StepTimes();
    expect(t.expected(4096)).toBeNull();
    t.observe(40, 64 * 64); // a 64x64 step of 40 ms
    t.observe(30, 64 * 64); // a faster one does not lower it
    expect(t.expected(64 * 64)).toBe(40);
    expect(t.expected(4 * 64 * 64)).toBe(160); // a batch of 4
    expect(t.expected(128 * 128)).toBe(160); // 4x the pixels
    t.observe(200, 2 * 64 * 64); // a slower batch of 2: 100 ms per image
    expect(t.expected(64 * 64)).toBe(100);
  });

  it('the warm-up stands in until real steps are timed; a new load starts over', () => {
    const t = new StepTimes();
    t.reset(8_000, 64 * 64); // SwiftShader: the warm-up compiles every kernel
    expect(t.expected(64 * 64)).toBe(8_000);
    t.observe(900, 64 * 64); // the real steps are faster: they replace the estimate
    expect(t.expected(64 * 64)).toBe(900);
    t.reset(50, 64 * 64); // another backend loaded: its own warm-up
    expect(t.expected(64 * 64)).toBe(50);
    t.reset(null, 64 * 64);
    expect(t.expected(64 * 64)).toBeNull();
  });

  it('ignores nonsense timings', () => {
    const t = new StepTimes();
    t.observe(0, 100);
    t.observe(-5, 100);
    t.observe(Number.NaN, 100);
    t.observe(10, 0);
    expect(t.expected(100)).toBeNull();
  });
});

it('formatBound reads like a person would say it', () => {
  expect(formatBound(1234)).toBe('1.2 s');
  expect(formatBound(10_000)).toBe('10.0 s');
  expect(formatBound(10_449)).toBe('10.4 s');
  expect(formatBound(160_400)).toBe('160 s');
});
