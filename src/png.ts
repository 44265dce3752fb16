/**
 * Just enough PNG to put generation parameters into a downloaded image and read them back,
 * the way AUTOMATIC1111 does (a `parameters` text chunk), so other tools can read our files.
 */
import type { ImageResult } from './engine/protocol';
import { GENERATE_FIELDS } from './engine/schema';
import { cleanText } from './text';

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

/** One text chunk as stored: its text still deflated where `compressed` (zTXt, compressed iTXt). */
export interface TextChunk {
  type: 'tEXt' | 'iTXt' | 'zTXt';
  keyword: string;
  compressed: boolean;
  /** The text bytes: Latin-1 (tEXt, zTXt) or UTF-8 (iTXt), deflated (zlib) when compressed. */
  text: Uint8Array;
  /** Byte offset of the chunk in the file, for messages. */
  start: number;
}

/**
 * Every text chunk (tEXt, iTXt, zTXt) in file order, each checked against its CRC. A chunk whose
 * keyword or header is missing is malformed and left out.
 */
export function listTextChunks(png: Uint8Array): TextChunk[] {
  const out: TextChunk[] = [];
  for (const chunk of chunks(png)) {
    const { type } = chunk;
    if (type !== 'tEXt' && type !== 'iTXt' && type !== 'zTXt') continue;
    const stored = new DataView(png.buffer, png.byteOffset + chunk.end - 4, 4).getUint32(0);
    const actual = crc32(png.subarray(chunk.start + 4, chunk.end - 4));
    if (stored !== actual) throw new Error(`Corrupt PNG: ${type} chunk at byte ${chunk.start} fails its CRC check`);

    const { data } = chunk;
    const nul = data.indexOf(0);
    if (nul < 1) continue; // no keyword: malformed, nothing to read
    const keyword = latin1String(data.subarray(0, nul));
    const start = chunk.start;
    if (type === 'tEXt') out.push({ type, keyword, compressed: false, text: data.subarray(nul + 1), start });
    // keyword \0 compression-method compressed-text
    else if (type === 'zTXt') out.push({ type, keyword, compressed: true, text: data.subarray(nul + 2), start });
    else {
      // keyword \0 compression-flag compression-method language-tag \0 translated-keyword \0 text
      const langEnd = data.indexOf(0, nul + 3);
      const translatedEnd = langEnd < 0 ? -1 : data.indexOf(0, langEnd + 1);
      if (translatedEnd < 0) continue;
      out.push({ type, keyword, compressed: data[nul + 1] !== 0, text: data.subarray(translatedEnd + 1), start });
    }
  }
  return out;
}

/** An uncompressed chunk's text (tEXt is Latin-1, iTXt UTF-8). */
export function decodeText(chunk: Pick<TextChunk, 'type'>, bytes: Uint8Array): string {
  return chunk.type === 'iTXt' ? new TextDecoder('utf-8').decode(bytes) : latin1String(bytes);
}

/**
 * Reads every tEXt and uncompressed iTXt chunk into keyword -> text (a later chunk with the same
 * keyword wins). Compressed iTXt and zTXt are skipped: inflating needs an async API in browsers.
 */
export function readTextChunks(png: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const chunk of listTextChunks(png)) if (!chunk.compressed) out[chunk.keyword] = decodeText(chunk, chunk.text);
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

/**
 * How AUTOMATIC1111 reads an infotext (modules/infotext_utils.py, parse_generation_parameters):
 * - the last line holds the settings when this pattern finds at least 3 `Key: value` pairs in it
 *   (a value in double quotes is JSON; a value that matches `WxH` is a size);
 * - of the lines before it, each is stripped of white space, and the first that then starts with
 *   "Negative prompt:" starts the negative prompt; everything before it is the prompt.
 * Python's `\w` is Unicode-aware, hence \p{L}\p{N}_.
 */
