import { useEffect, useRef, useState, type DragEvent } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { GeneratedImage } from '../engine/protocol';
import { formatTimings } from '../store/format';
import { selectImageToImageBlocker, selectShownBatch, selectShownImage } from '../store/selectors';
import type { ImageRecord } from '../store/state';
import { studioStore, useStudio } from '../store/store';
import { downloadName, downloadPng } from './download';
import { downloadBatchZip, reportingSaveErrors } from './zipDownload';
import { HistorySaveNotice } from './HistoryGallery';
import { resultAsInit } from './InitImageField';
import { receiveImageFile } from './RestorePanel';
import { labelText } from '../text';
import { LoadProgress } from './LoadProgress';
import { RunProgress } from './RunProgress';
import { StatusLine } from './StatusLine';

/** Exactly the engine's pixels on a canvas of the image's own size (CSS scales it without smoothing). */
function draw(canvas: HTMLCanvasElement | null, image: GeneratedImage | null): void {
  const ctx = canvas?.getContext('2d');
  if (!canvas || !ctx) return;
  if (!image) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    return;
  }
  const data = ctx.createImageData(image.width, image.height);
  data.data.set(image.pixels);
  ctx.putImageData(data, 0, 0);
}

function Thumbnail({ record, selected }: { record: ImageRecord; selected: boolean }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => draw(ref.current, record.image), [record]);
  const { seed } = record.params;
  return (
    <button
      type="button"
      className="thumbnail"
      data-testid="thumbnail"
      data-seed={seed}
      aria-pressed={selected}
      aria-label={`Show image ${record.index + 1}, seed ${seed}`}
      title={`Seed ${seed}`}
      onClick={() => studioStore.getState().showImage(record.jobId, record.index)}
    >
      <canvas ref={ref} width={record.image.width} height={record.image.height} aria-hidden="true" />
    </button>
  );
}

const hasFiles = (e: { dataTransfer: DataTransfer | null }) => e.dataTransfer?.types.includes('Files') ?? false;

/** A file dropped anywhere on the page would replace the studio with the file: only the image panel takes drops. */
function useNoDropNavigation(): void {
  useEffect(() => {
    const stop = (e: globalThis.DragEvent) => {
      if (hasFiles(e)) e.preventDefault();
    };
    document.addEventListener('dragover', stop);
    document.addEventListener('drop', stop);
    return () => {
      document.removeEventListener('dragover', stop);
      document.removeEventListener('drop', stop);
    };
  }, []);
}

export function ImagePanel() {
  const shown = useStudio(selectShownImage);
  const preview = useStudio((s) => s.preview);
  const batch = useStudio(useShallow(selectShownBatch));
  const modelDefaults = useStudio((s) => s.model.info?.defaults ?? null);
  const loading = useStudio((s) => s.model.status === 'loading' || s.model.status === 'idle');
  const running = useStudio((s) => s.generation.status !== 'idle');
  const imageToImageBlocker = useStudio(selectImageToImageBlocker);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [saving, setSaving] = useState(false);
  const [dropping, setDropping] = useState(false);
  useNoDropNavigation();

  const onDragOver = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = imageToImageBlocker === null ? 'copy' : 'none';
    setDropping(true);
  };
  const onDrop = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    setDropping(false);
    // handled here, not again by the page's drop handler (RestorePanel)
    e.stopPropagation();
    const files = [...e.dataTransfer.files];
    const file = files.find((f) => f.type.startsWith('image/')) ?? files[0];
    // a PNG with settings asks first: restore them, or use it as the init image
    if (file) void receiveImageFile(file, 'stage');
  };

  // While a run previews, its expected image replaces the last one; the final image replaces the preview.
  const drawn = preview ?? shown?.image ?? null;
  // Before the model says its size, a 1x1 canvas keeps the empty frame square.
  const width = drawn?.width ?? modelDefaults?.width ?? 1;
  const height = drawn?.height ?? modelDefaults?.height ?? 1;
  useEffect(() => draw(canvasRef.current, drawn), [drawn, width, height]);

  const onDownload = async () => {
    if (!shown) return;
    setSaving(true);
    try {
      await downloadPng(shown);
    } catch (e) {
      studioStore.getState().reportError({
        name: 'DownloadSaveError',
        message: `The PNG could not be saved: ${e instanceof Error ? e.message : String(e)}`,
        action: 'Try again, or right-click the image and choose "Save image as".',
      });
    } finally {
      setSaving(false);
    }
  };

  const description = preview
    ? `Preview of the image being generated, ${width}×${height}`
    : shown
      ? `Generated image, ${width}×${height}, prompt: ${labelText(shown.params.prompt) || '(none)'}, seed ${shown.params.seed}`
      : 'No image yet';

  return (
    <section
      className="panel stage"
      aria-label="Result"
      data-drop={dropping}
      onDragOver={onDragOver}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDropping(false);
      }}
      onDrop={onDrop}
    >
      {loading && <LoadProgress />}
      <div className="canvas-frame" data-empty={!drawn} data-preview={preview !== null} aria-busy={running}>
        <canvas
          ref={canvasRef}
          data-testid="result-canvas"
          data-kind={preview ? 'preview' : shown ? 'image' : 'empty'}
          width={width}
          height={height}
          role="img"
          aria-label={description}
        />
        {preview && (
          <span className="preview-badge" aria-hidden="true">
            Preview
          </span>
        )}
        {!drawn && !dropping && (
          <p className="canvas-placeholder" aria-hidden="true">
            {loading ? 'Loading the model…' : 'Your image will appear here'}
          </p>
        )}
        {dropping && (
          <p className="canvas-placeholder drop-hint" aria-hidden="true">
            {imageToImageBlocker ?? 'Drop to start from this picture'}
          </p>
        )}
      </div>
      {batch.length > 0 && (
        <div className="thumbnails" data-testid="thumbnails" role="group" aria-label="Images of this batch">
          {batch.map((r) => (
            <Thumbnail key={`${r.jobId}/${r.index}`} record={r} selected={r === shown} />
          ))}
        </div>
      )}
      <RunProgress />
      <StatusLine />
      <HistorySaveNotice />
      <div className="result-footer">
        <p className="timings muted" data-testid="timings">
          {shown ? `${formatTimings(shown.timings.totalMs, shown.timings.msPerStep)} · seed ${shown.params.seed}` : null}
        </p>
        <div className="result-actions">
          <button
            type="button"
            data-testid="use-as-init"
            disabled={!shown || imageToImageBlocker !== null}
            title={imageToImageBlocker ?? (shown ? 'Start the next run from this image (image-to-image)' : 'Generate an image first')}
            onClick={() => shown && resultAsInit(shown)}
          >
            Use as init image
          </button>
          {batch.length > 1 && (
            <button
              type="button"
              data-testid="download-zip"
              disabled={saving}
              title={`Save the ${batch.length} images of this batch as one zip, each PNG with its settings`}
              onClick={async () => {
                setSaving(true);
                await reportingSaveErrors('The zip', () => downloadBatchZip(batch));
                setSaving(false);
              }}
            >
              Download all (zip)
            </button>
          )}
          <button
            type="button"
            data-testid="download"
            disabled={!shown || saving}
            title={shown ? `Save as ${downloadName(shown)} with its settings embedded` : 'Generate an image first'}
            onClick={onDownload}
          >
            Download PNG
          </button>
        </div>
      </div>
    </section>
  );
}
