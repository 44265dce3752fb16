/**
 * The UI thread's side of ImageEngine over one worker: the same interface as the worker's Engine,
 * carried over postMessage. Every call returns its job at once; the job's events reach its
 * listener and every subscriber; its result settles with the request's one final event.
 *
 * A worker can die or hang; EngineClient only reports what the Worker object says ('error',
 * 'messageerror') to its hooks. The supervisor (supervisor.ts) owns the policy: it watches the
 * events, replaces the worker and answers for the jobs the old one took with it.
 */
import { nextJobId } from './core/jobs';
import type { GenerateParams, GenerateRequestParams } from './schema';
import {
  type DoneResult,
  type EngineErrorInfo,
  type GenerateResult,
  type ImageEngine,
  type Job,
  type JobEvent,
  type JobListener,
  type LoadOptions,
  type LoadResult,
  type WorkerEvent,
  type WorkerRequest,
} from './protocol';

/** The part of a Worker the client needs (a real Worker, or a fake in tests). */
export interface WorkerLike {
  postMessage(message: WorkerRequest, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<WorkerEvent>) => void): void;
  addEventListener(type: 'error', listener: (e: ErrorEvent) => void): void;
  terminate?(): void;
}

/** The error a job's result rejects with: the protocol's error payload, as an Error. */
export class JobError extends Error {
  constructor(readonly info: EngineErrorInfo) {
    super(info.message);
    this.name = info.name;
  }
}

type Subscriber = (event: WorkerEvent) => void;

interface Pending {
  listener?: JobListener;
  resolve: (r: DoneResult) => void;
  reject: (e: JobError) => void;
}

export interface ClientHooks {
  /** The Worker object's 'error' event: its script failed to load or threw, or an error escaped it. */
  onError?(message: string | null): void;
  /** A message from the worker could not be read. */
  onMessageError?(): void;
}

export class EngineClient implements ImageEngine {
  private subscribers = new Set<Subscriber>();
  private pending = new Map<string, Pending>();

  constructor(
    private worker: WorkerLike,
    hooks: ClientHooks = {},
  ) {
    worker.addEventListener('message', (e: MessageEvent<WorkerEvent>) => this.emit(e.data));
    worker.addEventListener('error', (e: ErrorEvent) => {
      e.preventDefault?.();
      hooks.onError?.(e.message || null);
    });
    (worker as unknown as EventTarget).addEventListener?.('messageerror', () => hooks.onMessageError?.());
  }

  /** Every event of every job (the supervisor listens here). */
  subscribe(subscriber: Subscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  load(options: LoadOptions, listener?: JobListener, id = nextJobId('load')): Job<LoadResult> {
    return this.send({ type: 'load', id, ...options }, listener) as Job<LoadResult>;
  }

  generate(params: GenerateRequestParams | GenerateParams, listener?: JobListener, id = nextJobId('gen')): Job<GenerateResult> {
    // the init image is copied, not transferred: the caller keeps its pixels
    return this.send({ type: 'generate', id, params }, listener) as Job<GenerateResult>;
  }

  async cancel(jobId: string, id = nextJobId('cancel')): Promise<boolean> {
    const job = this.send({ type: 'cancel', id, targetId: jobId });
    const r = await job.result;
    return r.request === 'cancel' && r.cancelled;
  }

  /** Stops the worker; jobs still pending never settle here (the supervisor answers for them). */
  dispose(): void {
    this.subscribers.clear();
    this.pending.clear();
    this.worker.terminate?.();
  }

  private send(req: WorkerRequest, listener?: JobListener): Job<DoneResult> {
    const result = new Promise<DoneResult>((resolve, reject) => this.pending.set(req.id, { listener, resolve, reject }));
    result.catch(() => undefined); // callers that only follow events must not see unhandled rejections
    this.worker.postMessage(req);
    return { id: req.id, result };
  }

  private emit(event: WorkerEvent): void {
    const p = this.pending.get(event.id);
    if (p) {
      if (event.type === 'done') {
        this.pending.delete(event.id);
        p.resolve(event.result);
      } else if (event.type === 'error') {
        this.pending.delete(event.id);
        p.reject(new JobError(event.error));
      } else if (event.type !== 'engine') {
        const { id: _id, ...jobEvent } = event;
        p.listener?.(jobEvent as JobEvent);
      }
    }
    for (const s of this.subscribers) s(event);
  }
}