const FIELD = /\s*([\p{L}\p{N}_][\p{L}\p{N}_ \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/gu;
/** Python's str.strip() white space: JS's \s plus the separators U+001C-U+001F and NEL (U+0085). */
const WS = '[\\s\\u001c-\\u001f\\u0085]';
const NEGATIVE = 'Negative prompt:';
/** Two full prompts and a settings line fit easily; longer text is refused before any pattern runs over it. */
const MAX_INFOTEXT = 4 * GENERATE_FIELDS.prompt.maxLength;
/** The settings pattern is quadratic over a long run of word characters: bound the line it scans. */
const MAX_SETTINGS_LINE = 10_000;
const MARKER_LINE = new RegExp(`^${WS}*${NEGATIVE}`);
/** A prompt line that A1111 would take for the negative prompt's start, with any backslashes before it. */
const LOOKS_LIKE_MARKER = new RegExp(`^\\\\*${WS}*${NEGATIVE}`);
const ESCAPED_MARKER = new RegExp(`^\\\\+${WS}*${NEGATIVE}`);

/**
 * A prompt cannot forge settings: a line of the prompt or negative prompt that A1111 would read as
 * "Negative prompt:" gets one backslash in front (as does one that already starts with backslashes
 * before those words, so the escape can be undone). A1111 then keeps the line as prompt text, and
 * its prompt parser drops a lone backslash, so the model there is given the same words. Forged
 * settings lines ("Steps: 99, Seed: 5") need nothing: only the last line holds settings, and the
 * real one always comes last.
 */
const escapeLines = (text: string) =>
  text
    .split('\n')
    .map((line) => (LOOKS_LIKE_MARKER.test(line) ? `\\${line}` : line))
    .join('\n');
const unescapeLine = (line: string) => (ESCAPED_MARKER.test(line) ? line.slice(1) : line);

// A1111 quotes a value (as JSON) when it would otherwise break the `Key: value, ...` line.
const quote = (v: string) => (/[,:\n"]/.test(v) ? JSON.stringify(v) : v);

/**
 * AUTOMATIC1111's infotext, which most image tools read:
 * `<prompt>\nNegative prompt: <neg>\nSteps: 20, Sampler: Euler, CFG scale: 4, Seed: 123, Size: 64x64, Model: id, Shift: 1`
 * (plus `, Denoising strength: 0.6` for image-to-image). The seed is the image's own (seed + its
 * index in the batch), so the text makes exactly this image again as a batch of one.
 * The sampler is always Euler: flow matching samples with FlowMatchEulerDiscreteScheduler.
 * Text goes through cleanText (the store already did: then it changes nothing) and escapeLines.
 */
export function formatParameters({ params: p, modelId, shift }: ParametersInput): string {
  const negative = cleanText(p.negativePrompt);
  const lines = [escapeLines(cleanText(p.prompt))];
  if (negative !== '') lines.push(`${NEGATIVE} ${escapeLines(negative)}`);
  const fields = [
    `Steps: ${p.numInferenceSteps}`,
    'Sampler: Euler',
    `CFG scale: ${p.guidanceScale}`,
    `Seed: ${p.seed}`,
    `Size: ${p.width}x${p.height}`,
    `Model: ${quote(cleanText(modelId))}`,
    `Shift: ${shift}`,
  ];
  if (p.imageToImage) fields.push(`Denoising strength: ${p.strength}`);
  lines.push(fields.join(', '));
  return lines.join('\n');
}

/** An infotext split the way A1111 splits it: the prompt, the negative prompt and the settings line's fields. */
export interface Infotext {
  prompt: string;
  negativePrompt: string;
  /** Each `Key: value` of the settings line, unquoted, in order; a later duplicate wins, an empty value is skipped (as in A1111). */
  fields: Record<string, string>;
}

/**
 * Reads an infotext by A1111's rules (see FIELD) with two differences, so that our own files come
 * back exactly: lines keep their white space (A1111 strips every line), and a line escaped by
 * formatParameters loses its added backslash. Throws when the last line holds no settings.
 */
export function parseInfotext(text: string): Infotext {
  if (text.length > MAX_INFOTEXT) {
    throw new Error(`it is ${text.length} characters long; an infotext of two ${GENERATE_FIELDS.prompt.maxLength}-character prompts and its settings fits in ${MAX_INFOTEXT}`);
  }
  const lines = trimEndWs(text.replace(/\r\n?/g, '\n')).split('\n');
  const last = lines.pop() ?? '';
  if (last.length > MAX_SETTINGS_LINE) throw new Error(`its last line is ${last.length} characters long, too long for a settings line (at most ${MAX_SETTINGS_LINE})`);
  const pairs = [...last.matchAll(FIELD)];
  if (pairs.length < 3) {
    throw new Error(`its last line holds no settings (it should read like "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, …"), only ${JSON.stringify(last.slice(0, 60))}`);
  }
  const fields: Record<string, string> = {};
  for (const [, key, value] of pairs) {
    if (value === '') continue; // A1111 fails on value[0] and skips the field
    fields[key] = value.startsWith('"') && value.endsWith('"') ? unquoteJson(value) : value;
  }

  const prompt: string[] = [];
  const negative: string[] = [];
  for (const line of lines) {
    if (MARKER_LINE.test(line)) {
      // the marker (A1111 drops it from any line), and the one space formatParameters and A1111 write after it
      negative.push(unescapeLine(line.replace(MARKER_LINE, '').replace(/^ /, '')));
    } else (negative.length > 0 ? negative : prompt).push(unescapeLine(line));
  }
  return { prompt: prompt.join('\n'), negativePrompt: negative.join('\n'), fields };
}

/** Python's str.rstrip(), without a regex that would backtrack over long runs of white space. */
function trimEndWs(text: string): string {
  const ws = new RegExp(`^${WS}$`);
  let end = text.length;
  while (end > 0 && ws.test(text[end - 1])) end--;
  return text.slice(0, end);
}

/** A1111's unquote: JSON when it parses as such, else the text as it is. */
function unquoteJson(value: string): string {
  try {
    const out: unknown = JSON.parse(value);
    return typeof out === 'string' ? out : value;
  } catch {
    return value;
  }
}

/** Reads formatParameters' output (or an A1111 infotext with these fields) back. */
export function parseParameters(text: string): ParsedParameters {
  let info: Infotext;
  try {
    info = parseInfotext(text);
  } catch (e) {
    throw new Error(`Not a parameters text: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { fields } = info;
  if (!('Steps' in fields)) {
    throw new Error('Not a parameters text: the settings line has no "Steps: " field');
  }
  const num = (key: string, fallback: number) => {
    if (!(key in fields)) return fallback;
    const n = Number(fields[key]);
    if (fields[key].trim() === '' || !Number.isFinite(n)) {
      throw new Error(`Bad parameters text: ${key} is ${JSON.stringify(fields[key])}, not a number`);
    }
    return n;
  };
  const size = /^(\d+)x(\d+)$/.exec(fields.Size ?? '');
  return {
    prompt: info.prompt,
    negativePrompt: info.negativePrompt,
    steps: num('Steps', NaN),
    cfg: num('CFG scale', NaN),
    seed: num('Seed', NaN),
    size: size ? { width: Number(size[1]), height: Number(size[2]) } : { width: NaN, height: NaN },
    model: fields.Model ?? '',
    shift: num('Shift', 1),
    denoisingStrength: 'Denoising strength' in fields ? num('Denoising strength', NaN) : null,
  };
}
