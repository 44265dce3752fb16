import './RestorePanel.css';
import { useEffect, useRef } from 'react';
import { useStore } from 'zustand';
import { createStore } from 'zustand/vanilla';
import { planRestore, readPngSettings, restoreSummary, type PngSettings } from '../restore';
import { selectImageToImageBlocker } from '../store/selectors';
import { studioStore, useStudio } from '../store/store';
import { pickInitFile } from './InitImageField';

/** Where a picture came in: dropped on the image, dropped elsewhere on the page, or pasted. */
export type Origin = 'stage' | 'page' | 'paste';

type Intake =
  /** A picture came in: the user chooses what it is for. */
  | { kind: 'offer'; file: File; found: PngSettings }
  /** Settings were restored: what changed, what was refused, what the PNG says besides. */
  | { kind: 'done'; name: string; summary: string; notes: string[] };

const intakeStore = createStore<{ intake: Intake | null }>(() => ({ intake: null }));
const close = () => intakeStore.setState({ intake: null });

/**
 * A dropped or pasted picture. A picture without settings dropped on the image is the init image
 * at once (what dropping there always did); anything else asks first: restore the settings of a
 * PNG that carries them, or use it as the init image.
 */
export async function receiveImageFile(file: File, origin: Origin): Promise<void> {
  let found: PngSettings;
  try {
    found = await readPngSettings(new Uint8Array(await file.arrayBuffer()), file.name || 'the pasted image', file.type);
  } catch (e) {
    found = { kind: 'unreadable', reason: `${file.name || 'The pasted image'} could not be read: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (found.kind === 'none' && origin === 'stage') {
    close();
    await pickInitFile(file);
    return;
  }
  intakeStore.setState({ intake: { kind: 'offer', file, found } });
}

/** Applies the offered PNG's settings through the store's setters. */
function restore(file: File, found: Extract<PngSettings, { kind: 'settings' }>): void {
  const state = studioStore.getState();
  const plan = planRestore(found.infotext, state);
  state.applyForm(plan.values);
  intakeStore.setState({ intake: { kind: 'done', name: file.name || 'the pasted image', summary: restoreSummary(plan, file.name || 'the pasted image'), notes: plan.notes } });
}

const hasFiles = (e: DragEvent | ClipboardEvent) => {
  const data = 'dataTransfer' in e ? e.dataTransfer : e.clipboardData;
  return data !== null && data.files.length > 0;
};

/** The picture among dropped or pasted files (else the first file: its message says what it is). */
function pictureOf(files: FileList): File | null {
  const all = [...files];
  return all.find((f) => f.type.startsWith('image/')) ?? all[0] ?? null;
}

/** Drops anywhere on the page (the image panel handles its own) and pasted pictures. */
function usePageIntake(): void {
  useEffect(() => {
    const onDrop = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault(); // else the browser opens the file instead of the studio
      const file = pictureOf(e.dataTransfer!.files);
      if (file) void receiveImageFile(file, 'page');
    };
    const onPaste = (e: ClipboardEvent) => {
      // text pastes go on to the focused field
      if (!hasFiles(e)) return;
      const file = pictureOf(e.clipboardData!.files);
      if (!file?.type.startsWith('image/')) return;
      e.preventDefault();
      void receiveImageFile(file, 'paste');
    };
    document.addEventListener('drop', onDrop);
    document.addEventListener('paste', onPaste);
    return () => {
      document.removeEventListener('drop', onDrop);
      document.removeEventListener('paste', onPaste);
    };
  }, []);
}

/** A short view of what a PNG's settings line holds ("Steps 3 · CFG scale 3 · Seed 5"). */
function settingsLine(found: Extract<PngSettings, { kind: 'settings' }>): string {
  return Object.entries(found.infotext.fields)
    .map(([k, v]) => `${k} ${v.length > 40 ? `${v.slice(0, 40)}…` : v}`)
    .join(' · ');
}

/** The choice for a dropped or pasted picture, then what restoring did; at the top of the form. */
export function RestorePanel() {
  usePageIntake();
  const intake = useStore(intakeStore, (s) => s.intake);
  const initBlocker = useStudio(selectImageToImageBlocker);
  const firstButton = useRef<HTMLButtonElement>(null);

  // a new offer takes the focus (and scrolls into view): it answers what the user just did
  useEffect(() => {
    if (intake?.kind === 'offer') firstButton.current?.focus();
  }, [intake]);

  if (!intake) return null;

  if (intake.kind === 'done') {
    return (
      <section className="restore-panel" data-testid="restore-panel" data-kind="done" aria-label={`Restored from ${intake.name}`}>
        <p role="status" data-testid="restore-message">
          {intake.summary}
        </p>
        {intake.notes.length > 0 && (
          <ul className="restore-notes" data-testid="restore-notes">
            {intake.notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        )}
        <div className="restore-actions">
          <button type="button" data-testid="restore-dismiss" onClick={close}>
            OK
          </button>
        </div>
      </section>
    );
  }

  const { file, found } = intake;
  const name = file.name || 'the pasted image';
  const useAsInit = (
    <button
      ref={found.kind === 'settings' ? undefined : firstButton}
      type="button"
      data-testid="restore-as-init"
      disabled={initBlocker !== null}
      title={initBlocker ?? 'Start the next run from this picture (image-to-image)'}
      onClick={() => {
        close();
        void pickInitFile(file);
      }}
    >
      Use as init image
    </button>
  );
  return (
    <section className="restore-panel" data-testid="restore-panel" data-kind={found.kind} aria-label={`Image received: ${name}`}>
      {found.kind === 'settings' ? (
        <>
          <p data-testid="restore-message">
            {name} carries generation settings{found.infotext.prompt ? ':' : '.'}{' '}
            {found.infotext.prompt && <q className="restore-prompt">{found.infotext.prompt.length > 120 ? `${found.infotext.prompt.slice(0, 120)}…` : found.infotext.prompt}</q>}
          </p>
          <p className="hint restore-fields">{settingsLine(found)}</p>
        </>
      ) : (
        <p role="status" data-testid="restore-message">
          {found.kind === 'unreadable' ? `Could not read the settings: ${found.reason}. Nothing was changed.` : `${found.reason}.`}
        </p>
      )}
      <div className="restore-actions">
        {found.kind === 'settings' && (
          <button ref={firstButton} type="button" className="primary" data-testid="restore-apply" onClick={() => restore(file, found)}>
            Restore settings from this PNG
          </button>
        )}
        {useAsInit}
        <button type="button" data-testid="restore-dismiss" onClick={close}>
          {found.kind === 'settings' ? 'Cancel' : 'Dismiss'}
        </button>
      </div>
      {initBlocker !== null && <p className="hint">Use as init image: {initBlocker}</p>}
    </section>
  );
}
