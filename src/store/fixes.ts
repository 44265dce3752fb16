/**
 * Retry in place: which buttons an error banner offers, and what they say. Pure, so each case is a
 * one-line test. The engine names the fix where it knows it (EngineErrorInfo.fix); errors without
 * one get theirs from their name and from what failed (the load, or a run).
 */
import { MODEL_CACHE } from '../engine/core/storage';
import type { BackendPreference, EngineErrorInfo, ErrorFix } from '../engine/protocol';
import type { StudioData } from './state';

/** The model folder shipped with the studio: the small model every browser can run. */
export const EMBEDDED_MODEL_URL = `${import.meta.env.BASE_URL}models/webdit-tiny/`;

/** The backend "switch the backend" goes to: away from the one that failed or ran. */
export function otherBackend(s: Pick<StudioData, 'backendPreference' | 'model'>): Exclude<BackendPreference, 'auto'> {
  const tried = s.model.loadingBackend?.backend ?? s.model.backend?.backend ?? (s.backendPreference === 'auto' ? null : s.backendPreference);
  return tried === 'wasm' ? 'webgpu' : 'wasm';
}

/** The buttons for `error`, most useful first (an empty list: the message says what to change, e.g. the prompt). */
export function fixesFor(error: EngineErrorInfo, s: Pick<StudioData, 'model' | 'backendPreference'>): ErrorFix[] {
  const fixes: ErrorFix[] = [];
  const add = (...f: ErrorFix[]) => {
    for (const x of f) if (!fixes.includes(x)) fixes.push(x);
  };
  if (error.fix) add(error.fix);
  const loadFailed = s.model.status === 'error';
  const onEmbedded = s.model.url === EMBEDDED_MODEL_URL;
  switch (error.name) {
    case 'StorageFullError':
      add('free-storage');
      if (!onEmbedded) add('smaller-model');
      break;
    case 'BackendUnavailableError':
      add('switch-backend');
      break;
    case 'DownloadError':
      add('retry-load');
      break;
    case 'DeviceLostError':
      add('run-again', 'switch-backend');
      break;
    case 'WorkerError':
      // an interrupted run says Run again (the engine already restarted); anything else restarts it
      if (!error.fix) add('restart-engine');
      break;
    case 'ModelError':
      add(loadFailed ? 'retry-load' : 'run-again');
      break;
    case 'RuntimeError':
      add(loadFailed ? 'retry-load' : 'run-again', 'switch-backend');
      break;
    default:
      // BadRequestError, NotReadyError, BusyError, DownloadSaveError: the text says what to change
      break;
  }
  // loading the embedded model again does not help when it is the one that cannot load
  return fixes.filter((f) => f !== 'smaller-model' || !onEmbedded).filter((f) => f !== 'retry-load' || s.model.url !== null);
}

/** The button's text. */
export function fixLabel(fix: ErrorFix, error: EngineErrorInfo, s: Pick<StudioData, 'model' | 'backendPreference'>): string {
  switch (fix) {
    case 'retry-load':
      return error.name === 'DownloadError' || /download/i.test(error.message) ? 'Retry download' : 'Retry';
    case 'switch-backend':
      return otherBackend(s) === 'wasm' ? 'Use WASM' : 'Use WebGPU';
    case 'free-storage':
      return 'Delete cached models';
    case 'smaller-model':
      return 'Load the small built-in model';
    case 'run-again':
      return 'Run again';
    case 'restart-engine':
      return 'Restart engine';
  }
}

/** Deletes the model files this studio keeps in the browser (every Cache API cache named webdit-models*). */
export async function deleteCachedModels(): Promise<number> {
  if (typeof caches === 'undefined') return 0;
  const prefix = MODEL_CACHE.replace(/-v\d+$/, '');
  let n = 0;
  for (const name of await caches.keys()) if (name.startsWith(prefix) && (await caches.delete(name))) n++;
  return n;
}

/** "27.5 MB": what a visit downloads when nothing is kept. */
export const formatMB = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;

/** The notice for storage that refused the model's files, or null while it keeps them. */
export function storageNotice(s: Pick<StudioData, 'model'>): string | null {
  const st = s.model.storage;
  if (!st || st.kept) return null;
  const why = st.reason ? ` (${st.reason})` : '';
  return `This browser is not keeping model files${why}: every visit downloads ${formatMB(st.bytes)} again. The model runs from memory for now.`;
}
