/**
 * The supervisor over fake workers: the test plays each worker's side (its events, its crash, its
 * silence) and checks what the UI hears, what the old worker gets (terminated) and what the new
 * one is asked (the model again, from storage). Timers are Vitest's fake ones.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WorkerLike } from './client';
import type { LoadResult, WorkerEvent, WorkerRequest } from './protocol';
import { SupervisedEngine, type SupervisorOptions } from './supervisor';

class FakeWorker implements WorkerLike {
  posted: WorkerRequest[] = [];
  terminated = false;
  private listeners: Record<string, ((e: unknown) => void)[]> = {};

  postMessage(message: WorkerRequest): void {
    this.posted.push(message);
  }
  addEventListener(type: string, listener: (e: never) => void): void {
    (this.listeners[type] ??= []).push(listener as (e: unknown) => void);
  }
  terminate(): void {
    this.terminated = true;
  }
  /** The worker posts an event. */
  send(event: WorkerEvent): void {
    for (const l of this.listeners.message ?? []) l({ data: event });
  }
  /** The Worker object fires 'error' (a script that did not load, or an error that escaped). */
  crash(message?: string): void {
    for (const l of this.listeners.error ?? []) l({ message, preventDefault() {} });
  }
  started(): this {
    this.send({ type: 'engine', id: 'worker', state: 'started' });
    return this;
  }
}

const MODEL = { modelUrl: '/models/webdit-tiny/', backend: 'wasm' as const };
const loadResult: LoadResult = {
  request: 'load',
  model: {
    id: 'm',
    name: 'M',
    family: 'webdit',
    defaults: { numInferenceSteps: 20, guidanceScale: 5, negativePrompt: '', width: 64, height: 64, strength: 0.6 },
    limits: { numInferenceSteps: { min: 1, max: 50 }, guidanceScale: { min: 1, max: 12 }, sizes: [[64, 64]], numImagesPerPrompt: { min: 1, max: 4 } },
    scheduler: { shift: 2, numTrainTimesteps: 1000 },
    imageToImage: false,
  },
  backend: { backend: 'wasm', threads: 2 },
  loadMs: 100,
};

let workers: FakeWorker[];
let events: WorkerEvent[];
let engine: SupervisedEngine;

function start(opts: Partial<SupervisorOptions> = {}) {
  workers = [];
  events = [];
  engine = new SupervisedEngine({
    createWorker: () => {
      const w = new FakeWorker();
      workers.push(w);
      return w;
    },
    now: () => Date.now(),
    ...opts,
  });
  engine.subscribe((e) => events.push(e));
}

const last = () => workers[workers.length - 1];
const errorsOf = (id: string) => events.filter((e) => e.type === 'error' && e.id === id);

/** Load the model: the worker prepares, warms up for `warmMs`, and is done. */
async function loadModel(warmMs = 40) {
  const job = engine.load(MODEL);
  const w = last();
  w.send({ type: 'progress', id: job.id, stage: 'prepare', message: 'Warming up' });
  vi.advanceTimersByTime(warmMs);
  w.send({ type: 'done', id: job.id, result: loadResult });
  await job.result;
  return job;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  engine.dispose();
  vi.useRealTimers();
});

