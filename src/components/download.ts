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

export const downloadName = (record: Pick<ImageRecord, 'params'>) => `webdit-${record.params.seed}.png`;

/** The PNG "Download PNG" saves: the engine's pixels plus its own settings (its seed) in AUTOMATIC1111's `parameters` chunk. */
export async function pngWithParameters(record: ImageRecord): Promise<Uint8Array<ArrayBuffer>> {
  return addTextChunk(await encodePng(record.image), 'parameters', formatParameters(record));
}

/** Hands bytes to the browser's download, as a file called `name`. */
export function saveFile(bytes: Blob | Uint8Array<ArrayBuffer>, name: string, type: string): void {
  const url = URL.createObjectURL(bytes instanceof Blob ? bytes : new Blob([bytes], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can abort the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Saves the image as a PNG carrying its own settings. */
export async function downloadPng(record: ImageRecord): Promise<void> {
  saveFile(await pngWithParameters(record), downloadName(record), 'image/png');
}
