/**
 * Restore from a PNG: which files carry settings, what exactly could not be read, and how the
 * settings of WebDiT's and AUTOMATIC1111's texts (scripts/a1111_infotext.py's golden file) land in
 * the form: valid ones applied through the setters, out-of-range ones refused by name.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import type { ModelInfo } from './engine/protocol';
import { addTextChunk, crc32, formatParameters, parseInfotext, type Infotext } from './png';
import { planRestore, readPngSettings, restoreSummary } from './restore';
import { selectGuidanceScale, selectNegativePrompt, selectNumInferenceSteps, selectSeedError, selectSize } from './store/selectors';
import { initialData, type StudioData } from './store/state';
import { resetStudio, studioStore } from './store/store';
import { modelInfo } from './store/testUtils';

interface Golden {
  a1111: { name: string; text: string; a1111: Record<string, string>; webdit: Infotext }[];
  hostile: { name: string; input: { prompt: string; negativePrompt: string; numInferenceSteps: number; guidanceScale: number; seed: number; width: number; height: number; modelId: string; shift: number }; text: string }[];
}
const golden = JSON.parse(fs.readFileSync(path.resolve('src/png-infotext.golden.json'), 'utf8')) as Golden;
const a1111 = (name: string) => golden.a1111.find((c) => c.name === name)!;

/** The embedded model's facts (public/models/webdit-tiny): 64x64 only, steps 1-50, CFG 1-12, shift 2. */
const tiny: ModelInfo = {
  ...modelInfo,
  id: 'webdit-tiny',
  name: 'WebDiT tiny',
  defaults: { ...modelInfo.defaults, numInferenceSteps: 20, guidanceScale: 5, negativePrompt: '', width: 64, height: 64 },
  limits: { numInferenceSteps: { min: 1, max: 50 }, guidanceScale: { min: 1, max: 12 }, sizes: [[64, 64]], numImagesPerPrompt: { min: 1, max: 8 } },
  scheduler: { shift: 2, numTrainTimesteps: 1000 },
};

function readyWith(info: ModelInfo): StudioData {
  const s = initialData();
  return { ...s, model: { ...s.model, status: 'ready', requestId: 'load-0', url: '/m/', info, backend: { backend: 'wasm', threads: 1 }, loadMs: 1 } };
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A real 2x2 RGBA PNG with these extra chunks after IHDR. */
function png(...extra: Buffer[]): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const raw = Buffer.alloc(2 * (1 + 8), 128);
  raw[0] = raw[9] = 0;
  return new Uint8Array(
    Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...extra, chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', new Uint8Array())]),
  );
}
const text = (keyword: string, value: string) => chunk('tEXt', Buffer.from(`${keyword}\0${value}`, 'latin1'));

