/**
 * Just enough PNG to put generation parameters into a downloaded image and read them back,
 * the way AUTOMATIC1111 does (a `parameters` text chunk), so other tools can read our files.
 */
import type { ImageResult } from './engine/protocol';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

// ---- CRC32 (ISO 3309, the one PNG uses) ----

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- chunks ----

interface Chunk {
  type: string;
  /** Offset of the chunk's length field. */
  start: number;
  /** Offset just past its CRC. */
  end: number;
  data: Uint8Array;
}

function assertPng(png: Uint8Array): void {
  if (png.length < SIGNATURE.length || SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new Error('Not a PNG file: the signature bytes are missing');
  }
}

function* chunks(png: Uint8Array): Generator<Chunk> {
  assertPng(png);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let pos = SIGNATURE.length;
  while (pos < png.length) {
    if (pos + 12 > png.length) throw new Error(`Truncated PNG: incomplete chunk header at byte ${pos}`);
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...png.subarray(pos + 4, pos + 8));
    const end = pos + 12 + length;
    if (end > png.length) throw new Error(`Truncated PNG: chunk ${type} at byte ${pos} runs past the end of the file`);
    yield { type, start: pos, end, data: png.subarray(pos + 8, pos + 8 + length) };
    if (type === 'IEND') return;
    pos = end;
  }
}

function makeChunk(type: string, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  // The CRC covers the type and the data, not the length.
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// ---- text ----

const isLatin1 = (s: string) => [...s].every((ch) => ch.codePointAt(0)! <= 0xff);

function latin1Bytes(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const latin1String = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join('');

function concat(...parts: ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function checkKeyword(keyword: string): void {
  // PNG spec 11.3.4.2: 1-79 printable Latin-1 characters, no leading/trailing/double spaces.
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || /^ | $| {2}/.test(keyword)) {
    throw new Error(
      `Invalid PNG text keyword ${JSON.stringify(keyword)}: use 1-79 printable Latin-1 characters without leading, trailing or double spaces`,
    );
  }
}

/**
 * Returns a copy of `png` with a text chunk right after IHDR (readers that stop early still see
 * it). Latin-1 text goes in tEXt, which every tool reads; anything else (emoji, CJK) in an
 * uncompressed UTF-8 iTXt chunk, because tEXt would mangle it.
 */
export function addTextChunk(png: Uint8Array, keyword: string, text: string): Uint8Array<ArrayBuffer> {
  checkKeyword(keyword);
  const first = chunks(png).next();
  if (first.done || first.value.type !== 'IHDR') throw new Error('Invalid PNG: the first chunk must be IHDR');
  const ihdrEnd = first.value.end;

  const key = latin1Bytes(keyword);
  const chunk = isLatin1(text)
    ? makeChunk('tEXt', concat(key, [0], latin1Bytes(text)))
    : // keyword \0 compression-flag compression-method language-tag \0 translated-keyword \0 text
      makeChunk('iTXt', concat(key, [0, 0, 0, 0, 0], new TextEncoder().encode(text)));
  return concat(png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd));
}

/**
 * Reads every tEXt and uncompressed iTXt chunk into keyword -> text (a later chunk with the same
 * keyword wins). Compressed iTXt and zTXt are skipped: inflating needs an async API in browsers.
 */
export function readTextChunks(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const chunk of chunks(png)) {
    if (chunk.type !== 'tEXt' && chunk.type !== 'iTXt') continue;
    const stored = new DataView(png.buffer, png.byteOffset + chunk.end - 4, 4).getUint32(0);
    const actual = crc32(png.subarray(chunk.start + 4, chunk.end - 4));
    if (stored !== actual) throw new Error(`Corrupt PNG: ${chunk.type} chunk at byte ${chunk.start} fails its CRC check`);

    const { data } = chunk;
    const nul = data.indexOf(0);
    if (nul < 1) continue; // no keyword: malformed, nothing to read
    const keyword = latin1String(data.subarray(0, nul));
    if (chunk.type === 'tEXt') {
      out[keyword] = latin1String(data.subarray(nul + 1));
      continue;
    }
    const compressed = data[nul + 1] !== 0;
    const langEnd = data.indexOf(0, nul + 3);
    const translatedEnd = langEnd < 0 ? -1 : data.indexOf(0, langEnd + 1);
    if (compressed || translatedEnd < 0) continue;
    out[keyword] = new TextDecoder('utf-8').decode(data.subarray(translatedEnd + 1));
  }
  return out;
}

