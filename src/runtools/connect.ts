import type { ImageEngine, WorkerEvent } from '../engine/protocol';
import type { StudioStore } from '../store/store';
import { animationStore } from './animation';
import { connectTrajectory, trajectoryStore } from './trajectory';

/**
 * Wires the run tools to the engine, once, beside connectEngine: the trajectory follows the
 * studio's generate jobs, the animation panel sends its own. Returns the disconnect function.
 */
export function connectRunTools(engine: ImageEngine & { subscribe(l: (e: WorkerEvent) => void): () => void }, studio: StudioStore): () => void {
  animationStore.getState().attach(engine);
  const off = connectTrajectory(engine, () => studio.getState().generation.requestId, trajectoryStore);
  return () => {
    off();
    animationStore.getState().attach(null);
  };
}
