import { useEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import { ANIMATION_FRAMES } from '../engine/schema';
import { makeZip } from '../history/zip';
import { animationStore, FPS } from '../runtools/animation';
import { drawImage, encodeAnimatedWebp, pngOf, recordWebm, webmType } from '../runtools/media';
import { selectLimits } from '../store/selectors';
import { studioStore, useStudio } from '../store/store';
import { saveFile } from './download';
import { reportingSaveErrors } from './zipDownload';
import './RunTools.css';

function Player() {
  const result = useStore(animationStore, (s) => s.result);
  const fps = useStore(animationStore, (s) => s.fps);
  const { setFps } = animationStore.getState();
  const [current, setCurrent] = useState(0);
  const [playing, setPlaying] = useState(true);
  const [saving, setSaving] = useState<string | null>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const frames = result?.frames ?? [];

  useEffect(() => setCurrent(0), [result]);
  useEffect(() => {
    if (!playing || frames.length < 2) return;
    const timer = setInterval(() => setCurrent((c) => (c + 1) % frames.length), 1000 / fps);
    return () => clearInterval(timer);
  }, [playing, fps, frames.length]);
  useEffect(() => {
    const f = frames[current];
    if (f && canvasRef.current) drawImage(canvasRef.current, f);
  }, [frames, current]);

  if (!result) return null;
  const { params } = result;
  const anim = params.animation!;
  const base = `webdit-${params.seed}-${anim.kind === 'seed' ? `to-${anim.to}` : 'prompt'}-${frames.length}-frames`;
  const save = async (what: string, run: () => Promise<void>) => {
    setSaving(what);
    await reportingSaveErrors(what, run);
    setSaving(null);
  };

  return (
    <div className="animation-player" data-testid="animation-player" data-frames={frames.length}>
      <div className="filmstrip-view">
        <canvas ref={canvasRef} data-testid="animation-canvas" data-frame={current} width={frames[0].width} height={frames[0].height} role="img" aria-label={`Animation frame ${current + 1} of ${frames.length}`} />
      </div>
      <div className="runtool-row">
        <button type="button" data-testid="animation-play" aria-pressed={playing} onClick={() => setPlaying((p) => !p)}>
          {playing ? 'Pause' : 'Play'}
        </button>
        <div className="runtool-inline">
          <label htmlFor="animation-fps">fps</label>
          <input id="animation-fps" type="range" data-testid="animation-fps" min={FPS.min} max={FPS.max} step={1} value={fps} onChange={(e) => setFps(e.currentTarget.valueAsNumber)} />
          <output htmlFor="animation-fps" data-testid="animation-fps-value">{fps}</output>
        </div>
      </div>
      <div className="filmstrip-strip" role="group" aria-label="Animation frames">
        {frames.map((f, i) => (
          <button
            key={i}
            type="button"
            className="filmstrip-thumb"
            aria-pressed={i === current}
            aria-label={`Frame ${i + 1}`}
            onClick={() => {
              setPlaying(false);
              setCurrent(i);
            }}
          >
            <FrameThumb image={f} index={i} />
          </button>
        ))}
      </div>
      <div className="runtool-actions">
        <button type="button" data-testid="animation-save-webm" disabled={saving !== null || webmType() === null} title={webmType() ? 'Record the frames at this fps as a WebM video' : 'This browser cannot record WebM'} onClick={() => save('The WebM video', async () => saveFile(await recordWebm(frames, fps), `${base}.webm`, 'video/webm'))}>
          {saving === 'The WebM video' ? 'Recording…' : 'Save WebM'}
        </button>
        <button type="button" data-testid="animation-save-webp" disabled={saving !== null} onClick={() => save('The animated WebP', async () => saveFile(await encodeAnimatedWebp(frames, fps), `${base}.webp`, 'image/webp'))}>
          Save animated WebP
        </button>
        <button
          type="button"
          data-testid="animation-save-zip"
          disabled={saving !== null}
          onClick={() => save('The frames', async () => saveFile(makeZip(await Promise.all(frames.map(async (f, i) => ({ name: `${base}-${String(i).padStart(2, '0')}.png`, data: await pngOf(f) })))), `${base}.zip`, 'application/zip'))}
        >
          Save frames (zip)
        </button>
      </div>
    </div>
  );
}

function FrameThumb({ image, index }: { image: Parameters<typeof drawImage>[1]; index: number }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (ref.current) drawImage(ref.current, image);
  }, [image]);
  return <canvas ref={ref} width={image.width} height={image.height} data-testid="animation-frame" data-index={index} aria-hidden="true" />;
}

