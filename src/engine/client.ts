/**
 * The UI thread's side of ImageEngine: the same interface as the worker's Engine, carried over
 * postMessage. Every call returns its job at once; the job's events reach its listener and every
 * subscriber; its result settles with the request's one final event.
 */
import { nextJobId } from './core/jobs';
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
  type WorkerEvent,
  type WorkerRequest,
} from './protocol';

/** The part of a Worker the client needs (a real Worker, or a MessagePort in tests). */
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

const workerError = (id: string, message: string): WorkerEvent => ({
  type: 'error',
  id,
  error: { name: 'WorkerError', message, action: 'Reload the page. If it happens again, try the WASM backend (?backend=wasm).' },
});

export class EngineClient implements ImageEngine {
  private subscribers = new Set<Subscriber>();
  private pending = new Map<string, Pending>();
  private dead: string | null = null;

  constructor(private worker: WorkerLike) {
    worker.addEventListener('message', (e: MessageEvent<WorkerEvent>) => this.emit(e.data));
    worker.addEventListener('error', (e: ErrorEvent) => {
      this.dead = e.message || 'unknown error';
      this.emit(workerError(WORKER_ID, `The engine worker crashed: ${this.dead}`));
      // a crashed worker answers nothing in flight: answer for it
      for (const id of [...this.pending.keys()]) this.emit(workerError(id, `The engine worker crashed: ${this.dead}`));
    });
    (worker as unknown as EventTarget).addEventListener?.('messageerror', () => this.emit(workerError(WORKER_ID, 'A message from the engine could not be read.')));
  }

  /** Every event of every job (the store's reducer listens here). */
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

  async cancel(jobId: string): Promise<boolean> {
    const job = this.send({ type: 'cancel', id: nextJobId('cancel'), targetId: jobId });
    const r = await job.result;
    return r.request === 'cancel' && r.cancelled;
  }

  dispose(): void {
    this.subscribers.clear();
    this.worker.terminate?.();
  }

  private send(req: WorkerRequest, listener?: JobListener): Job<DoneResult> {
    const result = new Promise<DoneResult>((resolve, reject) => this.pending.set(req.id, { listener, resolve, reject }));
    result.catch(() => undefined); // callers that only follow events must not see unhandled rejections
    if (this.dead) {
      const reason = this.dead;
      queueMicrotask(() => this.emit(workerError(req.id, `The engine worker has stopped (${reason}).`)));
    } else {
      this.worker.postMessage(req);
    }
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
      } else {
        const { id: _id, ...jobEvent } = event;
        p.listener?.(jobEvent as JobEvent);
      }
    }
    for (const s of this.subscribers) s(event);
  }
}

/** Starts the engine in a module Web Worker (Vite bundles worker.ts and its imports). */
export function createEngineClient(): EngineClient {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'webdit-engine' });
  return new EngineClient(worker as unknown as WorkerLike);
}
