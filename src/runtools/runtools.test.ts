/**
 * The run tools' logic without a browser: the trajectory a run leaves, the preview interval bound
 * by its cost, "record trajectory", the animation request built from the form, the animated WebP
 * container (read back by Python's Pillow when it can read WebP, else by our own parser), and the
 * run report's preview steps.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { connectEngine } from '../store/connect';
import { costBoundEvery, MAX_PREVIEW_SHARE, PREVIEW_EVERY, previewEvery } from '../store/params';
import { createStudioStore, type StudioStore } from '../store/store';
import { FakeEngine, loadDone, modelInfo, pixels, timings } from '../store/testUtils';
import { previewStepIndices } from '../components/TimingPanel';
import { animationRequest, createAnimationStore } from './animation';
import { connectTrajectory, createTrajectoryStore, MAX_TRAJECTORY_BYTES, type TrajectoryStore } from './trajectory';
import { animatedWebp, webpChunks } from './webp';

let engine: FakeEngine;
let studio: StudioStore;
let trajectory: TrajectoryStore;

function ready() {
  studio.getState().loadModel('/m/');
  engine.emit(loadDone(engine.lastId));
}

beforeEach(() => {
  engine = new FakeEngine();
  studio = createStudioStore('auto');
  trajectory = createTrajectoryStore();
  connectEngine(studio, engine);
  connectTrajectory(engine, () => studio.getState().generation.requestId, trajectory);
});

const img = (fill: number) => ({ width: 4, height: 4, pixels: new Uint8ClampedArray(64).fill(fill) });

describe('trajectory', () => {
  it("keeps the followed run's previews per image, then its final image, and starts over with the next run", () => {
    ready();
    studio.getState().setNumImagesPerPrompt(2);
    studio.getState().generate();
    const id = engine.lastId;
    engine.emit({ type: 'preview', id, step: 5, total: 24, index: 0, image: img(1) });
    engine.emit({ type: 'preview', id, step: 5, total: 24, index: 1, image: img(2) });
    engine.emit({ type: 'preview', id, step: 10, total: 24, index: 0, image: img(3) });
    engine.emit({ type: 'preview', id: 'someone-else', step: 15, total: 24, index: 0, image: img(9) });
    engine.finish(id);
    const t = trajectory.getState();
    expect(t.jobId).toBe(id);
    expect(t.frames[0].map((f) => [f.step, f.final, f.image.pixels[0]])).toEqual([[5, false, 1], [10, false, 3], [24, true, pixels(0)[0]]]);
    expect(t.frames[1].map((f) => [f.step, f.final])).toEqual([[5, false], [24, true]]);
    // the final frame is exactly the image the studio shows
    expect(t.frames[0].at(-1)!.image.pixels).toEqual(studio.getState().images.find((r) => r.jobId === id && r.index === 0)!.image.pixels);

    studio.getState().generate();
    engine.emit({ type: 'preview', id: engine.lastId, step: 5, total: 24, index: 0, image: img(7) });
    expect(trajectory.getState().jobId).toBe(engine.lastId);
    expect(trajectory.getState().frames[0]).toHaveLength(1);
  });

  it('stops keeping estimates past its memory bound, and says how many it dropped', () => {
    ready();
    studio.getState().generate();
    const id = engine.lastId;
    const big = Math.ceil(MAX_TRAJECTORY_BYTES / 3) + 1;
    const image = { width: 1, height: big / 4, pixels: new Uint8ClampedArray(big) };
    for (let step = 1; step <= 4; step++) engine.emit({ type: 'preview', id, step, total: 24, index: 0, image });
    expect(trajectory.getState().frames[0]).toHaveLength(2);
    expect(trajectory.getState().dropped).toBe(2);
  });
});

describe('preview interval', () => {
  it('keeps previews under 10% of the steps from the last run: k = ceil(decode / (0.1 x median step))', () => {
    expect(MAX_PREVIEW_SHARE).toBe(0.1);
    // a decode costs 0.6 of a step: every 6 steps (0.6 / 6 = 10%)
    expect(costBoundEvery({ decodeMs: 60, msPerStep: 999, stepMs: [100, 100, 160, 100, 100] })).toBe(6);
    expect(costBoundEvery({ decodeMs: 61, msPerStep: 100 })).toBe(7);
    expect(costBoundEvery({ decodeMs: 5, msPerStep: 100 })).toBe(1);
    expect(costBoundEvery({ decodeMs: 1e6, msPerStep: 1 })).toBe(50);
    expect(costBoundEvery({ decodeMs: 5, msPerStep: 0 })).toBeNull();
    // the last run previewed every 2 steps: its preview steps took 80 ms more than its plain 100 ms steps,
    // more than its final decode (50 ms): that counts -> ceil(80 / 10) = 8
    expect(costBoundEvery({ decodeMs: 50, msPerStep: 0, stepMs: [100, 180, 100, 180, 100, 100], previewEvery: 2 })).toBe(8);
    // ... and where the preview steps cost less than the decode, the decode counts
    expect(costBoundEvery({ decodeMs: 50, msPerStep: 0, stepMs: [100, 120, 100, 120, 100], previewEvery: 2 })).toBe(5);
  });

  it('uses PREVIEW_EVERY before any run, at least one preview per run, every step when recording, none when off', () => {
    expect(previewEvery(true, 20)).toBe(PREVIEW_EVERY);
    expect(previewEvery(true, 20, { last: { decodeMs: 60, msPerStep: 100 } })).toBe(6);
    expect(previewEvery(true, 12, { last: { decodeMs: 500, msPerStep: 100 } })).toBe(11);
    expect(previewEvery(true, 5)).toBe(0);
    expect(previewEvery(false, 20)).toBe(0);
    expect(previewEvery(false, 5, { record: true })).toBe(1);
  });

  it('the studio sends every step with "record trajectory", else k from the last run it shows', () => {
    ready();
    studio.getState().setNumInferenceSteps(20);
    studio.getState().generate();
    engine.finish();
    studio.getState().setRecordTrajectory(true);
    studio.getState().generate();
    engine.finish();
    studio.getState().setRecordTrajectory(false);
    studio.getState().generate();
    engine.finish();
    const sent = engine.calls.filter((c) => c.type === 'generate').map((c) => (c.type === 'generate' ? c.params.previewEvery : null));
    // the fake engine's runs: decode 20 ms, 45 ms per step -> ceil(20 / 4.5) = 5
    expect(timings.decodeMs / (0.1 * timings.msPerStep)).toBeCloseTo(4.44, 2);
    expect(sent).toEqual([PREVIEW_EVERY, 1, 5]);
  });
});

describe('animation request', () => {
  it("is the studio form's settings plus the animation, with the seed field as seed A", () => {
    ready();
    studio.getState().setPrompt('a cat');
    studio.getState().setSeedText('7');
    const a = createAnimationStore();
    a.getState().setToSeedText('8');
    a.getState().setFrames(3);
    expect(animationRequest(studio.getState(), a.getState())).toEqual({
      params: {
        prompt: 'a cat', negativePrompt: modelInfo.defaults.negativePrompt, seed: 7, numImagesPerPrompt: 1, previewEvery: 0,
        numInferenceSteps: modelInfo.defaults.numInferenceSteps, guidanceScale: modelInfo.defaults.guidanceScale, width: 4, height: 4,
        animation: { kind: 'seed', to: 8, frames: 3 },
      },
    });
    a.getState().setKind('prompt');
    a.getState().setToPrompt('a dog');
    expect(animationRequest(studio.getState(), a.getState())).toMatchObject({ params: { seed: 7, animation: { kind: 'prompt', to: 'a dog', frames: 3 } } });
  });

  it.each([
    ['an empty seed B', (a: ReturnType<typeof createAnimationStore>) => a.getState().setToSeedText(''), /Seed B: Seed is empty/],
    ['seed B = seed A', (a: ReturnType<typeof createAnimationStore>) => a.getState().setToSeedText('7'), /Seed B is seed A \(7\)/],
    ['prompt B = the prompt', (a: ReturnType<typeof createAnimationStore>) => (a.getState().setKind('prompt'), a.getState().setToPrompt('a cat')), /Prompt B is the prompt/],
  ])('refuses %s with what to do', (_, set, error) => {
    ready();
    studio.getState().setPrompt('a cat');
    studio.getState().setSeedText('7');
    const a = createAnimationStore();
    set(a);
    const r = animationRequest(studio.getState(), a.getState());
    expect('error' in r && r.error).toMatch(error);
  });

  it('runs as one engine job and keeps its frames in order; frames clamp to 2..8', async () => {
    ready();
    studio.getState().setSeedText('7');
    const a = createAnimationStore();
    a.getState().attach(engine);
    a.getState().setFrames(99);
    expect(a.getState().frames).toBe(8);
    a.getState().setFrames(3);
    a.getState().setToSeedText('9');
    a.getState().start(studio.getState());
    expect(a.getState().status).toBe('running');
    const id = engine.lastId;
    expect(studio.getState().generation.requestId).toBeNull(); // the studio does not follow it: no history entries
    const params = engine.paramsOf(id);
    for (const index of [2, 0, 1]) {
      engine.emit({ type: 'image', id, index, image: img(index), params: { ...(await import('../store/testUtils')).resolved(params), animation: { kind: 'seed', to: 9, frames: 3 } }, modelId: 'm', shift: 1, timings });
    }
    engine.emit({ type: 'done', id, result: { request: 'generate', seeds: [7, 7, 7], timings } });
    await Promise.resolve();
    await Promise.resolve();
    expect(a.getState().status).toBe('idle');
    expect(a.getState().result!.frames.map((f) => f.pixels[0])).toEqual([0, 1, 2]);
    expect(studio.getState().images).toHaveLength(0);
  });
});

/** A still WebP as a browser writes one: RIFF WEBP + one VP8L chunk (payload arbitrary here). */
function still(payload: number[]): Uint8Array {
  const odd = payload.length & 1;
  const size = 4 + 8 + payload.length + odd;
  const b = new Uint8Array(8 + size);
  const dv = new DataView(b.buffer);
  b.set([...'RIFF'].map((c) => c.charCodeAt(0)), 0);
  dv.setUint32(4, size, true);
  b.set([...'WEBPVP8L'].map((c) => c.charCodeAt(0)), 8);
  dv.setUint32(16, payload.length, true);
  b.set(payload, 20);
  return b;
}

