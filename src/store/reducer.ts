import { assertNever, WORKER_ID, type DoneResult, type EngineErrorInfo, type WorkerEvent } from '../engine/protocol';
import { formatSeconds } from './format';
import { clampGuidance, clampSteps } from './params';
import { idleGeneration, type StudioData } from './state';

/** The id EngineClient uses for errors that belong to no request (the worker itself crashed). */
export const WORKER_ERROR_ID = WORKER_ID;

/** Store-side refusals that a finished load makes obsolete. */
export const NOT_READY_ERROR = 'NotReadyError';

/**
 * Applies one engine event to the studio state and returns the fields that change (empty when
 * the event is stale). Pure: no engine calls, no clocks, so every case is a one-line test.
 */
export function applyEvent(state: StudioData, event: WorkerEvent): Partial<StudioData> {
  const { model, generation } = state;
  const isLoad = model.requestId !== null && event.id === model.requestId;
  const isGenerate = generation.requestId !== null && event.id === generation.requestId;
  const isCancel = generation.cancelRequestId !== null && event.id === generation.cancelRequestId;

  switch (event.type) {
    case 'download': {
      if (!isLoad) return {};
      const { file, loaded, total } = event;
      return { model: { ...model, files: { ...model.files, [file]: { file, loaded, total } } } };
    }
    case 'status':
      if (isLoad) return { model: { ...model, message: event.message } };
      if (isGenerate) return { generation: { ...generation, message: event.message } };
      return {};
    case 'backend':
      return isLoad ? { model: { ...model, backend: event.info } } : {};
    case 'step': {
      if (!isGenerate) return {};
      const { step, total, msPerStep } = event;
      const etaMs = msPerStep > 0 ? Math.max(0, total - step) * msPerStep : null;
      return { generation: { ...generation, step, total, msPerStep, etaMs } };
    }
    case 'done':
      return applyDone(state, event.result, { isLoad, isGenerate, isCancel });
    case 'error':
      return applyError(state, event.error, { isLoad, isGenerate, isCancel, isWorker: event.id === WORKER_ERROR_ID });
    default:
      return assertNever(event);
  }
}

interface Match {
  isLoad: boolean;
  isGenerate: boolean;
  isCancel: boolean;
}

function applyDone(state: StudioData, result: DoneResult, match: Match): Partial<StudioData> {
  switch (result.request) {
    case 'load': {
      if (!match.isLoad) return {};
      const { defaults } = result.model;
      const { touched } = state;
      return {
        model: { ...state.model, status: 'ready', info: result.model, backend: result.backend, loadMs: result.loadMs, message: null },
        // The model knows its best settings; only what the user chose wins over them.
        numInferenceSteps: touched.numInferenceSteps ? state.numInferenceSteps : (clampSteps(defaults.steps) ?? state.numInferenceSteps),
        guidanceScale: touched.guidanceScale ? state.guidanceScale : (clampGuidance(defaults.guidanceScale) ?? state.guidanceScale),
        negativePrompt: touched.negativePrompt ? state.negativePrompt : defaults.negativePrompt,
        error: state.error?.name === NOT_READY_ERROR ? null : state.error,
        notice: null,
      };
    }
    case 'generate': {
      if (!match.isGenerate) return {};
      const { image, params, modelId, shift, timings } = result;
      return {
        lastImage: { image, params, modelId, shift, timings },
        generation: { ...idleGeneration, step: params.numInferenceSteps, total: params.numInferenceSteps, msPerStep: timings.msPerStep },
        notice: `Done in ${formatSeconds(timings.totalMs)}`,
      };
    }
    case 'cancel':
      // The target still ends with its own event (CancelledError, or done if it won the race).
      return match.isCancel ? { generation: { ...state.generation, cancelRequestId: null } } : {};
    default:
      return assertNever(result);
  }
}

function applyError(
  state: StudioData,
  error: EngineErrorInfo,
  match: Match & { isWorker: boolean },
): Partial<StudioData> {
  const { model, generation } = state;
  if (match.isWorker) {
    // A crashed worker answers nothing in flight: unblock the UI and say so.
    return {
      error,
      model: model.status === 'loading' ? { ...model, status: 'error' } : model,
      generation: idleGeneration,
    };
  }
  if (match.isLoad) return { error, model: { ...model, status: 'error', message: null, backend: null } };
  if (match.isGenerate) {
    if (error.name === 'CancelledError') {
      const { step, total } = generation;
      return { generation: { ...idleGeneration, step, total }, notice: `Cancelled at step ${step}/${total}` };
    }
    return { error, generation: idleGeneration, notice: null };
  }
  if (match.isCancel) {
    // The run goes on and will end with its own event; only the cancel itself failed.
    return { error, generation: { ...generation, cancelRequestId: null } };
  }
  return {};
}
