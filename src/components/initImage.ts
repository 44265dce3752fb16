/**
 * Init images for image-to-image: any picture the browser can decode, center-cropped to the
 * output's aspect ratio and then scaled to the output size on a canvas, as RGBA pixels.
 */
import type { GeneratedImage } from '../engine/protocol';
import type { InitImage } from '../engine/schema';

export interface CropRect {
  sx: number;
  sy: number;
  sw: number;
  sh: number;
}

/** The largest centered part of a sw x sh picture that has the target's aspect ratio. */
export function centerCrop(sw: number, sh: number, width: number, height: number): CropRect {
  // compare sw/sh with width/height without dividing: sw*height vs width*sh
  if (sw * height > width * sh) {
    const w = Math.round((sh * width) / height);
    return { sx: Math.floor((sw - w) / 2), sy: 0, sw: w, sh };
  }
  const h = Math.round((sw * height) / width);
  return { sx: 0, sy: Math.floor((sh - h) / 2), sw, sh: h };
}

type Source = CanvasImageSource & { width: number; height: number };

function context(width: number, height: number): CanvasRenderingContext2D {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('This browser cannot draw on a 2D canvas.');
  return ctx;
}

/** `source` center-cropped and scaled to width x height; transparent parts land on white. */
export function fitImage(source: Source, width: number, height: number): InitImage {
  const ctx = context(width, height);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  const { sx, sy, sw, sh } = centerCrop(source.width, source.height, width, height);
  ctx.drawImage(source, sx, sy, sw, sh, 0, 0, width, height);
  return { width, height, data: ctx.getImageData(0, 0, width, height).data };
}

/** A generated image as an init image: its own pixels when the size already fits (no resampling), else fitted. */
export function initFromGenerated(image: GeneratedImage, width: number, height: number): InitImage {
  if (image.width === width && image.height === height) return { width, height, data: new Uint8ClampedArray(image.pixels) };
  const ctx = context(image.width, image.height);
  const data = ctx.createImageData(image.width, image.height);
  data.data.set(image.pixels);
  ctx.putImageData(data, 0, 0);
  return fitImage(ctx.canvas, width, height);
}

/** A picked or dropped file as an init image; rejects with a readable message when it is no picture. */
export async function initFromFile(file: Blob, width: number, height: number): Promise<InitImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error(`${file instanceof File ? `"${file.name}"` : 'The file'} is not a picture this browser can read.`);
  }
  try {
    return fitImage(bitmap, width, height);
  } finally {
    bitmap.close();
  }
}
