/**
 * The trajectory of the studio's runs: each image's x0 estimates (the previews the engine sent,
 * every k steps, or every step with "record trajectory") and its final image, kept after the run
 * for the filmstrip. A store of its own, fed by the engine's events for the job the studio follows.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { GeneratedImage, WorkerEvent } from '../engine/protocol';

export interface TrajectoryFrame {
  /** Steps done when this estimate was made (the final image: total). */
  step: number;
  total: number;
  image: GeneratedImage;
  /** The finished image rather than an estimate. */
  final: boolean;
}

export interface TrajectoryState {
  /** The generate job these frames belong to. */
  jobId: string | null;
  /** Frames per image of the batch, in step order. */
  frames: Record<number, TrajectoryFrame[]>;
  /** Estimates dropped because the trajectory reached MAX_TRAJECTORY_BYTES. */
  dropped: number;
}

/** Pixels kept per run: 50 steps of 8 images at 64x64 are 6.5 MB; at 1024x1024 one image's 50 are 200 MB. */
export const MAX_TRAJECTORY_BYTES = 96 * 1024 * 1024;

export type TrajectoryStore = StoreApi<TrajectoryState>;

export function createTrajectoryStore(): TrajectoryStore {
  return createStore<TrajectoryState>()(() => ({ jobId: null, frames: {}, dropped: 0 }));
}

export const trajectoryStore = createTrajectoryStore();

const bytesOf = (frames: Record<number, TrajectoryFrame[]>) =>
  Object.values(frames).reduce((n, list) => n + list.reduce((m, f) => m + f.image.pixels.byteLength, 0), 0);

/**
 * Applies one engine event of the followed job (`jobId`: the studio's running generate). A new job
 * starts a new trajectory; events of other jobs change nothing. Pure apart from the store.
 */
export function recordEvent(store: TrajectoryStore, jobId: string | null, event: WorkerEvent): void {
  if (jobId === null || event.id !== jobId || (event.type !== 'preview' && event.type !== 'image')) return;
  const s = store.getState();
  const base = s.jobId === jobId ? s : { jobId, frames: {}, dropped: 0 };
  const index = event.index;
  const list = base.frames[index] ?? [];
  let frame: TrajectoryFrame;
  if (event.type === 'preview') {
    if (bytesOf(base.frames) + event.image.pixels.byteLength > MAX_TRAJECTORY_BYTES) {
      store.setState({ ...base, dropped: base.dropped + 1 });
      return;
    }
    frame = { step: event.step, total: event.total, image: event.image, final: false };
  } else {
    const total = event.params.numInferenceSteps;
    frame = { step: total, total, image: event.image, final: true };
  }
  store.setState({ ...base, frames: { ...base.frames, [index]: [...list, frame] } });
}

/** Follows the studio's generate jobs through the engine's events; returns the unsubscribe. */
export function connectTrajectory(engine: { subscribe(l: (e: WorkerEvent) => void): () => void }, followedJob: () => string | null, store: TrajectoryStore = trajectoryStore): () => void {
  return engine.subscribe((event) => recordEvent(store, followedJob(), event));
}
