/**
 * The worker's request handler, free of worker globals so Node tests drive it directly.
 * Rules: requests are validated; one load or generate runs at a time (a second one gets a
 * BusyError); cancel is always answered; every request gets exactly one final event.
 */
import { badRequest, EngineError, toErrorInfo } from './errors';
import type { LoadCallbacks, LoadResult, GenerateResult } from './engine';
import type { PipelineHooks } from './pipeline';
import { assertNever, LIMITS, type BackendPreference, type GenerateParams, type WorkerEvent, type WorkerRequest } from './protocol';

export interface EngineLike {
  readonly ready: boolean;
  load(url: string, pref: BackendPreference, cb: LoadCallbacks): Promise<LoadResult>;
  generate(params: GenerateParams, hooks: PipelineHooks): Promise<GenerateResult>;
}

export type Post = (event: WorkerEvent, transfer?: Transferable[]) => void;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Check a raw message; throws BadRequestError naming the bad field. */
export function parseRequest(raw: unknown): WorkerRequest {
  if (!isObj(raw)) throw badRequest('A request must be an object with "type" and "id".');
  if (typeof raw.id !== 'string' || raw.id.length === 0) throw badRequest('A request needs a non-empty string "id".');
  switch (raw.type) {
    case 'load': {
      if (typeof raw.modelUrl !== 'string' || !raw.modelUrl.endsWith('.json')) {
        throw badRequest('"modelUrl" must be the URL of a model manifest (…/manifest.json).');
      }
      const backend = raw.backend ?? 'auto';
      if (backend !== 'auto' && backend !== 'webgpu' && backend !== 'wasm') {
        throw badRequest(`"backend" must be "auto", "webgpu" or "wasm", not ${JSON.stringify(backend)}.`);
      }
      return { type: 'load', id: raw.id, modelUrl: raw.modelUrl, backend };
    }
    case 'generate':
      return { type: 'generate', id: raw.id, params: validateParams(raw.params) };
    case 'cancel':
      if (typeof raw.targetId !== 'string') throw badRequest('"targetId" must be the id of the request to cancel.');
      return { type: 'cancel', id: raw.id, targetId: raw.targetId };
    default:
      throw badRequest(`Unknown request type ${JSON.stringify(raw.type)}: use "load", "generate" or "cancel".`);
  }
}

export function validateParams(p: unknown): GenerateParams {
  if (!isObj(p)) throw badRequest('"params" must be an object.');
  const { prompt, negativePrompt = '', numInferenceSteps, guidanceScale, seed } = p;
  if (typeof prompt !== 'string') throw badRequest('"prompt" must be a string.');
  if (typeof negativePrompt !== 'string') throw badRequest('"negativePrompt" must be a string.');
  for (const [k, v] of [['prompt', prompt], ['negativePrompt', negativePrompt]] as const) {
    if (v.length > LIMITS.promptChars) throw badRequest(`"${k}" has ${v.length} characters; the limit is ${LIMITS.promptChars}.`, 'Shorten the prompt (only the first tokens are used anyway).');
  }
  const { steps, guidance } = LIMITS;
  if (typeof numInferenceSteps !== 'number' || !Number.isInteger(numInferenceSteps) || numInferenceSteps < steps.min || numInferenceSteps > steps.max) {
    throw badRequest(`"numInferenceSteps" must be an integer from ${steps.min} to ${steps.max}, not ${JSON.stringify(numInferenceSteps)}.`, `Set steps between ${steps.min} and ${steps.max}.`);
  }
  if (typeof guidanceScale !== 'number' || !Number.isFinite(guidanceScale) || guidanceScale < guidance.min || guidanceScale > guidance.max) {
    throw badRequest(`"guidanceScale" must be a number from ${guidance.min} to ${guidance.max}, not ${JSON.stringify(guidanceScale)}.`, `Set guidance between ${guidance.min} and ${guidance.max}.`);
  }
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw badRequest(`"seed" must be an integer from 0 to 4294967295, not ${JSON.stringify(seed)}.`, 'Use a whole number seed, or roll the dice.');
  }
  return { prompt, negativePrompt, numInferenceSteps, guidanceScale, seed };
}

export function createHandler(engine: EngineLike, post: Post): (raw: unknown) => Promise<void> {
  let active: { id: string; type: 'load' | 'generate'; cancelled: boolean } | null = null;

  const fail = (id: string, err: unknown) => post({ type: 'error', id, error: toErrorInfo(err) });

  return async (raw: unknown) => {
    let req: WorkerRequest;
    try {
      req = parseRequest(raw);
    } catch (e) {
      const id = isObj(raw) && typeof raw.id === 'string' && raw.id ? raw.id : 'invalid';
      return fail(id, e);
    }

    switch (req.type) {
      case 'cancel': {
        const hit = active?.type === 'generate' && active.id === req.targetId;
        if (hit) active!.cancelled = true;
        post({ type: 'done', id: req.id, result: { request: 'cancel', cancelled: hit } });
        return;
      }
      case 'load':
      case 'generate': {
        if (active) {
          return fail(req.id, new EngineError('BusyError', `The engine is busy with ${active.type} request ${active.id}.`, active.type === 'generate' ? 'Wait for the current image or cancel it (Esc), then try again.' : 'Wait for the model to finish loading.'));
        }
        const job = (active = { id: req.id, type: req.type, cancelled: false });
        try {
          if (req.type === 'load') {
            const id = req.id;
            const result = await engine.load(req.modelUrl, req.backend, {
              onDownload: (file, loaded, total) => post({ type: 'download', id, file, loaded, total }),
              onStatus: (message) => post({ type: 'status', id, message }),
              onBackend: (info) => post({ type: 'backend', id, info }),
            });
            post({ type: 'done', id, result });
          } else {
            const id = req.id;
            const { latents: _latents, ...result } = await engine.generate(req.params, {
              isCancelled: () => job.cancelled,
              onStep: (step, total, msPerStep) => post({ type: 'step', id, step, total, msPerStep }),
            });
            post({ type: 'done', id, result }, [result.image.pixels.buffer as ArrayBuffer]);
          }
        } catch (e) {
          fail(req.id, e);
        } finally {
          active = null;
        }
        return;
      }
      default:
        assertNever(req);
    }
  };
}
