/**
 * The engine as the UI sees it: an ImageEngine over a worker that is watched and replaced when it
 * dies or stops answering. The user keeps the page, the form and the images:
 *
 * - a watchdog counts the silence since the worker's last event; the bound depends on what it is
 *   doing (watchdog.ts): a run may take 20 times its slowest step so far, a download or session
 *   creation much longer, since they report progress or take minutes legitimately;
 * - a worker that crashed (its 'error' event), hung, or lost its GPU device is terminated and a
 *   new one started; the model loads again from browser storage (the engine's Cache API: no new
 *   download); the run it took with it fails with an error that offers "Run again";
 * - a worker whose script never started (404, a top-level throw) is not retried in a loop: the
 *   banner says why and offers "Restart engine"; so do more than `maxRestarts` restarts in a row.
 */
import { EngineClient, JobError, type WorkerLike } from './client';
import { nextJobId } from './core/jobs';
import { deviceLostError } from './errors';
import type { GenerateParams, GenerateRequestParams } from './schema';
import {
  WORKER_ID,
  type DoneResult,
  type EngineErrorInfo,
  type GenerateResult,
  type ImageEngine,
  type Job,
  type JobEvent,
  type JobListener,
  type LoadOptions,
  type LoadResult,
  type ProgressEvent,
  type WorkerEvent,
} from './protocol';
import { formatBound, silenceBound, StepTimes, WATCHDOG, type Phase, type WatchdogLimits } from './watchdog';

interface Tracked {
  id: string;
  kind: 'load' | 'generate' | 'cancel';
  listener?: JobListener;
  resolve: (r: DoneResult) => void;
  reject: (e: JobError) => void;
  load?: LoadOptions;
  /** A generate's images x width x height (the model's defaults where the request leaves them out). */
  pixels?: number;
  /** A cancel's target. */
  targetId?: string;
  /** The last progress stage the worker reported for this job. */
  stage?: ProgressEvent['stage'];
  /** The last denoise step of a run (of `total`) and when it came, to time the next one. */
  lastStep?: { step: number; total: number; at: number };
  /** When a load last said what it prepares: the last one before `done` is the warm-up run. */
  preparedAt?: number;
}

export interface SupervisorOptions {
  createWorker: () => WorkerLike;
  /** Why the worker's script did not load (e.g. "the server answered 404"), or null when it did. */
  diagnoseStart?: () => Promise<string | null>;
  limits?: Partial<WatchdogLimits>;
  /** Automatic restarts allowed within `restartWindowMs`; one more stops and asks the user. */
  maxRestarts?: number;
  restartWindowMs?: number;
  now?: () => number;
  /** How often the watchdog looks, in ms. */
  tickMs?: number;
}

type Cause = 'hang' | 'crash' | 'device-lost' | 'manual';

const SETTINGS_KEPT = 'Your settings and images are kept.';

/** What the run a replaced worker took with it ends with. */
export function interruptedRunError(reason: string, cause: Cause): EngineErrorInfo {
  if (cause === 'device-lost') return deviceLostError(reason).toInfo();
  return {
    name: 'WorkerError',
    message: `The engine stopped while this image was being made: ${reason}.`,
    action: `It was restarted and reloads the model from browser storage. Press Run again. ${SETTINGS_KEPT}`,
    fix: 'run-again',
  };
}

/** A worker whose script never ran: `why` from diagnoseStart, else the error event's message. */
export function startFailedError(why: string | null, message: string | null): EngineErrorInfo {
  const what = why ? `its script ${why}` : `its script failed while starting (${message ?? 'the browser gave no reason'})`;
  return {
    name: 'WorkerError',
    message: `The image engine could not start: ${what}.`,
    action: `Check your connection, then press Restart engine. ${SETTINGS_KEPT}`,
    fix: 'restart-engine',
  };
}

