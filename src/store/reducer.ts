import {
  assertNever,
  WORKER_ID,
  type DoneResult,
  type EngineErrorInfo,
  type EngineEvent,
  type ProgressEvent,
  type WorkerEvent,
} from '../engine/protocol';
import { formatSeconds } from './format';
import { idleGeneration, MAX_IMAGES, type StudioData } from './state';

interface Match {
  isLoad: boolean;
  isGenerate: boolean;
}

/**
 * Applies one engine event to the studio state and returns the fields that change (empty when
 * the event belongs to no job the store follows). Pure: no engine calls, no clocks, so every
 * case is a one-line test.
 */
export function applyEvent(state: StudioData, event: WorkerEvent): Partial<StudioData> {
  const { model, generation } = state;
  const match: Match = {
    isLoad: model.requestId !== null && event.id === model.requestId,
    isGenerate: generation.requestId !== null && event.id === generation.requestId,
  };

  switch (event.type) {
    case 'progress':
      return applyProgress(state, event, match);
    case 'backend':
      return match.isLoad ? { model: { ...model, loadingBackend: event.info } } : {};
    case 'preview':
      // the canvas previews the first image, the one shown large when the batch is done
      return match.isGenerate && event.index === 0 ? { preview: event.image } : {};
    case 'image': {
      if (!match.isGenerate) return {};
      const { type: _type, id: jobId, ...result } = event;
      return { images: [...state.images, { ...result, jobId }].slice(-MAX_IMAGES), shown: null, preview: null };
    }
    case 'done':
      return applyDone(state, event.result, match);
    case 'error':
      return applyError(state, event.error, { ...match, isWorker: event.id === WORKER_ID });
    case 'engine':
      return applyEngine(state, event);
    default:
      return assertNever(event);
  }
}

/**
 * The engine was replaced (it crashed, stopped answering, lost its GPU): the model loads again
 * under `loadId`, from browser storage. The interrupted run already got its own error; a run held
 * for the model stays held. The other engine events are the supervisor's business.
 */
function applyEngine(state: StudioData, event: EngineEvent): Partial<StudioData> {
  if (event.state !== 'restarting' || event.loadId === null) return {};
  return {
    model: { ...state.model, status: 'loading', requestId: event.loadId, files: {}, message: `Restarting the engine: ${event.reason}`, loadingBackend: null },
  };
}

function applyProgress(state: StudioData, event: ProgressEvent, match: Match): Partial<StudioData> {
  const { model, generation } = state;
  switch (event.stage) {
    case 'queued':
      if (match.isGenerate) return { generation: { ...generation, queued: true } };
      if (match.isLoad) return { model: { ...model, message: 'Waiting for the running image to finish' } };
      return {};
    case 'download': {
      if (!match.isLoad) return {};
      const { file, loaded, total } = event;
      return { model: { ...model, files: { ...model.files, [file]: { file, loaded, total } } } };
    }
    case 'prepare':
      return match.isLoad ? { model: { ...model, message: event.message } } : {};
    case 'denoise': {
      if (!match.isGenerate) return {};
      const { step, total, msPerStep } = event;
      const etaMs = msPerStep > 0 ? Math.max(0, total - step) * msPerStep : null;
      return { generation: { ...generation, queued: false, step, total, msPerStep, etaMs } };
    }
    default:
      return assertNever(event);
  }
}

function applyDone(state: StudioData, result: DoneResult, match: Match): Partial<StudioData> {
  switch (result.request) {
    case 'load':
      if (!match.isLoad) return {};
      return {
        model: {
          ...state.model,
          status: 'ready',
          info: result.model,
          backend: result.backend,
          loadingBackend: null,
          loadMs: result.loadMs,
          message: null,
          storage: result.storage ?? null,
        },
        // a run queued behind this load starts now
        generation: { ...state.generation, queued: false },
        // a "not loaded yet" refusal is obsolete now; other banners stay
        error: state.error?.name === 'NotReadyError' ? null : state.error,
        notice: null,
      };
    case 'generate': {
      if (!match.isGenerate) return {};
      const { timings } = result;
      const { total } = state.generation;
      return {
        generation: { ...idleGeneration, step: total, total, msPerStep: timings.msPerStep },
        preview: null,
        notice: `Done in ${formatSeconds(timings.totalMs)}`,
      };
    }
    case 'cancel':
      // The store follows the target's own final event (CancelledError, or done if it won the race).
      return {};
    default:
      return assertNever(result);
  }
}

function applyError(state: StudioData, error: EngineErrorInfo, match: Match & { isWorker: boolean }): Partial<StudioData> {
  const { model, generation } = state;
  if (match.isWorker) {
    // A crashed worker answers nothing in flight: unblock the UI and say so.
    return {
      error,
      model: model.status === 'loading' ? { ...model, status: 'error', loadingBackend: null } : model,
      generation: idleGeneration,
      preview: null,
    };
  }
  if (match.isLoad) {
    // The engine keeps the model it had (info, backend): a failed load only fails itself.
    // a run held for this load can no longer start: the load's banner says why
    return {
      error,
      model: { ...model, status: 'error', message: null, loadingBackend: null },
      generation: generation.pending ? idleGeneration : { ...generation, queued: false },
    };
  }
  if (match.isGenerate) {
    if (error.name === 'CancelledError') {
      const { step, total } = generation;
      const notice = total > 0 ? `Cancelled at step ${step}/${total}` : 'Cancelled before it started';
      return { generation: { ...idleGeneration, step, total }, preview: null, notice };
    }
    // A run that waited for a load that failed hears "not ready": the load's banner says more.
    const keepLoadError = error.name === 'NotReadyError' && model.status === 'error' && state.error !== null;
    return { error: keepLoadError ? state.error : error, generation: idleGeneration, preview: null, notice: null };
  }
  return {};
}
