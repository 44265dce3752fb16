import type { GeneratedImage } from '../engine/protocol';
import { addTextChunk, formatParameters } from '../png';
import type { ImageRecord } from '../store/state';

/** The browser's PNG encoder, fed exactly the engine's RGBA bytes. */
async function encodePng(image: GeneratedImage): Promise<Uint8Array> {
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('This browser cannot draw on a 2D canvas.');
  const data = ctx.createImageData(image.width, image.height);
  data.data.set(image.pixels);
  ctx.putImageData(data, 0, 0);
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('The browser could not encode the image as PNG.');
  return new Uint8Array(await blob.arrayBuffer());
}

export const downloadName = (record: ImageRecord) => `webdit-${record.params.seed}.png`;

/** Saves the image as a PNG carrying its own settings (its seed) in AUTOMATIC1111's `parameters` chunk. */
export async function downloadPng(record: ImageRecord): Promise<void> {
  const png = addTextChunk(await encodePng(record.image), 'parameters', formatParameters(record));
  const url = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = downloadName(record);
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can abort the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