describe('SupervisedEngine: a worker that stops answering (fault table 7c)', () => {
  it('a run silent past 20x its step (at least 10 s) is failed with Run again; a new worker loads the last model', async () => {
    start();
    last().started();
    const load = await loadModel();
    const gen = engine.generate({ prompt: 'cat', numInferenceSteps: 20 });
    const w = last();
    w.send({ type: 'progress', id: gen.id, stage: 'denoise', step: 1, total: 20, msPerStep: 40 });
    vi.advanceTimersByTime(9_000);
    expect(workers).toHaveLength(1); // 9 s of silence: still within the 10 s floor
    vi.advanceTimersByTime(2_000);
    expect(w.terminated).toBe(true);
    expect(workers).toHaveLength(2);

    await expect(gen.result).rejects.toMatchObject({ info: { name: 'WorkerError', fix: 'run-again' } });
    const [err] = errorsOf(gen.id) as Extract<WorkerEvent, { type: 'error' }>[];
    expect(err.error.message).toMatch(/^The engine stopped while this image was being made: it did not answer for 1\d\.\d s while making an image \(the limit was 10\.0 s\)\.$/);
    expect(err.error.action).toMatch(/Run again/);
    expect(err.error.action).not.toMatch(/reload the page/i);

    // the new worker is asked for the model that loaded last, under the id the store is told to follow
    const restarting = events.find((e) => e.type === 'engine' && e.state === 'restarting') as Extract<WorkerEvent, { state: 'restarting' }>;
    const reload = last().posted[0];
    expect(reload).toMatchObject({ type: 'load', modelUrl: MODEL.modelUrl, backend: 'wasm' });
    expect(restarting.loadId).toBe(reload.id);
    expect(reload.id).not.toBe(load.id);
    // the old worker's late words are ignored
    w.send({ type: 'done', id: gen.id, result: { request: 'generate', seeds: [1], timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, totalMs: 0, msPerStep: 0 } } });
    expect(events.filter((e) => e.id === gen.id && e.type === 'done')).toHaveLength(0);
  });

  it('the bound follows the slowest step timed: 2 s steps may be silent for 40 s, not 41 (the warm-up estimate gives way)', async () => {
    start();
    last().started();
    await loadModel(5_000); // a slow warm-up: 100 s alone
    const gen = engine.generate({ prompt: 'cat' });
    const w = last();
    w.send({ type: 'progress', id: gen.id, stage: 'denoise', step: 1, total: 20, msPerStep: 2000 });
    vi.advanceTimersByTime(2_000);
    w.send({ type: 'progress', id: gen.id, stage: 'denoise', step: 2, total: 20, msPerStep: 2000 });
    vi.advanceTimersByTime(39_500);
    expect(w.terminated).toBe(false);
    vi.advanceTimersByTime(2_000);
    expect(w.terminated).toBe(true);
    await expect(gen.result).rejects.toMatchObject({ info: { name: 'WorkerError' } });
  });

  it('a batch of 4 gets 4 times the bound of the 1-image steps it was measured on', async () => {
    start();
    last().started();
    await loadModel(1_000); // warm-up: 1 s at 64x64
    const gen = engine.generate({ prompt: 'cat', numImagesPerPrompt: 4 });
    last().send({ type: 'progress', id: gen.id, stage: 'denoise', step: 1, total: 20, msPerStep: 4000 });
    vi.advanceTimersByTime(79_000); // 20 x 4 x 1 s = 80 s
    expect(last().terminated).toBe(false);
    vi.advanceTimersByTime(2_000);
    expect(workers).toHaveLength(2);
    await expect(gen.result).rejects.toMatchObject({ info: { name: 'WorkerError' } });
  });

  it('before the first step and after the last (encoding, compiling, decoding) a run may be silent for 2 minutes', async () => {
    start();
    last().started();
    await loadModel();
    const gen = engine.generate({ prompt: 'cat', numInferenceSteps: 2 });
    vi.advanceTimersByTime(100_000);
    last().send({ type: 'progress', id: gen.id, stage: 'denoise', step: 1, total: 2, msPerStep: 40 });
    vi.advanceTimersByTime(40);
    last().send({ type: 'progress', id: gen.id, stage: 'denoise', step: 2, total: 2, msPerStep: 40 });
    vi.advanceTimersByTime(100_000); // decoding
    expect(workers).toHaveLength(1);
    vi.advanceTimersByTime(21_000);
    expect(workers).toHaveLength(2);
    await expect(gen.result).rejects.toMatchObject({ info: { message: expect.stringMatching(/did not answer for 12\d s while making an image \(the limit was 120 s\)/) } });
  });

  it('downloads report progress: a slow download is not a hang as long as bytes come', async () => {
    start();
    last().started();
    const job = engine.load(MODEL);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(100_000);
      last().send({ type: 'progress', id: job.id, stage: 'download', file: 'transformer/model.onnx', loaded: i, total: 10 });
    }
    expect(workers).toHaveLength(1);
    vi.advanceTimersByTime(121_000);
    expect(workers).toHaveLength(2); // 2 minutes without a byte
  });

  it('a run the user was cancelling when the worker hung ends as cancelled', async () => {
    start();
    last().started();
    await loadModel();
    const gen = engine.generate({ prompt: 'cat' });
    last().send({ type: 'progress', id: gen.id, stage: 'denoise', step: 1, total: 20, msPerStep: 40 });
    const cancelled = engine.cancel(gen.id);
    vi.advanceTimersByTime(11_000);
    await expect(gen.result).rejects.toMatchObject({ info: { name: 'CancelledError' } });
    expect(await cancelled).toBe(true);
  });
});