describe('animated WebP container', () => {
  it('is RIFF WEBP with VP8X (animation flag, canvas size), ANIM (loop forever) and one ANMF per frame with its duration', () => {
    const frames = [still([1, 2, 3]), still([4, 5, 6, 7])];
    const out = animatedWebp(frames, 256, 128, 1000 / 6);
    const dv = new DataView(out.buffer);
    expect(String.fromCharCode(...out.subarray(0, 4))).toBe('RIFF');
    expect(dv.getUint32(4, true)).toBe(out.length - 8);
    const chunks = webpChunks(out);
    expect(chunks.map((c) => c.id)).toEqual(['VP8X', 'ANIM', 'ANMF', 'ANMF']);
    const vp8x = chunks[0].bytes;
    expect(vp8x[8] & 0x02).toBe(0x02);
    const u24 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
    expect([u24(vp8x, 12) + 1, u24(vp8x, 15) + 1]).toEqual([256, 128]);
    expect(new DataView(chunks[1].bytes.buffer, chunks[1].bytes.byteOffset).getUint16(12, true)).toBe(0);
    const anmf = chunks[2].bytes;
    expect([u24(anmf, 14) + 1, u24(anmf, 17) + 1, u24(anmf, 20)]).toEqual([256, 128, 167]);
    // the frame's own VP8L chunk, with its pad byte, follows the 16-byte frame header
    expect(Array.from(anmf.subarray(24, 24 + 12))).toEqual([...'VP8L'].map((c) => c.charCodeAt(0)).concat([3, 0, 0, 0, 1, 2, 3, 0]));
  });

  it('refuses what is not a WebP and frames without an image chunk', () => {
    expect(() => animatedWebp([new Uint8Array([1, 2, 3])], 4, 4, 100)).toThrow(/not a WebP file/);
    expect(() => animatedWebp([], 4, 4, 100)).toThrow(/at least one frame/);
  });

  it('Pillow reads a real animated WebP made from its own still frames: N frames, the durations', () => {
    const py = '/usr/bin/python3';
    const probe = `from PIL import features; print(features.check('webp_anim') and features.check('webp'))`;
    let ok = false;
    try {
      ok = execFileSync(py, ['-c', probe], { encoding: 'utf8' }).trim() === 'True';
    } catch {
      ok = false;
    }
    expect(ok, 'needs python3-pil with WebP (apt-get install python3-pil)').toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webp-'));
    // three lossless stills of different colours from Pillow, muxed by us, read back by Pillow
    execFileSync(py, ['-c', `from PIL import Image\nfor i, c in enumerate([(255,0,0),(0,255,0),(0,0,255)]): Image.new('RGB', (8, 8), c).save('${dir}/f%d.webp' % i, lossless=True)`]);
    const frames = [0, 1, 2].map((i) => new Uint8Array(fs.readFileSync(path.join(dir, `f${i}.webp`))));
    fs.writeFileSync(path.join(dir, 'anim.webp'), animatedWebp(frames, 8, 8, 125));
    const read = execFileSync(py, ['-c', `from PIL import Image\nim = Image.open('${dir}/anim.webp')\nout = []\nfor i in range(im.n_frames):\n    im.seek(i); out.append([im.convert('RGB').getpixel((3, 3)), im.info['duration']])\nprint(im.n_frames, out)`], { encoding: 'utf8' });
    expect(read.trim()).toBe('3 [[(255, 0, 0), 125], [(0, 255, 0), 125], [(0, 0, 255), 125]]');
  });
});

describe('run report', () => {
  it('marks the steps that decoded a preview (after steps k, 2k, ... but not the last)', () => {
    expect([...previewStepIndices(20, 5, 20)]).toEqual([4, 9, 14]);
    expect([...previewStepIndices(4, 1, 4)]).toEqual([0, 1, 2]);
    expect([...previewStepIndices(20, 0, 20)]).toEqual([]);
    // image-to-image ran the last 8 of 20 steps: previews after its 5th
    expect([...previewStepIndices(20, 5, 8)]).toEqual([4]);
  });
});
