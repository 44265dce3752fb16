/**
 * Pure rules of the image history: how much it keeps, what "restore settings" puts in the form,
 * file names, and the storage line. No IndexedDB, no DOM: every rule is a one-line test.
 */
import { formatBytes } from '../store/format';
import type { FormValues } from '../store/state';
import type { HistoryEntry } from './db';

/**
 * History keeps the newest HISTORY_MAX_IMAGES images and at most HISTORY_MAX_BYTES of PNGs; after
 * each save the oldest go first. 500 images are ~5 MB at the embedded model's 64x64 and the byte
 * cap (~0.5-1.5 MB per 1024x1024 PNG: 130-400 images) keeps large models within a few percent of a
 * typical origin quota, beside the model cache.
 */
export const HISTORY_MAX_IMAGES = 500;
export const HISTORY_MAX_BYTES = 256 * 1024 * 1024;

export interface HistoryLimits {
  maxImages: number;
  maxBytes: number;
}

export const HISTORY_LIMITS: HistoryLimits = { maxImages: HISTORY_MAX_IMAGES, maxBytes: HISTORY_MAX_BYTES };

/** Ids of the oldest entries to delete so the rest fit the limits (entries oldest first; the newest is always kept). */
export function entriesToEvict(entries: readonly Pick<HistoryEntry, 'id' | 'bytes'>[], limits: HistoryLimits = HISTORY_LIMITS): number[] {
  let count = entries.length;
  let bytes = entries.reduce((n, e) => n + e.bytes, 0);
  const evict: number[] = [];
  for (const e of entries) {
    if (count <= 1 || (count <= limits.maxImages && bytes <= limits.maxBytes)) break;
    evict.push(e.id);
    count--;
    bytes -= e.bytes;
  }
  return evict;
}

/**
 * The form that makes this image again: its own seed as a batch of one, the seed fixed (not
 * rolled). Image-to-image's strength comes back too; its init picture is not kept (see restoreNotes).
 */
export function formFromEntry({ params: p }: Pick<HistoryEntry, 'params'>): Partial<FormValues> {
  return {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    numInferenceSteps: p.numInferenceSteps,
    guidanceScale: p.guidanceScale,
    seed: p.seed,
    randomizeSeed: false,
    numImagesPerPrompt: 1,
    size: [p.width, p.height],
    ...(p.imageToImage && { strength: p.strength }),
  };
}

/** What the restored form cannot bring back, as sentences for the form's notice ('' when nothing). */
export function restoreNotes(entry: Pick<HistoryEntry, 'params' | 'modelId'>, loadedModelId: string | null): string {
  const notes: string[] = [];
  if (loadedModelId !== null && entry.modelId !== loadedModelId) {
    notes.push(`This image was made with the model "${entry.modelId}", but "${loadedModelId}" is loaded: the same settings make a different image. Load ${entry.modelId} to make it again.`);
  }
  if (entry.params.imageToImage) {
    notes.push('This image started from an init image, which history does not keep: pick the same picture again (Init image) to make it again.');
  }
  return notes.join(' ');
}

/** The gallery's storage line: what history holds, and the whole site's use from navigator.storage. */
export function storageLine(count: number, bytes: number, estimate: { usage?: number; quota?: number } | null): string {
  const own = `${count} ${count === 1 ? 'image' : 'images'}, ${formatBytes(bytes)}`;
  if (!estimate || estimate.usage === undefined) return own;
  const quota = estimate.quota !== undefined ? ` of ${formatBytes(estimate.quota)}` : '';
  return `${own} · this site uses ${formatBytes(estimate.usage)}${quota} (the model cache included)`;
}
