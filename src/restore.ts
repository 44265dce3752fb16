/**
 * Restore from a PNG: the settings a PNG carries (WebDiT's or AUTOMATIC1111's `parameters` text),
 * checked like typed values against the loaded model. Nothing here touches the store: `planRestore`
 * says what would change, what is refused (each naming its field) and what the PNG says that the
 * form does not take; the UI shows it and applies `values` through the store's setters.
 */
import { fieldRange, GENERATE_FIELDS } from './engine/schema';
import { decodeText, listTextChunks, parseInfotext, type Infotext, type TextChunk } from './png';
import { clampGuidance, clampStrength, GUIDANCE_STEP, parseSeedText, STRENGTH_STEP } from './store/params';
import { selectLimits } from './store/selectors';
import type { FormValues, StudioData } from './store/state';
import { cleanText } from './text';

/** What a file carries: settings, none at all (a plain picture), or metadata that cannot be read. */
export type PngSettings =
  | { kind: 'settings'; infotext: Infotext }
  | { kind: 'none'; reason: string }
  | { kind: 'unreadable'; reason: string };

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The keyword WebDiT and AUTOMATIC1111 write the infotext under. */
export const PARAMETERS = 'parameters';
/** ComfyUI's keywords: a node graph, not settings a form could take. */
const COMFY_KEYWORDS = ['prompt', 'workflow'];

/** A zlib stream (PNG's compressed text) inflated with the browser's DecompressionStream. */
async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\.$/, '');

/** Reads the settings a file carries; `name` and `type` only word the messages. */
export async function readPngSettings(bytes: Uint8Array, name: string, type = ''): Promise<PngSettings> {
  if (bytes.length < SIGNATURE.length || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    if (type === 'image/png' || /\.png$/i.test(name)) {
      return { kind: 'unreadable', reason: `${name} is not a PNG file inside (its PNG signature bytes are missing), so its settings cannot be read` };
    }
    return { kind: 'none', reason: `${name} is not a PNG${type ? ` (${type})` : ''}, so it carries no settings: WebDiT and AUTOMATIC1111 write them into PNGs` };
  }
  let chunks: TextChunk[];
  try {
    chunks = listTextChunks(bytes);
  } catch (e) {
    return { kind: 'unreadable', reason: `The metadata of ${name} could not be read: ${errorText(e)}` };
  }
  // a later chunk wins, as in readTextChunks
  const chunk = chunks.filter((c) => c.keyword === PARAMETERS).at(-1);
  if (!chunk) {
    const keywords = [...new Set(chunks.map((c) => c.keyword))];
    const listed = keywords.map((k) => `"${k}"`).join(', ');
    if (keywords.some((k) => COMFY_KEYWORDS.includes(k))) {
      return {
        kind: 'unreadable',
        reason: `${name} carries ComfyUI's ${listed} text (a node graph), not the "${PARAMETERS}" text WebDiT reads settings from`,
      };
    }
    const others = keywords.length > 0 ? `; its text chunks are ${listed}` : '';
    return { kind: 'none', reason: `${name} carries no generation settings (no "${PARAMETERS}" text${others})` };
  }
  let text: string;
  try {
    text = decodeText(chunk, chunk.compressed ? await inflate(chunk.text) : chunk.text);
  } catch (e) {
    return { kind: 'unreadable', reason: `The compressed "${PARAMETERS}" text (${chunk.type} at byte ${chunk.start}) of ${name} could not be inflated: ${errorText(e)}` };
  }
  try {
    return { kind: 'settings', infotext: parseInfotext(text) };
  } catch (e) {
    return { kind: 'unreadable', reason: `The "${PARAMETERS}" text of ${name} could not be read: ${errorText(e)}` };
  }
}

export interface RestorePlan {
  /** What goes into the form (through applyForm): every value already valid for the loaded model. */
  values: Partial<FormValues>;
  /** What will change, in form order ("steps 3", "seed 5"). */
  applied: string[];
  /** Values that were refused, each naming its field, the value and why; the form keeps its own. */
  refused: string[];
  /** What the PNG says that the form does not take, or that makes the image differ. */
  notes: string[];
}

/** The fields planRestore reads; anything else in the settings line is named as not used. */
const KNOWN = new Set(['Steps', 'Sampler', 'CFG scale', 'Seed', 'Size', 'Model', 'Shift', 'Denoising strength']);

