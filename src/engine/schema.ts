/**
 * The generate request, as one table: each field's type, range, default and the hint a bad value
 * gets. The parameter types, the request parser, the store's clamps and the UI's slider ranges all
 * come from here; a model narrows the ranges further (ModelInfo.limits).
 */
import { badRequest } from './errors';

/**
 * An animation made as one batch: frame i of `frames` at t = i / (frames - 1). 'seed': the initial
 * noise is slerp(noise(seed), noise(to), t); 'prompt': every frame starts from noise(seed) and the
 * text conditioning is lerp(encode(prompt), encode(to), t) (core/animation.ts).
 */
export type AnimationSpec = { kind: 'seed'; to: number; frames: number } | { kind: 'prompt'; to: string; frames: number };

/** Frames of an animation; a model's batch limit (numImagesPerPrompt) narrows the maximum. */
export const ANIMATION_FRAMES = { min: 2, max: 8 } as const;

export interface InitImage {
  width: number;
  height: number;
  /** RGBA bytes, width*height*4. */
  data: Uint8ClampedArray;
}

type FieldSpec =
  | { kind: 'string'; maxLength: number; default?: string; hint: string }
  | { kind: 'int'; min: number; max: number; default?: number; hint: string }
  | { kind: 'number'; min: number; max: number; step?: number; default?: number; hint: string }
  | { kind: 'image'; hint: string }
  | { kind: 'animation'; hint: string };

export const GENERATE_FIELDS = {
  prompt: { kind: 'string', maxLength: 10_000, default: '', hint: 'Shorten the prompt (only the first tokens are used anyway).' },
  /** No default here: the model's own default negative prompt applies. */
  negativePrompt: { kind: 'string', maxLength: 10_000, hint: 'Shorten the negative prompt.' },
  /** No default here: the model's own default applies. */
  numInferenceSteps: { kind: 'int', min: 1, max: 50, hint: 'Set steps between 1 and 50.' },
  guidanceScale: { kind: 'number', min: 1, max: 20, step: 0.5, hint: 'Set guidance between 1 (off) and 20.' },
  /** Absent: the engine picks one and reports it with the image. */
  seed: { kind: 'int', min: 0, max: 0xffffffff, hint: 'Use a whole number seed from 0 to 4294967295, or roll the dice.' },
  numImagesPerPrompt: { kind: 'int', min: 1, max: 8, default: 1, hint: 'Make 1 to 8 images at a time.' },
  width: { kind: 'int', min: 8, max: 4096, hint: 'Pick one of the sizes the model offers.' },
  height: { kind: 'int', min: 8, max: 4096, hint: 'Pick one of the sizes the model offers.' },
  /** Image-to-image: the starting picture, at the requested width x height. */
  image: { kind: 'image', hint: 'Send RGBA pixels { width, height, data } at the size you ask for.' },
  strength: { kind: 'number', min: 0, max: 1, default: 0.6, hint: 'Set strength between 0 (keep the image) and 1 (ignore it).' },
  /** Send a preview of the expected final image every N steps (0 = none). */
  previewEvery: { kind: 'int', min: 0, max: 50, default: 0, hint: 'Use 0 for no previews, or preview every 1 to 50 steps.' },
  /** Frames of a seed-variation or prompt-interpolation animation, made as the batch. */
  animation: {
    kind: 'animation',
    hint: `Send { kind: 'seed', to: <seed B>, frames: ${ANIMATION_FRAMES.min}-${ANIMATION_FRAMES.max} } or { kind: 'prompt', to: '<prompt B>', frames: ${ANIMATION_FRAMES.min}-${ANIMATION_FRAMES.max} }, with numImagesPerPrompt 1.`,
  },
} as const satisfies Record<string, FieldSpec>;

type Fields = typeof GENERATE_FIELDS;
type ValueOf<F> = F extends { kind: 'string' } ? string : F extends { kind: 'image' } ? InitImage : F extends { kind: 'animation' } ? AnimationSpec : number;
type WithDefault = { [K in keyof Fields]: Fields[K] extends { default: unknown } ? K : never }[keyof Fields];

/** What a caller may send: every field optional. */
export type GenerateRequestParams = { [K in keyof Fields]?: ValueOf<Fields[K]> };
/** After parsing: fields with a default are always present. */
export type GenerateParams = { [K in WithDefault]: ValueOf<Fields[K]> } & { [K in Exclude<keyof Fields, WithDefault>]?: ValueOf<Fields[K]> };
/** After the model's defaults are applied: everything but the init image is known. */
export type ResolvedGenerateParams = Required<Omit<GenerateParams, 'image' | 'animation'>> & { imageToImage: boolean; animation?: AnimationSpec };