describe('readPngSettings', () => {
  it("reads WebDiT's and A1111's parameters text", async () => {
    const c = a1111('typical');
    const found = await readPngSettings(addTextChunk(png(), 'parameters', c.text), 'a1111.png', 'image/png');
    expect(found).toEqual({ kind: 'settings', infotext: c.webdit });
  });

  it('inflates a compressed (zTXt or iTXt) parameters text', async () => {
    const c = a1111('tiny');
    const z = chunk('zTXt', Buffer.concat([Buffer.from('parameters\0\0', 'latin1'), zlib.deflateSync(Buffer.from(c.text, 'latin1'))]));
    expect(await readPngSettings(png(z), 'z.png')).toEqual({ kind: 'settings', infotext: c.webdit });
    const i = chunk('iTXt', Buffer.concat([Buffer.from('parameters\0\x01\0\0\0', 'latin1'), zlib.deflateSync(Buffer.from(c.text, 'utf8'))]));
    expect(await readPngSettings(png(i), 'i.png')).toEqual({ kind: 'settings', infotext: c.webdit });
  });

  it('a picture without settings is a plain picture, and says so', async () => {
    expect(await readPngSettings(png(), 'plain.png')).toEqual({ kind: 'none', reason: 'plain.png carries no generation settings (no "parameters" text)' });
    expect(await readPngSettings(png(text('Software', 'GIMP')), 'gimp.png')).toEqual({
      kind: 'none',
      reason: 'gimp.png carries no generation settings (no "parameters" text; its text chunks are "Software")',
    });
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);
    expect(await readPngSettings(jpeg, 'cat.jpg', 'image/jpeg')).toEqual({
      kind: 'none',
      reason: 'cat.jpg is not a PNG (image/jpeg), so it carries no settings: WebDiT and AUTOMATIC1111 write them into PNGs',
    });
  });

  it('says exactly what could not be read', async () => {
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);
    expect(await readPngSettings(jpeg, 'fake.png', 'image/png')).toEqual({
      kind: 'unreadable',
      reason: 'fake.png is not a PNG file inside (its PNG signature bytes are missing), so its settings cannot be read',
    });
    // a broken CRC in the parameters chunk
    const good = addTextChunk(png(), 'parameters', a1111('tiny').text);
    const bad = good.slice();
    bad[33 + 8 + 20] ^= 0x01; // a byte of the text, right after IHDR (8 signature + 25 IHDR bytes)
    expect(await readPngSettings(bad, 'bad.png')).toEqual({ kind: 'unreadable', reason: 'The metadata of bad.png could not be read: Corrupt PNG: tEXt chunk at byte 33 fails its CRC check' });
    // a parameters text without a settings line
    expect(await readPngSettings(addTextChunk(png(), 'parameters', 'just a caption'), 'caption.png')).toMatchObject({
      kind: 'unreadable',
      reason: expect.stringMatching(/^The "parameters" text of caption\.png could not be read: its last line holds no settings/),
    });
    // ComfyUI's node graph
    expect(await readPngSettings(png(text('prompt', '{"3":{}}'), text('workflow', '{}')), 'comfy.png')).toEqual({
      kind: 'unreadable',
      reason: 'comfy.png carries ComfyUI\'s "prompt", "workflow" text (a node graph), not the "parameters" text WebDiT reads settings from',
    });
    // a compressed text that does not inflate
    const z = chunk('zTXt', Buffer.from('parameters\0\0not zlib at all', 'latin1'));
    expect(await readPngSettings(png(z), 'z.png')).toMatchObject({ kind: 'unreadable', reason: expect.stringMatching(/^The compressed "parameters" text \(zTXt at byte 33\) of z\.png could not be inflated/) });
    // truncated
    expect(await readPngSettings(good.subarray(0, 60), 'cut.png')).toMatchObject({ kind: 'unreadable', reason: expect.stringMatching(/^The metadata of cut\.png could not be read: Truncated PNG/) });
  });
});

