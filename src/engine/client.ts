import { WORKER_ID, type BackendPreference, type GenerateParams, type WorkerEvent, type WorkerRequest } from './protocol';

/** The part of a Worker the client needs (a real Worker, or a MessagePort in tests). */
export interface WorkerLike {
  postMessage(message: WorkerRequest): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<WorkerEvent>) => void): void;
  addEventListener(type: 'error', listener: (e: ErrorEvent) => void): void;
  terminate?(): void;
}

type Listener = (event: WorkerEvent) => void;

const workerError = (id: string, message: string): WorkerEvent => ({
  type: 'error',
  id,
  error: { name: 'WorkerError', message, action: 'Reload the page. If it happens again, try the WASM backend (?backend=wasm).' },
});

let counter = 0;
const nextId = (kind: string) => `${kind}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/**
 * UI-thread handle on the engine worker. Requests return their id at once; everything that
 * happens afterwards (progress, the image, errors) arrives as WorkerEvents to subscribers.
 */
export class EngineClient {
  private listeners = new Set<Listener>();
  private dead: string | null = null;

  constructor(private worker: WorkerLike) {
    worker.addEventListener('message', (e: MessageEvent<WorkerEvent>) => this.emit(e.data));
    worker.addEventListener('error', (e: ErrorEvent) => {
      this.dead = e.message || 'unknown error';
      this.emit(workerError(WORKER_ID, `The engine worker crashed: ${this.dead}`));
    });
    (worker as unknown as EventTarget).addEventListener?.('messageerror', () =>
      this.emit(workerError(WORKER_ID, 'A message from the engine could not be read.')),
    );
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  load(modelUrl: string, backend: BackendPreference): string {
    return this.send({ type: 'load', id: nextId('load'), modelUrl, backend });
  }

  generate(params: GenerateParams): string {
    return this.send({ type: 'generate', id: nextId('gen'), params });
  }

  cancel(targetId: string): string {
    return this.send({ type: 'cancel', id: nextId('cancel'), targetId });
  }

  dispose(): void {
    this.listeners.clear();
    this.worker.terminate?.();
  }

  private send<R extends WorkerRequest>(req: R): string {
    if (this.dead) {
      // a crashed worker answers nothing: answer for it, so the request still gets its final event
      queueMicrotask(() => this.emit(workerError(req.id, `The engine worker has stopped (${this.dead}).`)));
      return req.id;
    }
    this.worker.postMessage(req);
    return req.id;
  }

  private emit(event: WorkerEvent): void {
    for (const l of this.listeners) l(event);
  }
}

/** Starts the engine in a module Web Worker (Vite bundles worker.ts and its imports). */
export function createEngineClient(): EngineClient {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'webdit-engine' });
  return new EngineClient(worker as unknown as WorkerLike);
}