describe('SupervisedEngine: a worker that crashes (7d) or loses its GPU', () => {
  it('a load in flight goes to the new worker under its own id: the store keeps following it', async () => {
    start();
    last().started();
    const job = engine.load(MODEL);
    last().send({ type: 'progress', id: job.id, stage: 'download', file: 'a', loaded: 1, total: 2 });
    last().crash('Uncaught RangeError: boom');
    expect(workers).toHaveLength(2);
    expect(last().posted).toEqual([{ type: 'load', id: job.id, ...MODEL }]);
    expect(events.at(-1)).toEqual({ type: 'engine', id: 'worker', state: 'restarting', reason: 'it crashed (Uncaught RangeError: boom)', loadId: job.id });
    expect(errorsOf(job.id)).toEqual([]);
    last().started().send({ type: 'done', id: job.id, result: loadResult });
    await expect(job.result).resolves.toMatchObject({ request: 'load' });
  });

  it('a lost GPU device fails the run with DeviceLostError and restarts on a new device', async () => {
    start();
    last().started();
    await loadModel();
    const gen = engine.generate({ prompt: 'cat' });
    const old = last();
    old.send({ type: 'engine', id: 'worker', state: 'device-lost', message: 'it was destroyed' });
    expect(old.terminated).toBe(true);
    await expect(gen.result).rejects.toMatchObject({ info: { name: 'DeviceLostError', fix: 'run-again', message: 'The GPU device was lost while this image was being made (it was destroyed).' } });
    expect(events.find((e) => e.type === 'engine' && e.state === 'restarting')).toMatchObject({ reason: 'the GPU device was lost: it was destroyed' });
    expect(last().posted[0]).toMatchObject({ type: 'load', ...MODEL });
  });

  it('a stray error the worker handled (fault) is not a crash: no restart', async () => {
    start();
    last().started();
    await loadModel();
    last().send({ type: 'engine', id: 'worker', state: 'fault', message: 'Error: stray' });
    expect(workers).toHaveLength(1);
  });

  it('past 3 restarts in a few minutes it stops and asks: Restart engine', async () => {
    start();
    last().started();
    await loadModel();
    for (let i = 0; i < 3; i++) last().started().crash('boom');
    expect(workers).toHaveLength(4);
    last().started().crash('boom');
    expect(workers).toHaveLength(4);
    const down = events.at(-1) as Extract<WorkerEvent, { type: 'error' }>;
    expect(down).toMatchObject({ type: 'error', id: 'worker', error: { name: 'WorkerError', fix: 'restart-engine' } });
    expect(down.error.message).toBe('The image engine stopped 4 times in a few minutes; the last time it crashed (boom).');
    // requests fail at once until the user restarts it
    const gen = engine.generate({ prompt: 'cat' });
    await expect(gen.result).rejects.toMatchObject({ info: { fix: 'restart-engine' } });
    engine.restart();
    expect(workers).toHaveLength(5);
    expect(last().posted[0]).toMatchObject({ type: 'load', ...MODEL });
  });
});

describe('SupervisedEngine: a worker that never starts (7a, 7b)', () => {
  it('a script that 404s: the message says so (no backend advice), and Restart engine loads the model', async () => {
    start({ diagnoseStart: async () => '/assets/worker-x.js did not load (the server answered 404 Not Found)' });
    const job = engine.load(MODEL);
    last().crash(undefined);
    await expect(job.result).rejects.toMatchObject({ info: { name: 'WorkerError', fix: 'restart-engine' } });
    const err = (errorsOf(job.id)[0] as Extract<WorkerEvent, { type: 'error' }>).error;
    expect(err.message).toBe('The image engine could not start: its script /assets/worker-x.js did not load (the server answered 404 Not Found).');
    expect(err.action).not.toMatch(/wasm|webgpu|backend|reload/i);
    expect(workers).toHaveLength(1); // no retry loop
    engine.restart();
    expect(workers).toHaveLength(2);
    expect(last().posted).toEqual([expect.objectContaining({ type: 'load', ...MODEL })]);
  });

  it('a script that throws while starting: its message', async () => {
    start({ diagnoseStart: async () => null });
    const job = engine.load(MODEL);
    last().crash('Uncaught Error: worker script failed to initialise');
    await expect(job.result).rejects.toMatchObject({
      info: { message: 'The image engine could not start: its script failed while starting (Uncaught Error: worker script failed to initialise).' },
    });
  });

  it('a script that fails with no reason (a syntax error in a module worker) says so', async () => {
    start({ diagnoseStart: async () => null });
    const job = engine.load(MODEL);
    last().crash(undefined);
    await expect(job.result).rejects.toMatchObject({ info: { message: 'The image engine could not start: its script failed while starting (the browser gave no reason).' } });
  });

  it('a worker that never says it started is bounded too (60 s)', async () => {
    start();
    engine.load(MODEL);
    vi.advanceTimersByTime(59_000);
    expect(workers).toHaveLength(1);
    vi.advanceTimersByTime(2_000);
    expect(workers).toHaveLength(2);
  });
});
