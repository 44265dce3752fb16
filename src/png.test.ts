import { describe, expect, it } from 'vitest';
import * as zlib from 'node:zlib';
import type { ResolvedGenerateParams } from './engine/protocol';
import { addTextChunk, crc32, formatParameters, parseParameters, readTextChunks, type ParametersInput } from './png';

// Independent bitwise CRC32 (no table), so the module's table is not checked against itself.
function referenceCrc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}
const nodeCrc32 = (zlib as { crc32?: (d: Uint8Array) => number }).crc32 ?? referenceCrc32;

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(nodeCrc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A real 2x2 RGBA PNG, written by hand with node's zlib. */
function minimalPng(): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0); // width
  ihdr.writeUInt32BE(2, 4); // height
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, adaptive filter, no interlace
  // Each scanline: filter byte 0 + 2 pixels * 4 bytes.
  const raw = Buffer.from([0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', new Uint8Array()),
  ]);
  return new Uint8Array(png);
}

/** Lists chunks and checks every CRC with the independent implementation. */
function listChunks(png: Uint8Array): { type: string; data: Uint8Array }[] {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const out = [];
  let pos = 8;
  while (pos < buf.length) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + length);
    expect(buf.readUInt32BE(pos + 8 + length), `CRC of ${type}`).toBe(referenceCrc32(buf.subarray(pos + 4, pos + 8 + length)));
    out.push({ type, data: new Uint8Array(data) });
    pos += 12 + length;
  }
  return out;
}

describe('crc32', () => {
  it('matches the standard check value and node', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    const bytes = new Uint8Array(1000).map((_, i) => (i * 7919) & 0xff);
    expect(crc32(bytes)).toBe(nodeCrc32(bytes));
    expect(crc32(bytes)).toBe(referenceCrc32(bytes));
  });
});

describe('addTextChunk / readTextChunks', () => {
  it('puts a tEXt chunk right after IHDR and keeps the image intact', () => {
    const png = minimalPng();
    const out = addTextChunk(png, 'parameters', 'a red circle');
    const chunks = listChunks(out);
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'tEXt', 'IDAT', 'IEND']);
    expect(Buffer.from(chunks[1].data).toString('latin1')).toBe('parameters\0a red circle');
    // The pixel data still inflates to what we wrote.
    expect(zlib.inflateSync(chunks[2].data).length).toBe(18);
    expect(png.length).toBe(out.length - (12 + 'parameters\0a red circle'.length)); // input untouched
    expect(readTextChunks(out)).toEqual({ parameters: 'a red circle' });
  });

  it('keeps Latin-1 accents in tEXt, one byte each', () => {
    const out = addTextChunk(minimalPng(), 'Comment', 'crème brûlée ×2');
    const text = listChunks(out)[1];
    expect(text.type).toBe('tEXt');
    expect(text.data.length).toBe('Comment\0crème brûlée ×2'.length);
    expect(readTextChunks(out)).toEqual({ Comment: 'crème brûlée ×2' });
  });

  it('uses uncompressed UTF-8 iTXt for text outside Latin-1', () => {
    const prompt = '🐱 a cat, café, 東京, emoji 👩‍🚀';
    const out = addTextChunk(minimalPng(), 'parameters', prompt);
    const text = listChunks(out)[1];
    expect(text.type).toBe('iTXt');
    const header = Buffer.from('parameters\0\0\0\0\0', 'latin1');
    expect(Buffer.from(text.data.subarray(0, header.length)).equals(header)).toBe(true);
    expect(Buffer.from(text.data.subarray(header.length)).toString('utf8')).toBe(prompt);
    expect(readTextChunks(out)).toEqual({ parameters: prompt });
  });

  it('round-trips multi-line prompts and several chunks', () => {
    let png = addTextChunk(minimalPng(), 'parameters', 'line one\nline two\n\nline four');
    png = addTextChunk(png, 'Software', 'WebDiT');
    expect(listChunks(png).map((c) => c.type)).toEqual(['IHDR', 'tEXt', 'tEXt', 'IDAT', 'IEND']);
    expect(readTextChunks(png)).toEqual({ parameters: 'line one\nline two\n\nline four', Software: 'WebDiT' });
  });

  it('works on a view into a larger buffer', () => {
    const png = minimalPng();
    const big = new Uint8Array(png.length + 10);
    big.set(png, 5);
    const view = big.subarray(5, 5 + png.length);
    expect(readTextChunks(addTextChunk(view, 'k', 'v'))).toEqual({ k: 'v' });
  });

  it('rejects buffers that are not PNGs, truncated files and corrupt text chunks', () => {
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0, 0, 0]);
    expect(() => readTextChunks(jpeg)).toThrow('Not a PNG file: the signature bytes are missing');
    expect(() => addTextChunk(jpeg, 'parameters', 'x')).toThrow('Not a PNG file: the signature bytes are missing');
    expect(() => readTextChunks(new Uint8Array())).toThrow('Not a PNG file');

    const png = addTextChunk(minimalPng(), 'parameters', 'hello');
    expect(() => readTextChunks(png.subarray(0, 40))).toThrow(/Truncated PNG/);
    const corrupt = png.slice();
    corrupt[8 + 25 + 8 + 12] ^= 0xff; // a byte inside the tEXt text
    expect(() => readTextChunks(corrupt)).toThrow(/tEXt chunk .* CRC/);
  });

  it('validates keywords', () => {
    expect(() => addTextChunk(minimalPng(), '', 'x')).toThrow(/keyword/);
    expect(() => addTextChunk(minimalPng(), 'x'.repeat(80), 'x')).toThrow(/keyword/);
    expect(() => addTextChunk(minimalPng(), ' lead', 'x')).toThrow(/keyword/);
    expect(() => addTextChunk(minimalPng(), 'emoji🐱', 'x')).toThrow(/keyword/);
  });
});

