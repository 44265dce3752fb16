import { useEffect, useRef, useState } from 'react';
import { formatTimings } from '../store/format';
import { studioStore, useStudio } from '../store/store';
import { downloadName, downloadPng } from './download';
import { LoadProgress } from './LoadProgress';
import { RunProgress } from './RunProgress';
import { StatusLine } from './StatusLine';

const DEFAULT_SIZE = 64;

export function ImagePanel() {
  const lastImage = useStudio((s) => s.lastImage);
  const imageSize = useStudio((s) => s.model.info?.imageSize ?? DEFAULT_SIZE);
  const loading = useStudio((s) => s.model.status === 'loading' || s.model.status === 'idle');
  const running = useStudio((s) => s.generation.status !== 'idle');
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [saving, setSaving] = useState(false);

  // The canvas holds exactly the engine's pixels; CSS scales it up without smoothing.
  const width = lastImage?.image.width ?? imageSize;
  const height = lastImage?.image.height ?? imageSize;
  useEffect(() => {
    const ctx = canvasRef.current?.getContext('2d');
    if (!ctx || !lastImage) return;
    const { width, height, pixels } = lastImage.image;
    const data = ctx.createImageData(width, height);
    data.data.set(pixels);
    ctx.putImageData(data, 0, 0);
  }, [lastImage]);

  const onDownload = async () => {
    if (!lastImage) return;
    setSaving(true);
    try {
      await downloadPng(lastImage);
    } catch (e) {
      studioStore.getState().reportError({
        name: 'DownloadError',
        message: `The PNG could not be saved: ${e instanceof Error ? e.message : String(e)}`,
        action: 'Try again, or right-click the image and choose "Save image as".',
      });
    } finally {
      setSaving(false);
    }
  };

  const description = lastImage
    ? `Generated image, ${width}×${height}, prompt: ${lastImage.params.prompt || '(none)'}, seed ${lastImage.params.seed}`
    : 'No image yet';

  return (
    <section className="panel stage" aria-label="Result">
      {loading && <LoadProgress />}
      <div className="canvas-frame" data-empty={!lastImage} aria-busy={running}>
        <canvas ref={canvasRef} data-testid="result-canvas" width={width} height={height} role="img" aria-label={description} />
        {!lastImage && (
          <p className="canvas-placeholder" aria-hidden="true">
            {loading ? 'Loading the model…' : 'Your image will appear here'}
          </p>
        )}
      </div>
      <RunProgress />
      <StatusLine />
      <div className="result-footer">
        <p className="timings muted" data-testid="timings">
          {lastImage
            ? `${formatTimings(lastImage.timings.totalMs, lastImage.timings.msPerStep)} · seed ${lastImage.params.seed}`
            : null}
        </p>
        <button
          type="button"
          data-testid="download"
          disabled={!lastImage || saving}
          title={lastImage ? `Save as ${downloadName(lastImage)} with its settings embedded` : 'Generate an image first'}
          onClick={onDownload}
        >
          Download PNG
        </button>
      </div>
    </section>
  );
}