/**
 * Seed variation (the initial noise slerped from seed A to seed B) or prompt interpolation (the
 * text conditioning lerped from the prompt to prompt B, one seed), made as one batch from the
 * form's settings, played here and saved as WebM, animated WebP or PNG frames.
 */
export function AnimationPanel() {
  const s = useStore(animationStore);
  const seedA = useStudio((st) => st.seedText);
  const ready = useStudio((st) => st.model.info !== null);
  const maxFrames = Math.min(ANIMATION_FRAMES.max, useStudio((st) => selectLimits(st).numImagesPerPrompt.max));
  const running = s.status !== 'idle';
  return (
    <section className="panel runtool animation" aria-label="Animation" data-testid="animation-panel" data-status={s.status}>
      <div className="runtool-head">
        <h2>Animation</h2>
        <span className="muted small">from the settings above, as one batch</span>
      </div>
      <fieldset className="runtool-row" disabled={running}>
        <legend className="visually-hidden">Kind</legend>
        <label className="checkbox">
          <input type="radio" name="animation-kind" data-testid="animation-kind-seed" checked={s.kind === 'seed'} onChange={() => s.setKind('seed')} />
          Seed variation
        </label>
        <label className="checkbox">
          <input type="radio" name="animation-kind" data-testid="animation-kind-prompt" checked={s.kind === 'prompt'} onChange={() => s.setKind('prompt')} />
          Prompt interpolation
        </label>
      </fieldset>
      {s.kind === 'seed' ? (
        <div className="field">
          <label htmlFor="animation-to-seed">
            Seed B <span className="muted small">(from seed A = {seedA || '?'}, the seed field)</span>
          </label>
          <input id="animation-to-seed" type="text" inputMode="numeric" data-testid="animation-to-seed" value={s.toSeedText} disabled={running} onChange={(e) => s.setToSeedText(e.currentTarget.value)} placeholder="e.g. 43" />
        </div>
      ) : (
        <div className="field">
          <label htmlFor="animation-to-prompt">
            Prompt B <span className="muted small">(from the prompt, with seed A)</span>
          </label>
          <textarea id="animation-to-prompt" rows={2} data-testid="animation-to-prompt" value={s.toPrompt} disabled={running} onChange={(e) => s.setToPrompt(e.currentTarget.value)} />
        </div>
      )}
      <div className="runtool-inline">
        <label htmlFor="animation-frames">Frames</label>
        <input id="animation-frames" type="range" data-testid="animation-frames" min={ANIMATION_FRAMES.min} max={maxFrames} step={1} value={Math.min(s.frames, maxFrames)} disabled={running} onChange={(e) => s.setFrames(e.currentTarget.valueAsNumber)} />
        <output htmlFor="animation-frames" data-testid="animation-frames-value">{Math.min(s.frames, maxFrames)}</output>
      </div>
      <div className="runtool-actions">
        <button type="button" className="primary" data-testid="animation-start" disabled={running || !ready} onClick={() => s.start({ ...studioStore.getState() })}>
          {running ? 'Making…' : 'Make animation'}
        </button>
        <button type="button" data-testid="animation-cancel" disabled={s.status !== 'running'} onClick={s.cancel}>
          Cancel
        </button>
      </div>
      {running && (
        <p className="small" data-testid="animation-progress" role="status">
          {s.total > 0 ? `Step ${s.step} of ${s.total} (all frames at once)` : 'Starting…'}
        </p>
      )}
      {s.error && (
        <p className="small error-text" data-testid="animation-error" role="alert">
          {s.error}
        </p>
      )}
      <Player />
    </section>
  );
}