/** A decimal literal ("3", "4.5", "1e1"), or null: no hex, no empty text, no "Infinity". */
function readNumber(raw: string): number | null {
  const t = raw.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

const shorten = (text: string, max = 40) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** What restoring `info` would do to the form in state `s` (the loaded model's limits apply). */
export function planRestore(info: Infotext, s: StudioData): RestorePlan {
  const plan: RestorePlan = { values: {}, applied: [], refused: [], notes: [] };
  const { fields } = info;
  const model = s.model.info;
  const limits = selectLimits(s);
  const of = model ? ` for ${model.name}` : '';

  // prompts: cleaned like typed text; a negative prompt is one line in its field
  const prompt = cleanText(info.prompt);
  if (prompt.length > GENERATE_FIELDS.prompt.maxLength) {
    plan.refused.push(`Prompt: ${prompt.length} characters, more than the ${GENERATE_FIELDS.prompt.maxLength} the field takes`);
  } else {
    plan.values.prompt = prompt;
    plan.applied.push('prompt');
    if (prompt !== info.prompt) plan.notes.push('Control characters were removed from the prompt.');
  }
  let negative = cleanText(info.negativePrompt);
  if (negative !== info.negativePrompt) plan.notes.push('Control characters were removed from the negative prompt.');
  if (negative.includes('\n')) {
    plan.notes.push(`The negative prompt's ${negative.split('\n').length} lines were joined with spaces: its field holds one line.`);
    negative = negative.replace(/\n/g, ' ');
  }
  if (negative.length > GENERATE_FIELDS.negativePrompt.maxLength) {
    plan.refused.push(`Negative prompt: ${negative.length} characters, more than the ${GENERATE_FIELDS.negativePrompt.maxLength} the field takes`);
  } else {
    plan.values.negativePrompt = negative;
    plan.applied.push(negative === '' ? 'negative prompt (empty)' : 'negative prompt');
  }

  if ('Steps' in fields) {
    const raw = fields.Steps;
    const n = readNumber(raw);
    const { min, max } = limits.numInferenceSteps;
    if (n === null || !Number.isInteger(n)) plan.refused.push(`Steps "${shorten(raw)}": not a whole number`);
    else if (n < min || n > max) plan.refused.push(`Steps ${n}: outside ${min}–${max}${of}`);
    else {
      plan.values.numInferenceSteps = n;
      plan.applied.push(`steps ${n}`);
    }
  }

  if ('CFG scale' in fields) {
    const raw = fields['CFG scale'];
    const n = readNumber(raw);
    const { min, max } = limits.guidanceScale;
    if (n === null) plan.refused.push(`CFG scale "${shorten(raw)}": not a number`);
    else if (n < min || n > max) plan.refused.push(`CFG scale ${n}: outside ${min}–${max}${of}`);
    else if (clampGuidance(n, limits.guidanceScale) !== n) plan.refused.push(`CFG scale ${n}: not a multiple of ${GUIDANCE_STEP}, the guidance slider's step`);
    else {
      plan.values.guidanceScale = n;
      plan.applied.push(`CFG ${n}`);
    }
  }

  if ('Size' in fields) {
    const raw = fields.Size;
    const m = /^(\d+)x(\d+)$/.exec(raw.trim());
    if (!m) plan.refused.push(`Size "${shorten(raw)}": not WIDTHxHEIGHT`);
    else {
      const [w, h] = [Number(m[1]), Number(m[2])];
      const sizes = model?.limits.sizes;
      const [wr, hr] = [fieldRange('width'), fieldRange('height')];
      if (sizes && !sizes.some(([sw, sh]) => sw === w && sh === h)) {
        plan.refused.push(`Size ${w}×${h}: ${model!.name} makes ${sizes.map(([sw, sh]) => `${sw}×${sh}`).join(', ')}`);
      } else if (!sizes && (w < wr.min || w > wr.max || h < hr.min || h > hr.max)) {
        plan.refused.push(`Size ${w}×${h}: outside ${wr.min}–${wr.max} pixels a side`);
      } else {
        plan.values.size = [w, h];
        plan.applied.push(`size ${w}×${h}`);
      }
    }
  }

  if ('Seed' in fields) {
    const parsed = parseSeedText(fields.Seed);
    if ('error' in parsed) plan.refused.push(parsed.error.replace(/\.$/, ''));
    else {
      plan.values.seed = parsed.seed;
      plan.applied.push(`seed ${parsed.seed}`);
      // the PNG is one image made from this seed: make exactly it again
      if (s.randomizeSeed) {
        plan.values.randomizeSeed = false;
        plan.applied.push('"New seed each time" off');
      }
      if (s.numImagesPerPrompt !== 1) {
        plan.values.numImagesPerPrompt = 1;
        plan.applied.push('images 1');
      }
    }
  }

  if ('Denoising strength' in fields) {
    const raw = fields['Denoising strength'];
    const n = readNumber(raw);
    const { min, max } = fieldRange('strength');
    if (n === null || n < min || n > max) plan.refused.push(`Denoising strength "${shorten(raw)}": not a number from ${min} to ${max}`);
    else if (clampStrength(n) !== n) plan.refused.push(`Denoising strength ${n}: not a multiple of ${STRENGTH_STEP}, the strength slider's step`);
    else {
      plan.values.strength = n;
      plan.applied.push(`strength ${n}`);
      plan.notes.push('It was made from an init image, which a PNG does not carry: choose the same picture to make it again.');
    }
  }

  // what makes the same settings give another image
  if ('Model' in fields && model && fields.Model !== model.id) {
    plan.notes.push(`It was made with the model "${shorten(fields.Model, 60)}"; ${model.name} is loaded, so these settings make a different image.`);
  }
  if ('Shift' in fields && model && readNumber(fields.Shift) !== model.scheduler.shift) {
    plan.notes.push(`It was sampled with shift ${shorten(fields.Shift)}; ${model.name} samples with shift ${model.scheduler.shift}.`);
  }
  if ('Sampler' in fields && fields.Sampler !== 'Euler') {
    plan.notes.push(`Sampler "${shorten(fields.Sampler)}" is not used: WebDiT always samples with Euler (flow matching).`);
  }
  const unused = Object.keys(fields).filter((k) => !KNOWN.has(k));
  if (unused.length > 0) plan.notes.push(`Not used: ${unused.map((k) => shorten(k)).join(', ')}.`);
  return plan;
}

/** The one-line outcome the panel shows after applying `plan`. */
export function restoreSummary(plan: RestorePlan, name: string): string {
  const applied = plan.applied.length > 0 ? `Restored from ${name}: ${plan.applied.join(', ')}.` : `Nothing was restored from ${name}.`;
  const refused = plan.refused.length > 0 ? ` Not restored (the form keeps its own values): ${plan.refused.join('; ')}.` : '';
  return applied + refused;
}
