import { useEffect, useRef } from 'react';
import { fieldRange } from '../engine/schema';
import type { InitImage } from '../engine/schema';
import { STRENGTH_STEP } from '../store/params';
import { selectImageToImageBlocker, selectInitImage, selectSize, selectStrength } from '../store/selectors';
import type { ImageRecord } from '../store/state';
import { studioStore, useStudio } from '../store/store';
import { initFromFile, initFromGenerated } from './initImage';
import { SliderField } from './SliderField';

/** A picked or dropped file becomes the init image at the next run's size; a file that is no picture gets a banner. */
export async function pickInitFile(file: File): Promise<void> {
  const state = studioStore.getState();
  const blocker = selectImageToImageBlocker(state);
  const size = selectSize(state);
  if (blocker !== null || size === null) {
    state.reportFormNotice(blocker ?? 'Available once the model has loaded.');
    return;
  }
  try {
    state.setInitImage(await initFromFile(file, size[0], size[1]), file.name);
  } catch (e) {
    state.reportError({
      name: 'UnsupportedError',
      message: e instanceof Error ? e.message : String(e),
      action: 'Pick a PNG, JPEG, WebP or GIF image.',
    });
  }
}

/** "Use this result": a generated image becomes the init image (its own pixels when the size fits). */
export function resultAsInit(record: ImageRecord): void {
  const state = studioStore.getState();
  const size = selectSize(state);
  if (selectImageToImageBlocker(state) !== null || size === null) return;
  state.setInitImage(initFromGenerated(record.image, size[0], size[1]), `result, seed ${record.params.seed}`);
}

function Thumbnail({ image }: { image: InitImage }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const ctx = ref.current?.getContext('2d');
    if (!ctx) return;
    const data = ctx.createImageData(image.width, image.height);
    data.data.set(image.data);
    ctx.putImageData(data, 0, 0);
  }, [image]);
  return <canvas ref={ref} className="init-thumbnail" data-testid="init-image" width={image.width} height={image.height} aria-hidden="true" />;
}

/** Image-to-image: the picture to start from (picked, dropped on the image, or a result) and how far to move from it. */
export function InitImageField() {
  const blocker = useStudio(selectImageToImageBlocker);
  const record = useStudio((s) => s.initImage);
  // null while the picture was made for another size than the next run's
  const usable = useStudio((s) => selectInitImage(s) !== null);
  const strength = useStudio(selectStrength);
  const width = useStudio((s) => selectSize(s)?.[0] ?? null);
  const height = useStudio((s) => selectSize(s)?.[1] ?? null);
  const { setStrength, clearInitImage } = studioStore.getState();
  const fileRef = useRef<HTMLInputElement>(null);
  const range = fieldRange('strength');
  const sizeText = width !== null && height !== null ? `${width}×${height}` : 'the output size';

  return (
    <fieldset className="field init-image" data-testid="init-image-field" disabled={blocker !== null} aria-describedby="init-image-hint">
      <legend>Init image</legend>
      <p className="hint" id="init-image-hint" data-testid="init-image-hint">
        {blocker ??
          (record && !usable
            ? `It was cropped for another size; pick it again for ${sizeText}.`
            : `Start from a picture: choose one, drop it on the image, or use a result. It is center-cropped to ${sizeText}.`)}
      </p>
      <div className="init-row">
        {record && <Thumbnail image={record.image} />}
        {record && (
          <span className="init-source muted small" data-testid="init-image-source" title={record.source}>
            {record.source}
          </span>
        )}
        <div className="init-buttons">
          <button type="button" data-testid="init-image-pick" onClick={() => fileRef.current?.click()}>
            {record ? 'Replace…' : 'Choose image…'}
          </button>
          {record && (
            <button type="button" data-testid="init-image-clear" onClick={clearInitImage}>
              Remove
            </button>
          )}
        </div>
        <input
          ref={fileRef}
          type="file"
          accept="image/*"
          className="visually-hidden"
          data-testid="init-image-file"
          aria-label="Choose an init image"
          tabIndex={-1}
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            e.currentTarget.value = ''; // the same file again still fires a change
            if (file) void pickInitFile(file);
          }}
        />
      </div>
      <SliderField
        id="strength"
        testId="strength"
        label="Strength"
        min={range.min}
        max={range.max}
        step={STRENGTH_STEP}
        value={strength}
        hint={record ? 'How far to move from the picture: 0 keeps it, 1 ignores it.' : 'Used when an init image is set.'}
        onChange={setStrength}
      />
    </fieldset>
  );
}
