/**
 * How long the engine worker may stay silent before the supervisor counts it as hung. Pure, so
 * every bound is a one-line test. Any event from the worker resets the clock; the bound depends
 * on what the worker is doing, and for a run on how slow its steps have been.
 */

export const WATCHDOG = {
  /** The shortest silence that counts as a hang: any step, decode or message round trip fits in it. */
  minMs: 10_000,
  /** A run may go this many times the slowest step seen (per pixel) without an event. */
  stepFactor: 20,
  /**
   * A run before its first step or after its last one (text encoding, a decode, kernels compiled
   * for a new shape: a first WebGPU run on a software adapter spends tens of seconds there), or a
   * run before any step was timed; longer when 20 steps take longer.
   */
  unmeasuredMs: 120_000,
  /** A worker that has not started, or a download with no byte for this long. */
  startMs: 60_000,
  downloadMs: 120_000,
  /** Session creation and warm-up: a graph of several GB compiles for minutes with no event. */
  prepareMs: 300_000,
  /** A cancel or other short request with nothing running. */
  requestMs: 10_000,
} as const;

export type WatchdogLimits = { -readonly [K in keyof typeof WATCHDOG]: number };

/** What the worker is busy with, as far as the UI thread can tell from its events. */
export type Phase = 'start' | 'download' | 'prepare' | 'run-edge' | 'step' | 'request';

/** Milliseconds of silence allowed in `phase`; `expectedStepMs` is the step-time estimate for the running image. */
export function silenceBound(phase: Phase, expectedStepMs: number | null, limits: WatchdogLimits = WATCHDOG): number {
  switch (phase) {
    case 'start':
      return limits.startMs;
    case 'download':
      return limits.downloadMs;
    case 'prepare':
      return limits.prepareMs;
    case 'run-edge':
      return Math.max(limits.unmeasuredMs, limits.stepFactor * (expectedStepMs ?? 0));
    case 'step':
      return expectedStepMs === null ? limits.unmeasuredMs : Math.max(limits.minMs, limits.stepFactor * expectedStepMs);
    case 'request':
      return limits.requestMs;
  }
}

/**
 * The slowest step seen, per image pixel (steps scale with batch size x width x height), so a
 * batch of 4 at a larger size gets a proportionally longer bound than the 1-image warm-up. Until
 * a run's steps are timed, an estimate stands in: the load's warm-up (encode, one step, decode and
 * kernel compilation), an overestimate the first timed steps replace. A new load starts over.
 */
export class StepTimes {
  private slowestPerPixel: number | null = null;
  private estimatePerPixel: number | null = null;

  /** A model (or backend) was loaded: earlier steps say nothing about it; `ms` at `pixels` is its warm-up. */
  reset(ms: number | null, pixels: number): void {
    this.slowestPerPixel = null;
    this.estimatePerPixel = ms !== null && ms > 0 && pixels > 0 ? ms / pixels : null;
  }

  observe(ms: number, pixels: number): void {
    if (!(ms > 0) || !(pixels > 0)) return;
    const perPixel = ms / pixels;
    if (this.slowestPerPixel === null || perPixel > this.slowestPerPixel) this.slowestPerPixel = perPixel;
  }

  /** The step time to expect for `pixels` (images x width x height), or null before anything was timed. */
  expected(pixels: number): number | null {
    const perPixel = this.slowestPerPixel ?? this.estimatePerPixel;
    return perPixel === null ? null : perPixel * pixels;
  }
}

/** "10.4 s" / "160 s": a silence or a bound as a person reads it (a tenth is kept where it tells 10.4 from 10.0). */
export const formatBound = (ms: number) => (ms < 100_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
