import { useEffect, useRef, useState } from 'react';
import type { HistoryEntry } from '../history/db';
import { formFromEntry, HISTORY_MAX_BYTES, HISTORY_MAX_IMAGES, restoreNotes, storageLine } from '../history/entries';
import { historyStore, useHistory } from '../history/store';
import { formatBytes, formatTimings } from '../store/format';
import { studioStore } from '../store/store';
import { labelText } from '../text';
import { downloadName, saveFile } from './download';
import { downloadHistoryZip, reportingSaveErrors } from './zipDownload';

/** An object URL for the blob while the component shows it. */
function useObjectUrl(blob: Blob): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    const u = URL.createObjectURL(blob);
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [blob]);
  return url;
}

/** The stored PNG decoded onto a canvas of its own size, without colour conversion: the stored pixels exactly. */
async function drawPng(canvas: HTMLCanvasElement, png: Blob): Promise<void> {
  const bitmap = await createImageBitmap(png, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  try {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('This browser cannot draw on a 2D canvas.');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bitmap, 0, 0);
  } finally {
    bitmap.close();
  }
}

const label = (e: HistoryEntry) => `${labelText(e.params.prompt) || '(no prompt)'}, seed ${e.params.seed}`;

function HistoryItem({ entry, onOpen }: { entry: HistoryEntry; onOpen(): void }) {
  const url = useObjectUrl(entry.png);
  return (
    <li>
      <button type="button" className="history-item" data-testid="history-item" data-id={entry.id} data-seed={entry.params.seed} aria-label={`Open ${label(entry)}`} title={label(entry)} onClick={onOpen}>
        {url && <img src={url} alt="" width={entry.width} height={entry.height} />}
      </button>
    </li>
  );
}

