import type { HistoryEntry } from '../history/db';
import { makeZip, uniqueNames } from '../history/zip';
import type { ImageRecord } from '../store/state';
import { studioStore } from '../store/store';
import { downloadName, pngWithParameters, saveFile } from './download';

/** The zip of a batch: each image exactly as its own "Download PNG" saves it. */
export async function downloadBatchZip(records: readonly ImageRecord[]): Promise<void> {
  const pngs = await Promise.all(records.map(pngWithParameters));
  const names = uniqueNames(records.map(downloadName));
  const first = records[0].params.seed;
  saveFile(makeZip(names.map((name, i) => ({ name, data: pngs[i] }))), `webdit-${first}-batch-of-${records.length}.zip`, 'application/zip');
}

/** The zip of the whole history, oldest first, each PNG as it was stored, dated when it was made. */
export async function downloadHistoryZip(entries: readonly HistoryEntry[]): Promise<void> {
  const pngs = await Promise.all(entries.map(async (e) => new Uint8Array(await e.png.arrayBuffer())));
  const names = uniqueNames(entries.map(downloadName));
  saveFile(makeZip(names.map((name, i) => ({ name, data: pngs[i], date: new Date(entries[i].createdAt) }))), `webdit-history-${entries.length}-images.zip`, 'application/zip');
}

/** Runs a download and turns a failure into the studio's banner, with what to do instead. */
export async function reportingSaveErrors(what: string, download: () => Promise<void>): Promise<void> {
  try {
    await download();
  } catch (e) {
    studioStore.getState().reportError({
      name: 'DownloadSaveError',
      message: `${what} could not be saved: ${e instanceof Error ? e.message : String(e)}`,
      action: 'Try again, or download the images one at a time.',
    });
  }
}