describe('formatParameters / parseParameters', () => {
  const params: ResolvedGenerateParams = {
    prompt: 'a red circle',
    negativePrompt: 'blurry',
    numInferenceSteps: 20,
    guidanceScale: 4,
    seed: 123,
    numImagesPerPrompt: 1,
    width: 64,
    height: 64,
    strength: 0.6,
    previewEvery: 5,
    imageToImage: false,
  };
  const base: ParametersInput = { params, modelId: 'webdit-tiny', shift: 1 };
  const withParams = (patch: Partial<ResolvedGenerateParams>, rest: Partial<Omit<ParametersInput, 'params'>> = {}): ParametersInput => ({
    ...base,
    ...rest,
    params: { ...params, ...patch },
  });

  it("writes AUTOMATIC1111's format exactly", () => {
    expect(formatParameters(base)).toBe(
      'a red circle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, CFG scale: 4, Seed: 123, Size: 64x64, Model: webdit-tiny, Shift: 1',
    );
  });

  it('omits an empty negative prompt and prints numbers the JS way', () => {
    expect(formatParameters(withParams({ negativePrompt: '', guidanceScale: 4.5, seed: 4294967295 }, { shift: 3 }))).toBe(
      'a red circle\nSteps: 20, Sampler: Euler, CFG scale: 4.5, Seed: 4294967295, Size: 64x64, Model: webdit-tiny, Shift: 3',
    );
  });

  it("writes each image's own seed and size, and the denoising strength for img2img only", () => {
    // the second image of a batch that started at seed 123
    const second = withParams({ seed: 124, width: 128, height: 96 });
    expect(formatParameters(second)).toContain('Seed: 124, Size: 128x96,');
    const img2img = withParams({ imageToImage: true, strength: 0.75 });
    expect(formatParameters(img2img)).toBe(
      'a red circle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, CFG scale: 4, Seed: 123, Size: 64x64, Model: webdit-tiny, Shift: 1, Denoising strength: 0.75',
    );
    expect(parseParameters(formatParameters(img2img)).denoisingStrength).toBe(0.75);
  });

  it('parses its own output back', () => {
    expect(parseParameters(formatParameters(base))).toEqual({
      prompt: 'a red circle',
      negativePrompt: 'blurry',
      steps: 20,
      cfg: 4,
      seed: 123,
      size: { width: 64, height: 64 },
      model: 'webdit-tiny',
      shift: 1,
      denoisingStrength: null,
    });
  });

  it.each([
    ['multi-line prompt', { prompt: 'first line\nsecond, with comma\n', negativePrompt: '' }, {}],
    ['multi-line negative', { prompt: 'p', negativePrompt: 'ugly\nblurry' }, {}],
    ['empty prompt', { prompt: '', negativePrompt: 'x' }, {}],
    ['unicode', { prompt: '🐱 café 東京', negativePrompt: 'ñ' }, {}],
    ['odd model id', { prompt: 'p', negativePrompt: '' }, { modelId: 'org/model: v2, "beta"' }],
  ])('round-trips a %s', (_, patch, rest) => {
    const input = withParams({ guidanceScale: 7.5, width: 128, height: 96, ...patch }, { shift: 3.5, ...rest });
    const parsed = parseParameters(formatParameters(input));
    expect(parsed).toEqual({
      prompt: input.params.prompt,
      negativePrompt: input.params.negativePrompt,
      steps: input.params.numInferenceSteps,
      cfg: input.params.guidanceScale,
      seed: input.params.seed,
      size: { width: 128, height: 96 },
      model: input.modelId,
      shift: input.shift,
      denoisingStrength: null,
    });
  });

  it('round-trips through a PNG', () => {
    const text = formatParameters(withParams({ prompt: 'ein Hund 🐶\nim Schnee' }));
    const parsed = parseParameters(readTextChunks(addTextChunk(minimalPng(), 'parameters', text)).parameters);
    expect(parsed.prompt).toBe('ein Hund 🐶\nim Schnee');
    expect(parsed.seed).toBe(123);
  });

  it('explains text that is not a parameters block', () => {
    expect(() => parseParameters('just a caption')).toThrow(/Steps: /);
  });
});
