/** Test-only helpers: the shipped model folder and the golden fixtures written by training/fixtures.py. */
import fs from 'node:fs';
import path from 'node:path';
import type { Fetcher } from '../cache';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const MODEL_DIR = process.env.WEBDIT_MODEL_DIR ?? path.join(ROOT, 'public/models/webdit-tiny');
export const MANIFEST_PATH = path.join(MODEL_DIR, 'manifest.json');

export interface FixtureTensor {
  dims: number[];
  b64: string;
}

export function f32(t: FixtureTensor): Float32Array {
  const buf = Buffer.from(t.b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

export function u8(t: FixtureTensor): Uint8Array {
  return new Uint8Array(Buffer.from(t.b64, 'base64'));
}

export interface Fixtures {
  model: string;
  max_length: number;
  tokens: { prompt: string; ids: number[] }[];
  text: { prompt: string; last_hidden_state: FixtureTensor; text_embeds: FixtureTensor }[];
  sigmas: { steps: number; shift: number; sigmas: number[] }[];
  noise: { seed: number; shape: [number, number, number, number]; latents: FixtureTensor }[];
  transformer: { inputs: Record<string, FixtureTensor>; out_hidden_states: FixtureTensor };
  vae: { latent_sample: FixtureTensor; sample: FixtureTensor };
  runs: {
    prompt: string;
    negativePrompt: string;
    seed: number;
    numInferenceSteps: number;
    guidanceScale: number;
    shift: number;
    latents: FixtureTensor;
    rgb: FixtureTensor;
  }[];
}

export function loadFixtures(): Fixtures {
  const manifest = JSON.parse(fs.readFileSync(MANIFEST_PATH, 'utf8'));
  const file = process.env.WEBDIT_FIXTURES ?? path.join(ROOT, 'src/engine/__fixtures__', `${manifest.id}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** fetch() over the file system: model URLs in Node tests are plain paths. */
export const fileFetcher: Fetcher = async (url) => {
  try {
    return new Response(fs.readFileSync(url));
  } catch {
    return new Response('not found', { status: 404, statusText: 'Not Found' });
  }
};

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** PSNR in dB of two byte images of the same layout. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** RGBA -> RGB bytes. */
export function rgbOf(rgba: Uint8ClampedArray): Uint8Array {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let p = 0; p < rgba.length / 4; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = rgba[p * 4 + c];
  return out;
}
