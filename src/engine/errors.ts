import type { EngineErrorInfo } from './protocol';

/** Every error name that crosses the worker boundary. A rename here fails the typecheck everywhere. */
export const ERROR_NAMES = [
  'BadRequestError',
  'BusyError',
  'CancelledError',
  'NotReadyError',
  'ModelError',
  'BackendUnavailableError',
  'UnsupportedError',
  'WorkerError',
  'EngineMissingError',
  'DownloadSaveError',
  'StorageFullError',
  'RuntimeError',
  'DownloadError',
  'DeviceLostError',
] as const;
export type EngineErrorName = (typeof ERROR_NAMES)[number];

export const isErrorName = (x: unknown): x is EngineErrorName => ERROR_NAMES.includes(x as EngineErrorName);

/**
 * The in-page action that fixes an error; the banner shows it as a button (none needs a reload):
 * - retry-load: load the model again (files already stored are not downloaded again)
 * - switch-backend: load it on the other backend
 * - free-storage: delete the models this studio keeps in the browser, then load again
 * - smaller-model: load the embedded model instead
 * - run-again: send the same run again
 * - restart-engine: start a new engine worker and load the model in it
 */
export const ERROR_FIXES = ['retry-load', 'switch-backend', 'free-storage', 'smaller-model', 'run-again', 'restart-engine'] as const;
export type ErrorFix = (typeof ERROR_FIXES)[number];

export const isErrorFix = (x: unknown): x is ErrorFix => ERROR_FIXES.includes(x as ErrorFix);

/** An error that knows what the user should do about it (and, when one button does it, which). */
export class EngineError extends Error {
  constructor(
    readonly name: EngineErrorName,
    message: string,
    readonly action: string,
    readonly fix?: ErrorFix,
  ) {
    super(message);
  }

  toInfo(): EngineErrorInfo {
    return { name: this.name, message: this.message, action: this.action, ...(this.fix && { fix: this.fix }) };
  }
}

export const badRequest = (message: string, action = 'Fix the request and send it again.') =>
  new EngineError('BadRequestError', message, action);

export const modelError = (message: string, action: string, fix?: ErrorFix) => new EngineError('ModelError', message, action, fix);

/** A download that failed on the way (connection, server, a body that broke off): retrying can fix it. */
export const downloadError = (message: string, action = 'Check your connection, then press Retry download. Files already downloaded are kept.') =>
  new EngineError('DownloadError', message, action, 'retry-load');

/** The GPU device under the model was lost (destroyed, a driver reset): the run fails; the engine restarts on a new device. */
export const deviceLostError = (why: string, during: 'load' | 'generate' = 'generate') =>
  new EngineError(
    'DeviceLostError',
    `The GPU device was lost while ${during === 'load' ? 'the model was loading' : 'this image was being made'} (${why}).`,
    'The engine starts again on a new device and reloads the model from browser storage. Press Run again. Your settings and images are kept.',
    'run-again',
  );

export class CancelledError extends EngineError {
  constructor(what: string) {
    super('CancelledError', `${what} was cancelled.`, 'Start it again when you are ready.');
  }
}

export const notReady = () =>
  new EngineError('NotReadyError', 'No model is loaded yet.', 'Wait for the model to finish loading, then press Generate.');

/** Any thrown value -> the protocol's error payload, with a generic hint for unknown failures. */
export function toErrorInfo(err: unknown): EngineErrorInfo {
  if (err instanceof EngineError) return err.toInfo();
  const e = err instanceof Error ? err : new Error(String(err));
  if (e.name === 'AbortError') return new CancelledError('The job').toInfo();
  const oom = /out of memory|allocation|OOM/i.test(e.message);
  return {
    name: 'RuntimeError',
    message: e.message,
    ...(oom
      ? { action: 'The device ran out of memory: close other tabs, or switch the backend.', fix: 'switch-backend' as const }
      : { action: 'Try again. If it keeps failing, switch the backend.' }),
  };
}
