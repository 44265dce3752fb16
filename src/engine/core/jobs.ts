/**
 * The engine's job queue: loads and generates run one at a time in the order they came; any job,
 * queued or running, can be cancelled. The busy rule lives here and nowhere else.
 */
import { CancelledError, EngineError } from '../errors';
import type { Job, JobListener } from '../protocol';

/** Jobs waiting behind the running one; more is a BusyError (a runaway caller, not a person). */
export const MAX_QUEUED = 16;

interface Entry {
  id: string;
  kind: 'load' | 'generate';
  what: string;
  /** Set by failRunning: the job ends with this instead of its own outcome. */
  reason?: EngineError;
  start: () => void;
  controller: AbortController;
  fail: (e: unknown) => void;
}

let counter = 0;
export const nextJobId = (kind: string) => `${kind}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export class JobQueue {
  private waiting: Entry[] = [];
  private running: Entry | null = null;

  /** Queue `run`; it gets an AbortSignal that fires when the job is cancelled. */
  add<R>(kind: 'load' | 'generate', run: (signal: AbortSignal) => Promise<R>, listener: JobListener | undefined, id = nextJobId(kind)): Job<R> {
    const what = kind === 'load' ? 'Loading the model' : 'Generation';
    if (this.waiting.length >= MAX_QUEUED) {
      const result = Promise.reject(new EngineError('BusyError', `${MAX_QUEUED} jobs are already waiting.`, 'Wait for the queued images to finish, or cancel some.'));
      return { id, result };
    }
    const controller = new AbortController();
    const result = new Promise<R>((resolve, reject) => {
      const entry: Entry = {
        id,
        kind,
        what,
        controller,
        fail: reject,
        start: () => {
          // the queue moves on before the caller hears the outcome, so it sees a settled queue
          const settle = () => {
            this.running = null;
            this.next();
          };
          run(controller.signal).then(
            (r) => {
              settle();
              resolve(r); // it finished before it noticed the abort: nothing was lost
            },
            (e) => {
              settle();
              reject(entry.reason ?? (controller.signal.aborted && !(e instanceof EngineError) ? new CancelledError(what) : e));
            },
          );
        },
      };
      this.waiting.push(entry);
    });
    if (this.running) listener?.({ type: 'progress', stage: 'queued', position: this.waiting.length });
    this.next();
    return { id, result };
  }

  /** Cancel a job by id: a queued one ends at once, a running one at its next check. */
  cancel(id: string): boolean {
    if (this.running?.id === id) {
      this.running.controller.abort();
      return true;
    }
    const i = this.waiting.findIndex((e) => e.id === id);
    if (i < 0) return false;
    const [entry] = this.waiting.splice(i, 1);
    entry.controller.abort();
    entry.fail(new CancelledError(`${entry.what} (still queued)`));
    return true;
  }

  /**
   * Fail the running job with an error of the caller's making (a stray error in the worker, a lost
   * GPU device): it is aborted and, once it stops, rejects with that error. Returns its id, or null.
   */
  failRunning(reason: (what: string, kind: 'load' | 'generate') => EngineError): string | null {
    const entry = this.running;
    if (!entry || entry.reason) return null;
    entry.reason = reason(entry.what, entry.kind);
    entry.controller.abort();
    return entry.id;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  private next(): void {
    if (this.running) return;
    const entry = this.waiting.shift();
    if (!entry) return;
    this.running = entry;
    entry.start();
  }
}