// ---- AUTOMATIC1111 "parameters" ----

/** What the infotext needs of an image: an ImageRecord (or the `image` event it came from). */
export type ParametersInput = Pick<ImageResult, 'params' | 'modelId' | 'shift'>;

export interface ParsedParameters {
  prompt: string;
  negativePrompt: string;
  steps: number;
  cfg: number;
  seed: number;
  size: { width: number; height: number };
  model: string;
  shift: number;
  /** img2img only; null for text-to-image. */
  denoisingStrength: number | null;
}

// A1111 quotes a value (as JSON) when it would otherwise break the `Key: value, ...` line.
const quote = (v: string) => (/[,:\n"]/.test(v) ? JSON.stringify(v) : v);

/**
 * AUTOMATIC1111's infotext, which most image tools read:
 * `<prompt>\nNegative prompt: <neg>\nSteps: 20, Sampler: Euler, CFG scale: 4, Seed: 123, Size: 64x64, Model: id, Shift: 1`
 * (plus `, Denoising strength: 0.6` for image-to-image). The seed is the image's own (seed + its
 * index in the batch), so the text makes exactly this image again as a batch of one.
 * The sampler is always Euler: flow matching samples with FlowMatchEulerDiscreteScheduler.
 */
export function formatParameters({ params: p, modelId, shift }: ParametersInput): string {
  const lines = [p.prompt];
  if (p.negativePrompt !== '') lines.push(`Negative prompt: ${p.negativePrompt}`);
  const fields = [
    `Steps: ${p.numInferenceSteps}`,
    'Sampler: Euler',
    `CFG scale: ${p.guidanceScale}`,
    `Seed: ${p.seed}`,
    `Size: ${p.width}x${p.height}`,
    `Model: ${quote(modelId)}`,
    `Shift: ${shift}`,
  ];
  if (p.imageToImage) fields.push(`Denoising strength: ${p.strength}`);
  lines.push(fields.join(', '));
  return lines.join('\n');
}

const NEGATIVE = 'Negative prompt: ';
const FIELD = /\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;

/** Reads formatParameters' output (or an A1111 infotext with these fields) back. */
export function parseParameters(text: string): ParsedParameters {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const last = lines.pop() ?? '';
  const fields: Record<string, string> = {};
  for (const m of last.matchAll(FIELD)) {
    const raw = m[2].trim();
    fields[m[1]] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  if (!('Steps' in fields)) {
    throw new Error('Not a parameters text: the last line should start with "Steps: "');
  }

  // Everything before "Negative prompt:" is the prompt (it may span lines), the rest the negative.
  const negAt = lines.findIndex((l) => l.startsWith(NEGATIVE));
  const promptLines = negAt < 0 ? lines : lines.slice(0, negAt);
  const negLines = negAt < 0 ? [] : [lines[negAt].slice(NEGATIVE.length), ...lines.slice(negAt + 1)];

  const num = (key: string, fallback: number) => {
    if (!(key in fields)) return fallback;
    const n = Number(fields[key]);
    if (!Number.isFinite(n)) throw new Error(`Bad parameters text: ${key} is ${JSON.stringify(fields[key])}, not a number`);
    return n;
  };
  const size = /^(\d+)x(\d+)$/.exec(fields.Size ?? '');
  return {
    prompt: promptLines.join('\n'),
    negativePrompt: negLines.join('\n'),
    steps: num('Steps', NaN),
    cfg: num('CFG scale', NaN),
    seed: num('Seed', NaN),
    size: size ? { width: Number(size[1]), height: Number(size[2]) } : { width: NaN, height: NaN },
    model: fields.Model ?? '',
    shift: num('Shift', 1),
    denoisingStrength: 'Denoising strength' in fields ? num('Denoising strength', NaN) : null,
  };
}
