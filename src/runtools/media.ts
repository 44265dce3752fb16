/**
 * Frames to files in the browser: a frame on a canvas, a still WebP from the browser's encoder,
 * an animated WebP (webp.ts) and a WebM recorded from a canvas stream (MediaRecorder).
 */
import type { GeneratedImage } from '../engine/protocol';
import { animatedWebp } from './webp';

/** The engine's pixels on a canvas of `scale` times the image's size, without smoothing. */
export function drawImage(canvas: HTMLCanvasElement, image: GeneratedImage, scale = 1): void {
  const w = image.width * scale;
  const h = image.height * scale;
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('This browser cannot draw on a 2D canvas.');
  const data = new ImageData(image.width, image.height);
  data.data.set(image.pixels);
  if (scale === 1) {
    ctx.putImageData(data, 0, 0);
    return;
  }
  const src = document.createElement('canvas');
  src.width = image.width;
  src.height = image.height;
  src.getContext('2d')!.putImageData(data, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(src, 0, 0, w, h);
}

function toBlob(canvas: HTMLCanvasElement, type: string, quality?: number): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b && b.type === type ? resolve(b) : reject(new Error(`This browser cannot encode ${type} images.`))), type, quality),
  );
}

/** The image as a PNG file (exactly its pixels). */
export async function pngOf(image: GeneratedImage): Promise<Uint8Array<ArrayBuffer>> {
  const canvas = document.createElement('canvas');
  drawImage(canvas, image);
  return new Uint8Array(await (await toBlob(canvas, 'image/png')).arrayBuffer());
}

/** An integer upscale so a small model's frames make a video larger than a thumbnail (nearest neighbour). */
export const videoScale = (image: GeneratedImage) => Math.max(1, Math.floor(256 / Math.max(image.width, image.height)));

/** Animated WebP of the frames at `fps`, each frame through the browser's WebP encoder (quality 1). */
export async function encodeAnimatedWebp(frames: GeneratedImage[], fps: number): Promise<Uint8Array<ArrayBuffer>> {
  const scale = videoScale(frames[0]);
  const canvas = document.createElement('canvas');
  const stills: Uint8Array[] = [];
  for (const f of frames) {
    drawImage(canvas, f, scale);
    stills.push(new Uint8Array(await (await toBlob(canvas, 'image/webp', 1)).arrayBuffer()));
  }
  return animatedWebp(stills, canvas.width, canvas.height, 1000 / fps);
}

/** A MIME type this browser's MediaRecorder can write as WebM, or null. */
export function webmType(): string | null {
  if (typeof MediaRecorder === 'undefined') return null;
  return ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((t) => MediaRecorder.isTypeSupported(t)) ?? null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A WebM of the frames at `fps`, `loops` times through: each frame drawn on a canvas whose stream
 * MediaRecorder records (in real time: frames / fps seconds per loop).
 */
export async function recordWebm(frames: GeneratedImage[], fps: number, loops = 1): Promise<Blob> {
  const type = webmType();
  if (!type) throw new Error('This browser cannot record WebM video (no MediaRecorder for video/webm). Save an animated WebP instead.');
  const canvas = document.createElement('canvas');
  drawImage(canvas, frames[0], videoScale(frames[0]));
  const stream = canvas.captureStream(fps);
  const recorder = new MediaRecorder(stream, { mimeType: type, videoBitsPerSecond: 4_000_000 });
  const chunks: Blob[] = [];
  recorder.ondataavailable = (e) => {
    if (e.data.size > 0) chunks.push(e.data);
  };
  const stopped = new Promise<void>((resolve, reject) => {
    recorder.onstop = () => resolve();
    recorder.onerror = (e) => reject(new Error(`Recording failed: ${(e as ErrorEvent).message ?? 'MediaRecorder error'}`));
  });
  recorder.start();
  const frameMs = 1000 / fps;
  for (let l = 0; l < loops; l++) {
    for (const f of frames) {
      drawImage(canvas, f, videoScale(f));
      await sleep(frameMs);
    }
  }
  recorder.stop();
  await stopped;
  stream.getTracks().forEach((t) => t.stop());
  const blob = new Blob(chunks, { type: 'video/webm' });
  if (blob.size === 0) throw new Error('The recorder wrote no video data.');
  return blob;
}
