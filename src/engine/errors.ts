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
] as const;
export type EngineErrorName = (typeof ERROR_NAMES)[number];

export const isErrorName = (x: unknown): x is EngineErrorName => ERROR_NAMES.includes(x as EngineErrorName);

/** An error that knows what the user should do about it. */
export class EngineError extends Error {
  constructor(
    readonly name: EngineErrorName,
    message: string,
    readonly action: string,
  ) {
    super(message);
  }

  toInfo(): EngineErrorInfo {
    return { name: this.name, message: this.message, action: this.action };
  }
}

export const badRequest = (message: string, action = 'Fix the request and send it again.') =>
  new EngineError('BadRequestError', message, action);

export const modelError = (message: string, action: string) => new EngineError('ModelError', message, action);

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
    action: oom
      ? 'The device ran out of memory: close other tabs, or switch the backend to WASM (?backend=wasm).'
      : 'Try again. If it keeps failing, reload the page or switch the backend (?backend=wasm or ?backend=webgpu).',
  };
}
