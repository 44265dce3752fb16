/**
 * Test-only helpers: a model folder (the shipped one, or the toy model CI trains, via
 * WEBDIT_MODEL_DIR / WEBDIT_FIXTURES) and its golden fixtures written by training/fixtures.py.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Fetcher } from '../core/files';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const MODEL_DIR = process.env.WEBDIT_MODEL_DIR ? path.resolve(process.env.WEBDIT_MODEL_DIR) : path.join(ROOT, 'public/models/webdit-tiny');
/** The folder URL the engine loads in Node: a plain path ending in '/'. */
export const MODEL_URL = MODEL_DIR + '/';

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

export interface FixtureRun {
  prompt: string;
  negativePrompt: string;
  seed: number;
  numInferenceSteps: number;
  guidanceScale: number;
  shift: number;
  latents: FixtureTensor;
  rgb: FixtureTensor;
}

export interface Fixtures {
  model: string;
  max_length: number;
  model_files: Record<string, string>;
  tokens: { prompt: string; ids: number[] }[];
  text: { prompt: string; last_hidden_state: FixtureTensor; text_embeds: FixtureTensor }[];
  sigmas: { steps: number; shift: number; sigmas: number[] }[];
  noise: { seed: number; shape: [number, number, number, number]; latents: FixtureTensor }[];
  transformer: { inputs: Record<string, FixtureTensor>; out_hidden_states: FixtureTensor };
  vae: { latent_sample: FixtureTensor; sample: FixtureTensor };
  vae_encoder?: { sample: FixtureTensor; latent_sample: FixtureTensor };
  runs: FixtureRun[];
  img2img?: (FixtureRun & { strength: number; init_image: FixtureTensor })[];
}

export function readManifest(): { id: string; files: Record<string, { bytes: number; sha256: string }> } {
  return JSON.parse(fs.readFileSync(path.join(MODEL_DIR, 'manifest.json'), 'utf8'));
}

export function loadFixtures(): Fixtures {
  const file = process.env.WEBDIT_FIXTURES ?? path.join(ROOT, 'src/engine/__fixtures__', `${readManifest().id}.json`);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** fetch() over the file system: model URLs in Node tests are plain paths. */
export const fileFetcher: Fetcher = async (url) => {
  try {
    return new Response(fs.readFileSync(url.split('?')[0]));
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

/** RGB bytes (H x W x 3) -> RGBA, for init images. */
export function rgbaOf(rgb: Uint8Array): Uint8ClampedArray {
  const out = new Uint8ClampedArray((rgb.length / 3) * 4);
  for (let p = 0; p < rgb.length / 3; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = rgb[p * 3 + c];
    out[p * 4 + 3] = 255;
  }
  return out;
}
