import type { EngineErrorInfo } from './protocol';

/** An error that knows what the user should do about it. */
export class EngineError extends Error {
  constructor(
    name: string,
    message: string,
    readonly action: string,
  ) {
    super(message);
    this.name = name;
  }

  toInfo(): EngineErrorInfo {
    return { name: this.name, message: this.message, action: this.action };
  }
}

export const badRequest = (message: string, action = 'Fix the request and send it again.') =>
  new EngineError('BadRequestError', message, action);

export const modelError = (message: string, action: string) => new EngineError('ModelError', message, action);

export class CancelledError extends EngineError {
  constructor(readonly step: number, readonly total: number) {
    super('CancelledError', `Generation cancelled after step ${step} of ${total}.`, 'Press Generate to start again.');
  }
}

/** Any thrown value -> the protocol's error payload, with a generic hint for unknown failures. */
export function toErrorInfo(err: unknown): EngineErrorInfo {
  if (err instanceof EngineError) return err.toInfo();
  const e = err instanceof Error ? err : new Error(String(err));
  const oom = /out of memory|allocation|OOM/i.test(e.message);
  return {
    name: e.name || 'Error',
    message: e.message,
    action: oom
      ? 'The device ran out of memory: close other tabs, or switch the backend to WASM (?backend=wasm).'
      : 'Try again. If it keeps failing, reload the page or switch the backend (?backend=wasm or ?backend=webgpu).',
  };
}
