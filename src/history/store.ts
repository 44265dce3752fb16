/**
 * The image history's state: the entries IndexedDB holds (mirrored here for the gallery), the
 * storage estimate, and the last failure. Writes run one at a time, in order, so the eviction
 * that follows a save always sees the entries as they are.
 *
 * Its own small store (not the studio's): the studio knows nothing of history; connectHistory
 * follows the studio's finished images and saves each one.
 */
import { useStore } from 'zustand';
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { ImageRecord } from '../store/state';
import type { StudioStore } from '../store/store';
import { isQuotaError, openHistoryDb, type HistoryDb, type HistoryEntry, type HistoryInput } from './db';
import { entriesToEvict, HISTORY_LIMITS, type HistoryLimits } from './entries';

export interface HistoryProblem {
  /** What happened. */
  message: string;
  /** What the user can do about it. */
  action: string;
  /** The browser's storage is full (QuotaExceededError). */
  quota: boolean;
}

export interface StorageEstimateLike {
  usage?: number;
  quota?: number;
}

export interface HistoryState {
  status: 'idle' | 'loading' | 'ready' | 'unavailable';
  /** Oldest first, as IndexedDB keys them. */
  entries: HistoryEntry[];
  /** navigator.storage.estimate() after the last change; null where the browser has none. */
  estimate: StorageEstimateLike | null;
  /** The last write or open that failed; stays until dismissed or a later save succeeds. */
  problem: HistoryProblem | null;
  start(): Promise<void>;
  /** Saves one image (after the writes before it); never rejects: a failure lands in `problem`. */
  save(input: HistoryInput | (() => Promise<HistoryInput>)): Promise<void>;
  remove(id: number): Promise<void>;
  clear(): Promise<void>;
  dismissProblem(): void;
  /** Resolves once every write queued so far has finished. */
  whenIdle(): Promise<void>;
}

export type HistoryStore = StoreApi<HistoryState>;

export interface HistoryDeps {
  open(): Promise<HistoryDb>;
  estimate(): Promise<StorageEstimateLike | null>;
  limits?: HistoryLimits;
}

const browserEstimate = async (): Promise<StorageEstimateLike | null> =>
  typeof navigator !== 'undefined' && navigator.storage?.estimate ? navigator.storage.estimate() : null;

const describe = (e: unknown) => (e instanceof Error || e instanceof DOMException ? `${e.name}: ${e.message}` : String(e));

export function createHistoryStore(deps: HistoryDeps = { open: () => openHistoryDb(), estimate: browserEstimate }): HistoryStore {
  const limits = deps.limits ?? HISTORY_LIMITS;
  let db: HistoryDb | null = null;
  // every write waits for the one before it
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = chain.then(task);
    chain = run.catch(() => undefined);
    return run;
  };

  return createStore<HistoryState>()((set, get) => {
    const refreshEstimate = async () => {
      try {
        set({ estimate: await deps.estimate() });
      } catch {
        set({ estimate: null });
      }
    };

    /** Failures of delete/clear: the entries are read back, so the gallery shows what is really stored. */
    const resync = async (what: string, e: unknown) => {
      set({ problem: { message: `${what} failed: ${describe(e)}.`, action: 'Try again, or reload the page.', quota: false } });
      if (db) set({ entries: await db.all().catch(() => get().entries) });
    };

    return {
      status: 'idle',
      entries: [],
      estimate: null,
      problem: null,

      start: () =>
        serial(async () => {
          if (get().status !== 'idle') return;
          set({ status: 'loading' });
          try {
            db = await deps.open();
            set({ status: 'ready', entries: await db.all() });
          } catch (e) {
            db = null;
            set({
              status: 'unavailable',
              problem: {
                message: `History is off: the browser's database could not be opened (${describe(e)}). New images are not kept after a reload.`,
                action: 'Download the images you want to keep. A normal (not private) window, or allowing site data for this page, turns history on.',
                quota: false,
              },
            });
          }
          await refreshEstimate();
        }),

      save: (input) =>
        serial(async () => {
          if (!db) return;
          let seed: number | null = null;
          try {
            const value = typeof input === 'function' ? await input() : input;
            seed = value.params.seed;
            const entry = await db.add(value);
            let entries = [...get().entries, entry];
            const evict = entriesToEvict(entries, limits);
            if (evict.length > 0) {
              await db.remove(evict);
              entries = entries.filter((x) => !evict.includes(x.id));
            }
            set({ entries, problem: get().problem?.quota ? null : get().problem });
          } catch (e) {
            const which = seed === null ? 'The new image' : `The image with seed ${seed}`;
            // everything stored before stays: nothing is deleted to make room without the user's say
            set({
              problem: isQuotaError(e)
                ? {
                    message: `${which} was not saved to history: this site's storage is full (the browser refused the write with QuotaExceededError). The image is still on screen, and the history below is unchanged.`,
                    action: 'Download it now if you want to keep it, then delete old images from the history (Delete on an image, or Delete all) to make room for new ones.',
                    quota: true,
                  }
                : {
                    message: `${which} was not saved to history: ${describe(e)}. It is still on screen.`,
                    action: 'Download it now if you want to keep it. If this keeps happening, reload the page.',
                    quota: false,
                  },
            });
          }
          await refreshEstimate();
        }),

      remove: (id) =>
        serial(async () => {
          if (!db) return;
          try {
            await db.remove([id]);
            set({ entries: get().entries.filter((e) => e.id !== id) });
          } catch (e) {
            await resync('Deleting the image', e);
          }
          await refreshEstimate();
        }),

      clear: () =>
        serial(async () => {
          if (!db) return;
          try {
            await db.clear();
            set({ entries: [], problem: null });
          } catch (e) {
            await resync('Deleting all images', e);
          }
          await refreshEstimate();
        }),

      dismissProblem: () => set({ problem: null }),
      whenIdle: () => chain.then(() => undefined),
    };
  });
}

/**
 * Saves every image the studio finishes, once, with the backend its model ran on. `encode` makes
 * the PNG (download.ts's, with the parameters chunk), inside the write queue so batches keep order.
 */
export function connectHistory(studio: StudioStore, history: HistoryStore, encode: (record: ImageRecord) => Promise<Uint8Array>, now: () => number = Date.now): () => void {
  const seen = new WeakSet<ImageRecord>(studio.getState().images);
  void history.getState().start();
  return studio.subscribe((state, prev) => {
    if (state.images === prev.images) return;
    for (const record of state.images) {
      if (seen.has(record)) continue;
      seen.add(record);
      const backend = state.model.backend;
      const createdAt = now();
      void history.getState().save(async () => ({
        createdAt,
        png: new Blob([(await encode(record)) as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
        width: record.image.width,
        height: record.image.height,
        params: record.params,
        modelId: record.modelId,
        shift: record.shift,
        backend,
        timings: record.timings,
      }));
    }
  });
}

/** The app's one history. */
export const historyStore = createHistoryStore();

export function useHistory<T>(selector: (state: HistoryState) => T): T {
  return useStore(historyStore, selector);
}