function Details({ entry }: { entry: HistoryEntry }) {
  const p = entry.params;
  const rows: [string, string][] = [
    ['Prompt', p.prompt || '(none)'],
    ...(p.negativePrompt ? ([['Negative prompt', p.negativePrompt]] as [string, string][]) : []),
    ['Seed', String(p.seed)],
    ['Steps', String(p.numInferenceSteps)],
    ['Guidance (CFG)', String(p.guidanceScale)],
    ['Size', `${p.width}×${p.height}`],
    ...(p.imageToImage ? ([['Image-to-image strength', String(p.strength)]] as [string, string][]) : []),
    ['Model', `${entry.modelId} (shift ${entry.shift})`],
    ['Backend', entry.backend ? `${entry.backend.backend === 'webgpu' ? 'WebGPU' : 'WASM'}${entry.backend.adapter ? `, ${entry.backend.adapter}` : ''}` : 'unknown'],
    ['Time', formatTimings(entry.timings.totalMs, entry.timings.msPerStep)],
    ['Made', new Date(entry.createdAt).toLocaleString()],
    ['PNG', formatBytes(entry.bytes)],
  ];
  return (
    <dl className="history-details" data-testid="history-details">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** One image large, with its settings and what can be done with it. */
function HistoryDialog({ entry, onClose }: { entry: HistoryEntry; onClose(): void }) {
  const dialogRef = useRef<HTMLDialogElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [drawn, setDrawn] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    const dialog = dialogRef.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);

  useEffect(() => {
    let live = true;
    setDrawn(false);
    setFailure(null);
    if (canvasRef.current) {
      drawPng(canvasRef.current, entry.png).then(
        () => live && setDrawn(true),
        (e: unknown) => live && setFailure(`The stored PNG could not be shown: ${e instanceof Error ? e.message : String(e)}. Download it, or delete it.`),
      );
    }
    return () => {
      live = false;
    };
  }, [entry]);

  // closing fires the dialog's close event, which tells the gallery (Esc does the same)
  const close = () => dialogRef.current?.close();
  const onDialogClose = () => {
    // StrictMode's unmount-and-mount closes and reopens the dialog at once: only a close that stuck counts
    if (!dialogRef.current?.open) onClose();
  };

  const restore = () => {
    const studio = studioStore.getState();
    studio.applyForm(formFromEntry(entry));
    const notes = restoreNotes(entry, studio.model.info?.id ?? null);
    if (notes) studio.reportFormNotice(notes);
    close();
    // the restored form is where the next action is (after close() put focus back on the thumbnail)
    document.querySelector<HTMLElement>('[data-testid="generate"]')?.focus();
  };

  return (
    <dialog ref={dialogRef} className="history-dialog" data-testid="history-dialog" data-id={entry.id} aria-labelledby="history-dialog-title" onClose={onDialogClose}>
      <h3 id="history-dialog-title" className="visually-hidden">
        {label(entry)}
      </h3>
      <div className="history-large">
        <canvas ref={canvasRef} data-testid="history-canvas" data-drawn={drawn} width={entry.width} height={entry.height} role="img" aria-label={`Image from history: ${label(entry)}`} />
      </div>
      {failure && (
        <p className="history-problem" role="alert">
          {failure}
        </p>
      )}
      <Details entry={entry} />
      <div className="history-dialog-actions">
        <button type="button" className="primary" data-testid="history-restore" onClick={restore} title="Put this image's prompt, seed, steps, guidance and size into the form">
          Restore settings
        </button>
        <button type="button" data-testid="history-download" onClick={() => saveFile(entry.png, downloadName(entry), 'image/png')}>
          Download PNG
        </button>
        <button
          type="button"
          data-testid="history-delete"
          onClick={() => {
            void historyStore.getState().remove(entry.id);
            close();
          }}
        >
          Delete
        </button>
        <button type="button" data-testid="history-close" onClick={close}>
          Close
        </button>
      </div>
    </dialog>
  );
}

/**
 * Every finished image, kept in this browser (IndexedDB) across reloads, newest first: open one
 * large, restore its settings, download or delete it; download or delete them all.
 */
export function HistoryGallery() {
  const entries = useHistory((s) => s.entries);
  const status = useHistory((s) => s.status);
  const estimate = useHistory((s) => s.estimate);
  const problem = useHistory((s) => s.problem);
  const [openId, setOpenId] = useState<number | null>(null);
  const [confirmClear, setConfirmClear] = useState(false);
  const [zipping, setZipping] = useState(false);
  const bytes = entries.reduce((n, e) => n + e.bytes, 0);
  const open = entries.find((e) => e.id === openId) ?? null;
  const newestFirst = [...entries].reverse();

  const zipAll = async () => {
    setZipping(true);
    await reportingSaveErrors('The history zip', () => downloadHistoryZip(entries));
    setZipping(false);
  };

  return (
    <section className="panel history" aria-labelledby="history-title" data-testid="history" data-status={status}>
      <div className="history-head">
        <h2 id="history-title">History</h2>
        <p className="muted small history-usage" data-testid="history-usage" data-count={entries.length} data-bytes={bytes}>
          {status === 'loading' ? 'Reading the history…' : storageLine(entries.length, bytes, estimate)}
        </p>
        <div className="history-actions">
          <button type="button" data-testid="history-zip" disabled={entries.length === 0 || zipping} onClick={zipAll}>
            Download all (zip)
          </button>
          {confirmClear ? (
            <span className="history-confirm" role="group" aria-label="Delete all images?">
              <span>Delete all {entries.length}?</span>
              <button
                type="button"
                className="danger"
                data-testid="history-clear-confirm"
                onClick={() => {
                  setConfirmClear(false);
                  void historyStore.getState().clear();
                }}
              >
                Delete all
              </button>
              <button type="button" data-testid="history-clear-keep" onClick={() => setConfirmClear(false)}>
                Keep
              </button>
            </span>
          ) : (
            <button type="button" data-testid="history-clear" disabled={entries.length === 0} onClick={() => setConfirmClear(true)}>
              Delete all…
            </button>
          )}
        </div>
      </div>
      {problem && (
        <div className="history-problem" role="alert" data-testid="history-problem" data-quota={problem.quota}>
          <div>
            <strong>{problem.message}</strong>
            <p>{problem.action}</p>
          </div>
          <button type="button" className="icon-button" aria-label="Dismiss" onClick={() => historyStore.getState().dismissProblem()}>
            <span aria-hidden="true">×</span>
          </button>
        </div>
      )}
      {status === 'ready' && entries.length === 0 && (
        <p className="muted small" data-testid="history-empty">
          Every image you generate is kept here, in this browser only, across reloads: the newest {HISTORY_MAX_IMAGES} (at most {formatBytes(HISTORY_MAX_BYTES)}); older ones make room.
        </p>
      )}
      {newestFirst.length > 0 && (
        <ul className="history-grid" aria-label="Images in history, newest first">
          {newestFirst.map((e) => (
            <HistoryItem key={e.id} entry={e} onOpen={() => setOpenId(e.id)} />
          ))}
        </ul>
      )}
      {open && <HistoryDialog key={open.id} entry={open} onClose={() => setOpenId(null)} />}
    </section>
  );
}

/** Beside the result: a one-line pointer when its image did not make it into history (the full message is in the gallery). */
export function HistorySaveNotice() {
  const problem = useHistory((s) => s.problem);
  if (!problem) return null;
  return (
    <p className="history-save-notice small" data-testid="history-save-notice">
      {problem.quota ? 'Not saved to history: storage is full.' : 'History is not saving images.'} <a href="#history-title">See History</a>
    </p>
  );
}
