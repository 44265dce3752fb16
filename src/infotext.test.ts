/**
 * The PNG `parameters` text against scripts/a1111_infotext.py's golden file: AUTOMATIC1111's own
 * texts read the way A1111 reads them, and hostile prompts (forged negative prompts and settings,
 * control characters) are written exactly as the spec says, cannot fool A1111, and come back
 * through our reader and a real PNG exactly as they were typed (after cleaning).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ResolvedGenerateParams } from './engine/protocol';
import { addTextChunk, formatParameters, parseInfotext, parseParameters, readTextChunks, type Infotext } from './png';
import { cleanText } from './text';

interface HostileInput {
  prompt: string;
  negativePrompt: string;
  numInferenceSteps: number;
  guidanceScale: number;
  seed: number;
  width: number;
  height: number;
  modelId: string;
  shift: number;
  imageToImage: boolean;
  strength: number;
}

interface Golden {
  a1111: { name: string; text: string; a1111: Record<string, string>; webdit: Infotext }[];
  hostile: { name: string; input: HostileInput; text: string; a1111: Record<string, string>; webdit: Infotext }[];
}

const golden = JSON.parse(fs.readFileSync(path.resolve('src/png-infotext.golden.json'), 'utf8')) as Golden;

function parametersInput(c: HostileInput) {
  const params: ResolvedGenerateParams = {
    prompt: c.prompt,
    negativePrompt: c.negativePrompt,
    numInferenceSteps: c.numInferenceSteps,
    guidanceScale: c.guidanceScale,
    seed: c.seed,
    numImagesPerPrompt: 1,
    width: c.width,
    height: c.height,
    strength: c.strength,
    previewEvery: 0,
    imageToImage: c.imageToImage,
  };
  return { params, modelId: c.modelId, shift: c.shift };
}

/** A real 1x1 PNG (grey), written by hand. */
const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg==',
  'base64',
);

/** The text of the PNG's first tEXt/iTXt chunk, as stored (decoded here, not by src/png.ts). */
function storedText(png: Uint8Array): string {
  const buf = Buffer.from(png);
  for (let pos = 8; pos < buf.length; ) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + length);
    const keywordEnd = data.indexOf(0);
    // tEXt: keyword NUL latin-1 text; iTXt: keyword NUL flag method language NUL translated NUL UTF-8 text
    if (type === 'tEXt') return data.subarray(keywordEnd + 1).toString('latin1');
    if (type === 'iTXt') {
      const languageEnd = data.indexOf(0, keywordEnd + 3);
      return data.subarray(data.indexOf(0, languageEnd + 1) + 1).toString('utf8');
    }
    pos += 12 + length;
  }
  throw new Error('no text chunk');
}

describe('AUTOMATIC1111 infotexts (written by A1111 rules in Python)', () => {
  it('has cases', () => expect(golden.a1111.length).toBeGreaterThanOrEqual(5));

  it.each(golden.a1111.map((c) => [c.name, c] as const))('reads "%s" as A1111 does', (_, c) => {
    expect(parseInfotext(c.text)).toEqual(c.webdit);
    expect(c.webdit.prompt).toBe(c.a1111.Prompt);
    expect(c.webdit.negativePrompt).toBe(c.a1111['Negative prompt']);
    const parsed = parseParameters(c.text);
    expect(parsed.steps).toBe(Number(c.a1111.Steps));
    expect(parsed.cfg).toBe(Number(c.a1111['CFG scale']));
    expect(parsed.seed).toBe(Number(c.a1111.Seed));
    expect(parsed.size).toEqual({ width: Number(c.a1111['Size-1']), height: Number(c.a1111['Size-2']) });
    expect(parsed.model).toBe(c.a1111.Model ?? '');
  });
});

describe('hostile prompts', () => {
  it('has cases', () => expect(golden.hostile.length).toBeGreaterThanOrEqual(15));

  it.each(golden.hostile.map((c) => [c.name, c] as const))('%s: written to spec, not forged, read back exactly', (_, c) => {
    const text = formatParameters(parametersInput(c.input));
    expect(text).toBe(c.text);
    // what A1111 reads from it has the real settings (the script checked them; they are the input's)
    expect(Number(c.a1111.Seed)).toBe(c.input.seed);
    expect(Number(c.a1111.Steps)).toBe(c.input.numInferenceSteps);
    expect(c.a1111['Negative prompt']).not.toContain('dog');
    // our reader undoes the escape
    expect(parseInfotext(text)).toEqual(c.webdit);
    const parsed = parseParameters(text);
    expect(parsed.prompt).toBe(cleanText(c.input.prompt));
    expect(parsed.negativePrompt).toBe(cleanText(c.input.negativePrompt));
    expect(parsed.model).toBe(cleanText(c.input.modelId));
    expect([parsed.seed, parsed.steps, parsed.cfg]).toEqual([c.input.seed, c.input.numInferenceSteps, c.input.guidanceScale]);
    expect(parsed.denoisingStrength).toBe(c.input.imageToImage ? c.input.strength : null);

    // through a real PNG: the chunk holds no control character but \n and \t
    const png = addTextChunk(new Uint8Array(PNG_1X1), 'parameters', text);
    expect(readTextChunks(png).parameters).toBe(text);
    expect(storedText(png)).toBe(text);
    expect(storedText(png)).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(parseParameters(readTextChunks(png).parameters).prompt).toBe(cleanText(c.input.prompt));
  });

  it('the fault table case (2f) is what A1111 would have misread before the escape', () => {
    const c = golden.hostile.find((h) => h.name.startsWith('fault table 2f'))!;
    expect(c.a1111['Negative prompt']).toBe('');
    expect(c.a1111.Prompt).toContain('\\Negative prompt: dog');
    // the escape only adds one backslash to that line
    expect(c.text.split('\n')[1]).toBe('\\Negative prompt: dog');
  });
});

describe('parseInfotext refuses what it cannot read', () => {
  it('needs a settings line of at least 3 fields, like A1111', () => {
    expect(() => parseInfotext('just a caption')).toThrow(/last line holds no settings/);
    expect(() => parseInfotext('a cat\nSteps: 20, Seed: 1')).toThrow(/last line holds no settings/);
    expect(parseInfotext('a cat\nSteps: 20, Seed: 1, Size: 8x8').fields).toEqual({ Steps: '20', Seed: '1', Size: '8x8' });
  });

  it('bounds the text before a pattern runs over it', () => {
    expect(() => parseInfotext('x'.repeat(40_001))).toThrow(/40001 characters long/);
    expect(() => parseInfotext(`p\n${'a'.repeat(10_001)}`)).toThrow(/last line is 10001 characters long/);
    // a long run of word characters without a colon stays fast (the pattern is quadratic over it)
    const start = performance.now();
    expect(() => parseInfotext(`p\n${'a'.repeat(10_000)}`)).toThrow(/no settings/);
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('keeps a quoted value that is not JSON as written, as A1111 does', () => {
    expect(parseInfotext('p\nSteps: 1, Seed: 2, Note: "a\\q"').fields.Note).toBe('"a\\q"');
  });
});