export class SupervisedEngine implements ImageEngine {
  private client!: EngineClient;
  private unsubscribe: () => void = () => undefined;
  /** Bumped per worker, so a late callback of a replaced one is ignored. */
  private generation = 0;
  private started = false;
  /** Requests not yet answered, in the order they were sent (the worker runs them in that order). */
  private jobs = new Map<string, Tracked>();
  private subscribers = new Set<(event: WorkerEvent) => void>();
  private lastEventAt: number;
  private steps = new StepTimes();
  private defaults: { width: number; height: number } | null = null;
  /** The latest load that succeeded, and the latest one asked for: what a new worker loads. */
  private lastGoodLoad: LoadOptions | null = null;
  private lastLoad: LoadOptions | null = null;
  private restarts: number[] = [];
  /** Why the engine is down until the user restarts it; requests meanwhile fail with it. */
  private down: EngineErrorInfo | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private limits: WatchdogLimits;
  private now: () => number;

  constructor(private opts: SupervisorOptions) {
    this.limits = { ...WATCHDOG, ...opts.limits };
    this.now = opts.now ?? (() => performance.now());
    this.lastEventAt = this.now();
    this.spawn();
  }

  /** Every event of every job, plus the supervisor's own (`engine` restarting, errors it answers with). */
  subscribe(subscriber: (event: WorkerEvent) => void): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  load(options: LoadOptions, listener?: JobListener, id = nextJobId('load')): Job<LoadResult> {
    this.lastLoad = options;
    return this.send({ id, kind: 'load', listener, load: options }, () => this.client.load(options, undefined, id)) as Job<LoadResult>;
  }

  generate(params: GenerateRequestParams | GenerateParams, listener?: JobListener, id = nextJobId('gen')): Job<GenerateResult> {
    const d = this.defaults;
    const width = params.width ?? params.image?.width ?? d?.width ?? 1;
    const height = params.height ?? params.image?.height ?? d?.height ?? 1;
    // an animation's frames are its batch
    const pixels = (params.animation?.frames ?? params.numImagesPerPrompt ?? 1) * width * height;
    return this.send({ id, kind: 'generate', listener, pixels }, () => this.client.generate(params, undefined, id)) as Job<GenerateResult>;
  }

  async cancel(jobId: string): Promise<boolean> {
    if (!this.jobs.has(jobId)) return false;
    const id = nextJobId('cancel');
    const r = await this.send({ id, kind: 'cancel', targetId: jobId }, () => void this.client.cancel(jobId, id)).result;
    return r.request === 'cancel' && r.cancelled;
  }

  /** A new worker, and the model loaded in it again (the banner's "Restart engine"). */
  restart(): void {
    this.restarts = [];
    if (this.down) {
      this.down = null;
      this.spawn();
      this.reload('it was restarted');
    } else {
      this.replace('it was restarted', 'manual');
    }
  }

  dispose(): void {
    this.disarm();
    this.unsubscribe();
    this.client.dispose();
    this.subscribers.clear();
  }

  // ---- the worker ----

  private spawn(): void {
    const generation = ++this.generation;
    this.started = false;
    this.lastEventAt = this.now();
    const current = () => generation === this.generation;
    this.client = new EngineClient(this.opts.createWorker(), {
      onError: (message) => current() && this.onWorkerError(message),
      onMessageError: () => current() && console.warn('[webdit] a message from the engine worker could not be read'),
    });
    this.unsubscribe = this.client.subscribe((event) => current() && this.onEvent(event));
  }

  private onWorkerError(message: string | null): void {
    if (!this.started) {
      void this.failedToStart(message);
      return;
    }
    // the worker catches its own stray errors (they fail the running job only): one that reached
    // the Worker object means the worker itself broke
    this.replace(`it crashed (${message ?? 'no message'})`, 'crash');
  }