export type NumericField = { [K in keyof Fields]: Fields[K] extends { kind: 'int' | 'number' } ? K : never }[keyof Fields];

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function parseImage(v: unknown, hint: string): InitImage {
  if (!isObj(v)) throw badRequest('"image" must be an object { width, height, data }.', hint);
  const { width, height, data } = v;
  if (typeof width !== 'number' || typeof height !== 'number' || !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw badRequest('"image.width" and "image.height" must be positive integers.', hint);
  }
  if (!(data instanceof Uint8ClampedArray || data instanceof Uint8Array) || data.length !== width * height * 4) {
    throw badRequest(`"image.data" must hold ${width}x${height}x4 RGBA bytes.`, hint);
  }
  return { width, height, data: data instanceof Uint8ClampedArray ? data : new Uint8ClampedArray(data.buffer, data.byteOffset, data.length) };
}

function parseAnimation(v: unknown, hint: string): AnimationSpec {
  if (!isObj(v)) throw badRequest('"animation" must be an object { kind, to, frames }.', hint);
  const extra = Object.keys(v).filter((k) => !['kind', 'to', 'frames'].includes(k));
  if (extra.length) throw badRequest(`Unknown animation field(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}.`, hint);
  const { kind, to, frames } = v;
  const { min, max } = ANIMATION_FRAMES;
  if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < min || frames > max) {
    throw badRequest(`"animation.frames" must be an integer from ${min} to ${max}, not ${JSON.stringify(frames)}.`, hint);
  }
  if (kind === 'seed') {
    const s = GENERATE_FIELDS.seed;
    if (typeof to !== 'number' || !Number.isInteger(to) || to < s.min || to > s.max) {
      throw badRequest(`"animation.to" of a seed animation must be the second seed, a whole number from ${s.min} to ${s.max}, not ${JSON.stringify(to)}.`, hint);
    }
    return { kind, to, frames };
  }
  if (kind === 'prompt') {
    const p = GENERATE_FIELDS.prompt;
    if (typeof to !== 'string') throw badRequest(`"animation.to" of a prompt animation must be the second prompt (a string), not ${JSON.stringify(to)}.`, hint);
    if (to.length > p.maxLength) throw badRequest(`"animation.to" has ${to.length} characters; the limit is ${p.maxLength}.`, p.hint);
    return { kind, to, frames };
  }
  throw badRequest(`"animation.kind" must be 'seed' or 'prompt', not ${JSON.stringify(kind)}.`, hint);
}

/** Check a raw `params` object against the table: unknown fields and bad values are BadRequestErrors. */
export function parseGenerateParams(raw: unknown): GenerateParams {
  if (!isObj(raw)) throw badRequest('"params" must be an object.');
  const unknown = Object.keys(raw).filter((k) => !Object.hasOwn(GENERATE_FIELDS, k));
  if (unknown.length) {
    throw badRequest(`Unknown parameter(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}.`, `Use only: ${Object.keys(GENERATE_FIELDS).join(', ')}.`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(GENERATE_FIELDS) as [keyof Fields, FieldSpec][]) {
    const v = raw[key];
    if (v === undefined) {
      if ('default' in spec && spec.default !== undefined) out[key] = spec.default;
      continue;
    }
    switch (spec.kind) {
      case 'string':
        if (typeof v !== 'string') throw badRequest(`"${key}" must be a string.`, spec.hint);
        if (v.length > spec.maxLength) throw badRequest(`"${key}" has ${v.length} characters; the limit is ${spec.maxLength}.`, spec.hint);
        out[key] = v;
        break;
      case 'int':
      case 'number': {
        const ok = typeof v === 'number' && Number.isFinite(v) && (spec.kind === 'number' || Number.isInteger(v)) && v >= spec.min && v <= spec.max;
        if (!ok) {
          const what = spec.kind === 'int' ? 'an integer' : 'a number';
          throw badRequest(`"${key}" must be ${what} from ${spec.min} to ${spec.max}, not ${JSON.stringify(v)}.`, spec.hint);
        }
        out[key] = v;
        break;
      }
      case 'image':
        out[key] = parseImage(v, spec.hint);
        break;
      case 'animation':
        out[key] = parseAnimation(v, spec.hint);
        break;
    }
  }
  const anim = out.animation as AnimationSpec | undefined;
  if (anim && out.numImagesPerPrompt !== 1) {
    throw badRequest(`An animation makes its ${anim.frames} frames as the batch, so "numImagesPerPrompt" must be 1, not ${JSON.stringify(out.numImagesPerPrompt)}.`, GENERATE_FIELDS.animation.hint);
  }
  if (anim?.kind === 'seed' && out.seed !== undefined && anim.to === out.seed) {
    throw badRequest(`The seed animation goes from seed ${anim.to} to the same seed: every frame would be the same picture.`, 'Pick a second seed different from the first.');
  }
  if (anim?.kind === 'prompt' && anim.to === out.prompt) {
    throw badRequest('The prompt animation goes from a prompt to the same prompt: every frame would be the same picture.', 'Type a second prompt different from the first.');
  }
  return out as GenerateParams;
}

/** The table's range for a numeric field (a model may narrow it). */
export function fieldRange(key: NumericField): { min: number; max: number } {
  const f = GENERATE_FIELDS[key];
  return { min: f.min, max: f.max };
}
