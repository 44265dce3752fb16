/**
 * The worker's request handler, free of worker globals so Node tests drive it directly. It only
 * translates: a parsed request becomes an ImageEngine call, the job's events become WorkerEvents,
 * and its outcome the one final event. Queueing and the busy rule live in the engine's JobQueue.
 */
import { badRequest, toErrorInfo } from '../errors';
import { assertNever, type BackendPreference, type ImageEngine, type JobEvent, type WorkerEvent, type WorkerRequest } from '../protocol';
import { parseGenerateParams } from '../schema';

export type Post = (event: WorkerEvent, transfer?: Transferable[]) => void;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const BACKENDS: readonly BackendPreference[] = ['auto', 'webgpu', 'wasm'];

/** Check a raw message; throws BadRequestError naming the bad field. */
export function parseRequest(raw: unknown): WorkerRequest {
  if (!isObj(raw)) throw badRequest('A request must be an object with "type" and "id".');
  if (typeof raw.id !== 'string' || raw.id.length === 0) throw badRequest('A request needs a non-empty string "id".');
  switch (raw.type) {
    case 'load': {
      if (typeof raw.modelUrl !== 'string' || raw.modelUrl.length === 0) {
        throw badRequest('"modelUrl" must be the URL of a model folder (…/<model>/) or of its manifest.json.');
      }
      const backend = raw.backend ?? 'auto';
      if (!BACKENDS.includes(backend as BackendPreference)) {
        throw badRequest(`"backend" must be "auto", "webgpu" or "wasm", not ${JSON.stringify(backend)}.`);
      }
      const skip = raw.skipComponents ?? [];
      if (!Array.isArray(skip) || !skip.every((c) => typeof c === 'string')) throw badRequest('"skipComponents" must be a list of component names.');
      return { type: 'load', id: raw.id, modelUrl: raw.modelUrl, backend: backend as BackendPreference, ...(skip.length ? { skipComponents: skip } : {}) };
    }
    case 'generate':
      return { type: 'generate', id: raw.id, params: parseGenerateParams(raw.params) };
    case 'cancel':
      if (typeof raw.targetId !== 'string') throw badRequest('"targetId" must be the id of the request to cancel.');
      return { type: 'cancel', id: raw.id, targetId: raw.targetId };
    default:
      throw badRequest(`Unknown request type ${JSON.stringify(raw.type)}: use "load", "generate" or "cancel".`);
  }
}

/** Pixel buffers move to the UI thread instead of being copied. */
function transferOf(ev: JobEvent): Transferable[] | undefined {
  return ev.type === 'image' || ev.type === 'preview' ? [ev.image.pixels.buffer as ArrayBuffer] : undefined;
}

export interface WorkerSideEngine extends ImageEngine {
  load(...args: [...Parameters<ImageEngine['load']>, id?: string]): ReturnType<ImageEngine['load']>;
  generate(...args: [...Parameters<ImageEngine['generate']>, id?: string]): ReturnType<ImageEngine['generate']>;
}

/** Returns the handler; its promise settles once the request's final event is posted. */
export function createHandler(engine: WorkerSideEngine, post: Post): (raw: unknown) => Promise<void> {
  const fail = (id: string, err: unknown) => post({ type: 'error', id, error: toErrorInfo(err) });

  return async (raw: unknown) => {
    let req: WorkerRequest;
    try {
      req = parseRequest(raw);
    } catch (e) {
      const id = isObj(raw) && typeof raw.id === 'string' && raw.id ? raw.id : 'invalid';
      return fail(id, e);
    }
    const { id } = req;
    const forward = (ev: JobEvent) => post({ ...ev, id }, transferOf(ev));

    switch (req.type) {
      case 'cancel': {
        const cancelled = await engine.cancel(req.targetId);
        post({ type: 'done', id, result: { request: 'cancel', cancelled } });
        return;
      }
      case 'load':
      case 'generate': {
        const job = req.type === 'load' ? engine.load({ modelUrl: req.modelUrl, backend: req.backend, skipComponents: req.skipComponents }, forward, id) : engine.generate(req.params, forward, id);
        try {
          post({ type: 'done', id, result: await job.result });
        } catch (e) {
          fail(id, e);
        }
        return;
      }
      default:
        assertNever(req);
    }
  };
}