  private async failedToStart(message: string | null): Promise<void> {
    const generation = this.generation;
    this.unsubscribe();
    this.client.dispose();
    this.down = startFailedError(null, message); // requests that come meanwhile fail with this
    const why = await this.opts.diagnoseStart?.().catch(() => null);
    if (generation !== this.generation) return; // restarted meanwhile
    this.goDown(startFailedError(why ?? null, message));
  }

  private onEvent(event: WorkerEvent): void {
    const now = this.now();
    this.lastEventAt = now;
    if (event.type === 'engine') {
      if (event.state === 'started') this.started = true;
      if (event.state === 'fault') console.warn(`[webdit] engine worker: ${event.message}`);
      this.forward(event);
      if (event.state === 'device-lost') this.replace(event.message, 'device-lost');
      return;
    }
    this.started = true; // (a worker that answers has started, whatever came first)
    const job = this.jobs.get(event.id);
    if (job) {
      if (event.type === 'done') {
        this.settle(job);
        if (event.result.request === 'load') this.loaded(job, event.result, now);
        job.resolve(event.result);
      } else if (event.type === 'error') {
        this.settle(job);
        job.reject(new JobError(event.error));
      } else {
        if (event.type === 'progress') this.noteProgress(job, event, now);
        const { id: _id, ...jobEvent } = event;
        job.listener?.(jobEvent as JobEvent);
      }
    }
    this.forward(event);
  }

  private noteProgress(job: Tracked, event: ProgressEvent, now: number): void {
    job.stage = event.stage;
    if (event.stage === 'prepare') job.preparedAt = now;
    if (event.stage === 'denoise') {
      const last = job.lastStep;
      if (last && event.step > last.step) this.steps.observe((now - last.at) / (event.step - last.step), job.pixels ?? 1);
      job.lastStep = { step: event.step, total: event.total, at: now };
    }
  }

  private loaded(job: Tracked, result: LoadResult, now: number): void {
    this.lastGoodLoad = job.load ?? this.lastGoodLoad;
    const { width, height } = result.model.defaults;
    this.defaults = { width, height };
    // the last `prepare` before done is the warm-up: encode, one step and decode at the defaults,
    // an upper bound for a step until real steps are timed
    this.steps.reset(job.preparedAt === undefined ? null : now - job.preparedAt, width * height);
  }

  // ---- jobs ----

  private send(t: Omit<Tracked, 'resolve' | 'reject'>, post: () => void): Job<DoneResult> {
    if (this.jobs.size === 0) this.lastEventAt = this.now(); // silence counts from the first request
    const result = new Promise<DoneResult>((resolve, reject) => this.jobs.set(t.id, { ...t, resolve, reject }));
    result.catch(() => undefined); // callers that only follow events must not see unhandled rejections
    const down = this.down;
    if (down) {
      queueMicrotask(() => this.fail(t.id, down));
    } else {
      post();
      this.arm();
    }
    return { id: t.id, result };
  }

  private settle(job: Tracked): void {
    this.jobs.delete(job.id);
    if (this.jobs.size === 0) this.disarm();
  }

