import { useEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import type { GeneratedImage } from '../engine/protocol';
import { makeZip } from '../history/zip';
import { drawImage, pngOf } from '../runtools/media';
import { trajectoryStore, type TrajectoryFrame } from '../runtools/trajectory';
import { selectShownImage } from '../store/selectors';
import { useStudio } from '../store/store';
import { saveFile } from './download';
import { reportingSaveErrors } from './zipDownload';
import './RunTools.css';

function FrameCanvas({ image, testId, label }: { image: GeneratedImage; testId?: string; label?: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (ref.current) drawImage(ref.current, image);
  }, [image]);
  return <canvas ref={ref} width={image.width} height={image.height} data-testid={testId} role={label ? 'img' : undefined} aria-label={label} aria-hidden={label ? undefined : true} />;
}

const pad = (n: number, total: number) => String(n).padStart(String(total).length, '0');
const frameName = (seed: number, f: TrajectoryFrame) => `webdit-${seed}-step-${pad(f.step, f.total)}-of-${f.total}${f.final ? '-final' : ''}.png`;
const describe = (f: TrajectoryFrame) => (f.final ? `Step ${f.step} of ${f.total}: the final image` : `Step ${f.step} of ${f.total}: estimate of the final image`);

/**
 * The shown image's trajectory after its run: the x0 estimates the run previewed, then the final
 * image, scrubbed with the slider (arrow keys, Home, End) or by picking a frame; each frame or all
 * of them (a zip) can be saved.
 */
export function Filmstrip() {
  const shown = useStudio(selectShownImage);
  const frames = useStore(trajectoryStore, (s) => (shown && s.jobId === shown.jobId ? s.frames[shown.index] : undefined));
  const dropped = useStore(trajectoryStore, (s) => s.dropped);
  const livePreview = useStudio((s) => s.livePreview || s.recordTrajectory);
  // null: the last frame (the final image); a new trajectory starts there
  const [picked, setPicked] = useState<number | null>(null);
  const [saving, setSaving] = useState(false);
  useEffect(() => setPicked(null), [frames?.[0]]);

  if (!shown) return null;
  if (!frames || frames.length < 2) {
    return (
      <section className="panel runtool filmstrip" aria-label="Trajectory" data-testid="filmstrip" data-frames={frames?.length ?? 0}>
        <h2>Trajectory</h2>
        <p className="muted small">{livePreview ? 'This image has no recorded steps (its run was too short for previews, or it came from history).' : 'Turn on live preview or "Record every step" to keep the steps of the next run.'}</p>
      </section>
    );
  }
  const last = frames.length - 1;
  const pos = Math.min(picked ?? last, last);
  const frame = frames[pos];
  const seed = shown.params.seed;

  return (
    <section className="panel runtool filmstrip" aria-label="Trajectory" data-testid="filmstrip" data-frames={frames.length}>
      <div className="runtool-head">
        <h2>Trajectory</h2>
        <span className="muted small">
          {frames.length - 1} estimates + the final image{dropped > 0 ? ` (${dropped} not kept: memory limit)` : ''}
        </span>
      </div>
      <div className="filmstrip-view">
        <FrameCanvas image={frame.image} testId="filmstrip-canvas" label={describe(frame)} key={pos} />
      </div>
      <input
        type="range"
        data-testid="filmstrip-slider"
        aria-label="Trajectory step"
        aria-valuetext={describe(frame)}
        min={0}
        max={last}
        step={1}
        value={pos}
        onChange={(e) => setPicked(e.currentTarget.valueAsNumber)}
      />
      <p className="small" data-testid="filmstrip-label" data-step={frame.step} data-final={frame.final}>
        {describe(frame)}
      </p>
      <div className="filmstrip-strip" role="group" aria-label="Trajectory frames">
        {frames.map((f, i) => (
          <button key={i} type="button" className="filmstrip-thumb" aria-pressed={i === pos} aria-label={describe(f)} title={describe(f)} data-testid="filmstrip-thumb" onClick={() => setPicked(i)}>
            <FrameCanvas image={f.image} />
          </button>
        ))}
      </div>
      <div className="runtool-actions">
        <button
          type="button"
          data-testid="filmstrip-save-frame"
          disabled={saving}
          onClick={async () => {
            setSaving(true);
            await reportingSaveErrors('The frame', async () => saveFile(await pngOf(frame.image), frameName(seed, frame), 'image/png'));
            setSaving(false);
          }}
        >
          Save this frame (PNG)
        </button>
        <button
          type="button"
          data-testid="filmstrip-save-zip"
          disabled={saving}
          onClick={async () => {
            setSaving(true);
            await reportingSaveErrors('The trajectory', async () => {
              const files = await Promise.all(frames.map(async (f) => ({ name: frameName(seed, f), data: await pngOf(f.image) })));
              saveFile(makeZip(files), `webdit-${seed}-trajectory-${frames.length}-frames.zip`, 'application/zip');
            });
            setSaving(false);
          }}
        >
          Save all frames (zip)
        </button>
      </div>
    </section>
  );
}
