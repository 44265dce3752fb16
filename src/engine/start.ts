/**
 * Starts the engine for the page: module Web Workers running worker.ts, under a supervisor that
 * replaces one that dies or hangs. (Kept apart from supervisor.ts so Node tests never bundle the worker.)
 */
import workerUrl from './worker.ts?worker&url';
import type { WorkerLike } from './client';
import { SupervisedEngine } from './supervisor';

/** Why the worker script did not load (its status, or the network error), or null when the server has it. */
async function diagnoseStart(): Promise<string | null> {
  const path = new URL(workerUrl, location.href).pathname;
  try {
    const res = await fetch(workerUrl, { method: 'HEAD', cache: 'no-store' });
    return res.ok ? null : `${path} did not load (the server answered ${res.status}${res.statusText ? ' ' + res.statusText : ''})`;
  } catch (e) {
    return `${path} did not load (${e instanceof Error ? e.message : String(e)})`;
  }
}

export function createEngineClient(): SupervisedEngine {
  return new SupervisedEngine({
    createWorker: () => new Worker(workerUrl, { type: 'module', name: 'webdit-engine' }) as unknown as WorkerLike,
    diagnoseStart,
  });
}
