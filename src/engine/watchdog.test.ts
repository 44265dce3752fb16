import { describe, expect, it } from 'vitest';
import { formatBound, silenceBound, StepTimes, WATCHDOG } from './watchdog';

describe('silenceBound: how long the worker may stay silent', () => {
  it('a run may go 20 times its expected step, never less than 10 s', () => {
    expect(silenceBound('generate', 45)).toBe(10_000); // WASM, 64x64: 20 x 45 ms = 0.9 s, so the floor
    expect(silenceBound('generate', 500)).toBe(10_000);
    expect(silenceBound('generate', 501)).toBe(10_020);
    expect(silenceBound('generate', 8_000)).toBe(160_000); // SwiftShader WebGPU: 8 s a step
  });

  it('a run before any step was timed gets 2 minutes; loads get longer bounds than runs', () => {
    expect(silenceBound('generate', null)).toBe(120_000);
    expect(silenceBound('start', null)).toBe(60_000);
    expect(silenceBound('download', null)).toBe(120_000);
    expect(silenceBound('prepare', null)).toBe(300_000);
    expect(silenceBound('request', null)).toBe(10_000);
  });

  it('takes other limits (the supervisor tests shrink them)', () => {
    expect(silenceBound('generate', 100, { ...WATCHDOG, minMs: 1_000, stepFactor: 5 })).toBe(1_000);
    expect(silenceBound('generate', 300, { ...WATCHDOG, minMs: 1_000, stepFactor: 5 })).toBe(1_500);
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
  expect(formatBound(10_000)).toBe('10 s');
  expect(formatBound(160_400)).toBe('160 s');
});