describe('planRestore', () => {
  it("fills the whole form from an A1111 text that fits the model, and names what it does not use", () => {
    const c = a1111('tiny');
    const plan = planRestore(c.webdit, { ...readyWith(tiny), randomizeSeed: true, numImagesPerPrompt: 3 });
    expect(plan.values).toEqual({
      prompt: c.a1111.Prompt,
      negativePrompt: c.a1111['Negative prompt'],
      numInferenceSteps: Number(c.a1111.Steps),
      guidanceScale: Number(c.a1111['CFG scale']),
      size: [Number(c.a1111['Size-1']), Number(c.a1111['Size-2'])],
      seed: Number(c.a1111.Seed),
      randomizeSeed: false,
      numImagesPerPrompt: 1,
    });
    expect(plan.refused).toEqual([]);
    expect(plan.notes).toEqual([
      'It was made with the model "v1-5-pruned-emaonly"; WebDiT tiny is loaded, so these settings make a different image.',
      'Sampler "Euler a" is not used: WebDiT always samples with Euler (flow matching).',
      'Not used: Model hash.',
    ]);
    expect(restoreSummary(plan, 'a.png')).toBe('Restored from a.png: prompt, negative prompt, steps 3, CFG 3, size 64×64, seed 5, "New seed each time" off, images 1.');
  });

  it('refuses each out-of-range value by name and applies the rest', () => {
    const c = a1111('out of range for the tiny model');
    const plan = planRestore(c.webdit, readyWith(tiny));
    expect(plan.values).toEqual({ prompt: c.a1111.Prompt, negativePrompt: '', seed: Number(c.a1111.Seed) });
    expect(plan.refused).toEqual(['Steps 150: outside 1–50 for WebDiT tiny', 'CFG scale 30: outside 1–12 for WebDiT tiny', 'Size 512×768: WebDiT tiny makes 64×64']);
    expect(restoreSummary(plan, 'big.png')).toBe(
      'Restored from big.png: prompt, negative prompt (empty), seed 12345. Not restored (the form keeps its own values): Steps 150: outside 1–50 for WebDiT tiny; CFG scale 30: outside 1–12 for WebDiT tiny; Size 512×768: WebDiT tiny makes 64×64.',
    );
  });

  it('refuses values the form would have to change: off-step CFG, a non-integer or non-decimal number, a bad seed', () => {
    const info = parseInfotext('p\nSteps: 2.5, CFG scale: 7.3, Seed: 1e20, Size: 64x64, Denoising strength: 0x1');
    const plan = planRestore(info, readyWith(tiny));
    expect(plan.refused).toEqual([
      'Steps "2.5": not a whole number',
      "CFG scale 7.3: not a multiple of 0.5, the guidance slider's step",
      'Seed "1e20" is not a whole number from 0 to 4294967295 (digits only)',
      'Denoising strength "0x1": not a number from 0 to 1',
    ]);
    expect(plan.values).toEqual({ prompt: 'p', negativePrompt: '', size: [64, 64] });
  });

  it('joins a multi-line negative prompt (its field is one line) and says so', () => {
    const c = a1111('multi-line negative');
    const plan = planRestore(c.webdit, readyWith(tiny));
    expect(plan.values.negativePrompt).toBe(c.a1111['Negative prompt'].replace(/\n/g, ' '));
    expect(plan.notes).toContain("The negative prompt's 2 lines were joined with spaces: its field holds one line.");
  });

  it('before a model is loaded, sizes are checked against the schema', () => {
    const plan = planRestore(a1111('typical').webdit, initialData());
    expect(plan.values.size).toEqual([512, 512]);
    expect(plan.values.numInferenceSteps).toBe(20);
    expect(plan.notes).toEqual(['Sampler "Euler a" is not used: WebDiT always samples with Euler (flow matching).', 'Not used: Schedule type, Model hash, Version.']);
  });

  it("a WebDiT PNG's own text with a hostile prompt restores exactly, with nothing to note", () => {
    const c = golden.hostile.find((h) => h.name === 'e2e')!;
    const plan = planRestore(parseInfotext(c.text), readyWith(tiny));
    expect(plan.values).toEqual({
      prompt: c.input.prompt.replace('\u0007', ''),
      negativePrompt: c.input.negativePrompt,
      numInferenceSteps: c.input.numInferenceSteps,
      guidanceScale: c.input.guidanceScale,
      size: [c.input.width, c.input.height],
      seed: c.input.seed,
    });
    expect(plan.refused).toEqual([]);
    expect(plan.notes).toEqual([]);
  });

  it('notes a shift and a strength that the form cannot make the same by itself', () => {
    const params = { prompt: 'x', negativePrompt: '', numInferenceSteps: 4, guidanceScale: 2, seed: 9, numImagesPerPrompt: 1, width: 64, height: 64, strength: 0.35, previewEvery: 0, imageToImage: true };
    const plan = planRestore(parseInfotext(formatParameters({ params, modelId: 'webdit-tiny', shift: 3 })), readyWith(tiny));
    expect(plan.values.strength).toBe(0.35);
    expect(plan.notes).toEqual([
      'It was made from an init image, which a PNG does not carry: choose the same picture to make it again.',
      'It was sampled with shift 3; WebDiT tiny samples with shift 2.',
    ]);
  });
});

describe('applying a plan', () => {
  beforeEach(() => resetStudio());

  it('lands in the store exactly, through the setters', () => {
    const c = a1111('tiny');
    studioStore.setState(readyWith(tiny));
    studioStore.getState().setSeedText('garbage');
    const plan = planRestore(c.webdit, studioStore.getState());
    studioStore.getState().applyForm(plan.values);
    const s = studioStore.getState();
    expect(s.prompt).toBe(c.a1111.Prompt);
    expect(selectNegativePrompt(s)).toBe(c.a1111['Negative prompt']);
    expect(selectNumInferenceSteps(s)).toBe(Number(c.a1111.Steps));
    expect(selectGuidanceScale(s)).toBe(Number(c.a1111['CFG scale']));
    expect(selectSize(s)).toEqual([64, 64]);
    expect([s.seed, s.seedText, selectSeedError(s)]).toEqual([Number(c.a1111.Seed), c.a1111.Seed, null]);
  });
});
