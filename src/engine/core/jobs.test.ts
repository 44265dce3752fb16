import { describe, expect, it } from 'vitest';
import { EngineError } from '../errors';
import { JobQueue, MAX_QUEUED } from './jobs';
import type { JobEvent } from '../protocol';

/** A job that runs until released (or aborted), recording when it started. */
function gate(log: string[], name: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const run = (signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      log.push(`start ${name}`);
      signal.addEventListener('abort', () => reject(new Error('aborted')));
      released.then(() => resolve(name));
    });
  return { run, release };
}

describe('JobQueue', () => {
  it('runs jobs one at a time in arrival order and tells a waiting job its place', async () => {
    const q = new JobQueue();
    const log: string[] = [];
    const a = gate(log, 'a'), b = gate(log, 'b'), c = gate(log, 'c');
    const events: JobEvent[] = [];
    const ja = q.add('load', a.run, undefined);
    const jb = q.add('generate', b.run, (e) => events.push(e));
    const jc = q.add('generate', c.run, undefined);
    expect(log).toEqual(['start a']);
    expect(events).toEqual([{ type: 'progress', stage: 'queued', position: 1 }]);
    a.release();
    expect(await ja.result).toBe('a');
    await Promise.resolve();
    expect(log).toEqual(['start a', 'start b']);
    b.release();
    c.release();
    expect(await jb.result).toBe('b');
    expect(await jc.result).toBe('c');
    expect(log).toEqual(['start a', 'start b', 'start c']);
  });

  it('cancels a queued job at once, without running it', async () => {
    const q = new JobQueue();
    const log: string[] = [];
    const a = gate(log, 'a'), b = gate(log, 'b');
    const ja = q.add('load', a.run, undefined);
    const jb = q.add('generate', b.run, undefined);
    expect(q.cancel(jb.id)).toBe(true);
    await expect(jb.result).rejects.toMatchObject({ name: 'CancelledError', message: expect.stringMatching(/queued/) });
    a.release();
    await ja.result;
    expect(log).toEqual(['start a']);
  });

  it('cancels a running job through its signal, then runs the next', async () => {
    const q = new JobQueue();
    const log: string[] = [];
    const a = gate(log, 'a'), b = gate(log, 'b');
    const ja = q.add('load', a.run, undefined);
    const jb = q.add('generate', b.run, undefined);
    expect(q.cancel(ja.id)).toBe(true);
    await expect(ja.result).rejects.toMatchObject({ name: 'CancelledError', message: 'Loading the model was cancelled.' });
    b.release();
    expect(await jb.result).toBe('b');
    expect(q.cancel(jb.id)).toBe(false); // finished: nothing to cancel
    expect(q.cancel('no-such-job')).toBe(false);
  });

  it(`answers BusyError beyond ${MAX_QUEUED} waiting jobs`, async () => {
    const q = new JobQueue();
    const log: string[] = [];
    const first = gate(log, 'first');
    q.add('load', first.run, undefined);
    const waiting = Array.from({ length: MAX_QUEUED }, (_, i) => q.add('generate', gate(log, `g${i}`).run, undefined));
    const extra = q.add('generate', gate(log, 'extra').run, undefined);
    await expect(extra.result).rejects.toMatchObject({ name: 'BusyError' });
    for (const j of waiting) q.cancel(j.id);
    await Promise.allSettled(waiting.map((j) => j.result));
  });
});

describe('JobQueue.failRunning (a stray error in the worker fails its job, not the queue)', () => {
  it('the running job rejects with the given error once it stops; the next job runs', async () => {
    const q = new JobQueue();
    const log: string[] = [];
    const a = gate(log, 'a'), b = gate(log, 'b');
    const ja = q.add('generate', a.run, undefined);
    const jb = q.add('generate', b.run, undefined);
    const failed = q.failRunning((what, kind) => new EngineError('RuntimeError', `${what} (${kind}) was interrupted`, 'Press Run again.', 'run-again'));
    expect(failed).toBe(ja.id);
    await expect(ja.result).rejects.toMatchObject({ name: 'RuntimeError', message: 'Generation (generate) was interrupted', fix: 'run-again' });
    expect(log).toEqual(['start a', 'start b']);
    b.release();
    expect(await jb.result).toBe('b');
    expect(q.failRunning(() => new EngineError('RuntimeError', 'x', 'y'))).toBeNull(); // nothing runs
  });

  it('a job that finishes before it notices keeps its result', async () => {
    const q = new JobQueue();
    let finish!: (v: string) => void;
    const j = q.add('load', () => new Promise<string>((r) => (finish = r)), undefined);
    q.failRunning(() => new EngineError('RuntimeError', 'x', 'y'));
    finish('done');
    expect(await j.result).toBe('done');
  });
});