  private fail(id: string, error: EngineErrorInfo): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.settle(job);
    job.reject(new JobError(error));
    this.forward({ type: 'error', id, error });
  }

  private forward(event: WorkerEvent): void {
    for (const s of this.subscribers) s(event);
  }

  // ---- the watchdog ----

  private arm(): void {
    this.timer ??= setInterval(() => this.tick(), this.opts.tickMs ?? 1000);
  }

  private disarm(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** What the worker is doing, for the silence it is allowed; null when nothing waits on it. */
  phase(): { phase: Phase; expectedStepMs: number | null; doing: string } | null {
    if (this.jobs.size === 0 || this.down) return null;
    if (!this.started) return { phase: 'start', expectedStepMs: null, doing: 'starting' };
    const running = [...this.jobs.values()].find((j) => j.kind !== 'cancel');
    if (!running) return { phase: 'request', expectedStepMs: null, doing: 'answering a request' };
    if (running.kind === 'load') {
      return running.stage === 'prepare' ? { phase: 'prepare', expectedStepMs: null, doing: 'preparing the model' } : { phase: 'download', expectedStepMs: null, doing: 'loading the model' };
    }
    const expectedStepMs = this.steps.expected(running.pixels ?? 1);
    // between two steps the bound is tight; before the first (encoding, compiling) and after the last (decoding) it is not
    const stepping = running.lastStep !== undefined && running.lastStep.step < running.lastStep.total;
    return { phase: stepping ? 'step' : 'run-edge', expectedStepMs, doing: 'making an image' };
  }

  private tick(): void {
    const p = this.phase();
    if (!p) return;
    const silent = this.now() - this.lastEventAt;
    const bound = silenceBound(p.phase, p.expectedStepMs, this.limits);
    if (silent > bound) this.replace(`it did not answer for ${formatBound(silent)} while ${p.doing} (the limit was ${formatBound(bound)})`, 'hang');
  }

  // ---- replacing the worker ----

  /** Terminate the worker, answer for what it took with it, start a new one and load the model again. */
  private replace(detail: string, cause: Cause): void {
    const reason = cause === 'device-lost' ? `the GPU device was lost: ${detail}` : detail;
    this.unsubscribe();
    this.client.dispose();
    const now = this.now();
    const window = this.opts.restartWindowMs ?? 5 * 60_000;
    this.restarts = this.restarts.filter((t) => now - t < window);
    if (cause !== 'manual' && this.restarts.length >= (this.opts.maxRestarts ?? 3)) {
      this.goDown({
        name: 'WorkerError',
        message: `The image engine stopped ${this.restarts.length + 1} times in a few minutes; the last time ${reason}.`,
        action: `Press Restart engine to try once more, or switch the backend. ${SETTINGS_KEPT}`,
        fix: 'restart-engine',
      });
      return;
    }
    this.restarts.push(now);

    // the runs end here (a cancel asked for is granted); loads go to the new worker under their ids
    const cancelled = new Set([...this.jobs.values()].filter((j) => j.kind === 'cancel').map((j) => j.targetId));
    for (const job of [...this.jobs.values()]) {
      if (job.kind === 'load') continue;
      if (job.kind === 'cancel') {
        this.settle(job);
        job.resolve({ request: 'cancel', cancelled: true });
        this.forward({ type: 'done', id: job.id, result: { request: 'cancel', cancelled: true } });
      } else if (cancelled.has(job.id)) {
        this.fail(job.id, { name: 'CancelledError', message: 'Generation was cancelled.', action: 'Start it again when you are ready.' });
      } else {
        this.fail(job.id, interruptedRunError(detail, cause));
      }
    }
    this.spawn();
    this.reload(reason);
  }

  /** Send the loads a replaced worker had (or the last model) to the current one; tell the store which to follow. */
  private reload(reason: string): void {
    const loads = [...this.jobs.values()].filter((j) => j.kind === 'load');
    let loadId: string | null = null;
    for (const job of loads) {
      job.stage = undefined;
      job.preparedAt = undefined;
      this.client.load(job.load!, undefined, job.id);
      loadId = job.id;
    }
    const options = this.lastGoodLoad ?? this.lastLoad;
    if (loadId === null && options) {
      const id = nextJobId('load');
      this.send({ id, kind: 'load', load: options }, () => this.client.load(options, undefined, id));
      loadId = id;
    }
    if (this.jobs.size > 0) this.arm();
    this.lastEventAt = this.now();
    this.forward({ type: 'engine', id: WORKER_ID, state: 'restarting', reason, loadId });
  }

  /** The engine stays down until the user restarts it: every request so far fails with `error`. */
  private goDown(error: EngineErrorInfo): void {
    this.down = error;
    this.disarm();
    for (const id of [...this.jobs.keys()]) this.fail(id, error);
    this.forward({ type: 'error', id: WORKER_ID, error });
  }
}
