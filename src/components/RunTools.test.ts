/**
 * The run tools' markup in Node (server rendering, as App.test.ts): the hooks Playwright relies on
 * and what each panel says for a finished run.
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connectEngine } from '../store/connect';
import { resetStudio, studioStore } from '../store/store';
import { FakeEngine, loadDone } from '../store/testUtils';
import { trajectoryStore } from '../runtools/trajectory';
import { animationStore } from '../runtools/animation';
import { AnimationPanel } from './AnimationPanel';
import { Filmstrip } from './Filmstrip';
import { TimingPanel } from './TimingPanel';

let engine: FakeEngine;
let disconnect: () => void;

beforeEach(() => {
  resetStudio();
  trajectoryStore.setState({ jobId: null, frames: {}, dropped: 0 });
  engine = new FakeEngine();
  disconnect = connectEngine(studioStore, engine);
  vi.spyOn(studioStore, 'getInitialState').mockImplementation(() => studioStore.getState());
  vi.spyOn(trajectoryStore, 'getInitialState').mockImplementation(() => trajectoryStore.getState());
  vi.spyOn(animationStore, 'getInitialState').mockImplementation(() => animationStore.getState());
});

afterEach(() => {
  disconnect();
  vi.restoreAllMocks();
});

const html = (c: () => unknown) => renderToStaticMarkup(createElement(c as never));
const count = (h: string, id: string) => h.split(`data-testid="${id}"`).length - 1;
const img = (fill: number) => ({ width: 4, height: 4, pixels: new Uint8ClampedArray(64).fill(fill) });

function run(stepMs?: number[]) {
  studioStore.getState().loadModel('/m/');
  engine.emit(loadDone(engine.lastId));
  studioStore.getState().setNumInferenceSteps(4);
  studioStore.getState().generate();
  const id = engine.lastId;
  for (const step of [1, 2, 3]) engine.emit({ type: 'preview', id, step, total: 4, index: 0, image: img(step) });
  trajectoryStore.setState({ jobId: id, frames: { 0: [1, 2, 3].map((step) => ({ step, total: 4, image: img(step), final: false })) }, dropped: 0 });
  engine.emit({ type: 'image', id, index: 0, image: img(9), params: { prompt: '', negativePrompt: '', numInferenceSteps: 4, guidanceScale: 2, seed: 42, numImagesPerPrompt: 1, width: 4, height: 4, strength: 0.6, previewEvery: 1, imageToImage: false }, modelId: 'm', shift: 1, timings: { encodeMs: 5, denoiseMs: 40, decodeMs: 3, totalMs: 50, msPerStep: 10, ...(stepMs && { stepMs }) } });
  const t = trajectoryStore.getState();
  trajectoryStore.setState({ frames: { 0: [...t.frames[0], { step: 4, total: 4, image: img(9), final: true }] } });
  engine.emit({ type: 'done', id, result: { request: 'generate', seeds: [42], timings: { encodeMs: 5, denoiseMs: 40, decodeMs: 3, totalMs: 50, msPerStep: 10 } } });
}

describe('run tools markup', () => {
  it('nothing before the first image', () => {
    expect(html(Filmstrip)).toBe('');
    expect(html(TimingPanel)).toBe('');
  });

  it('the filmstrip: N frames, a slider on the final image, a thumb per frame, both saves', () => {
    run([12, 11, 10, 7]);
    const h = html(Filmstrip);
    expect(h).toContain('data-frames="4"');
    expect(count(h, 'filmstrip-thumb')).toBe(4);
    expect(h).toMatch(/data-testid="filmstrip-slider"[^>]*max="3"[^>]*value="3"/);
    expect(h).toContain('Step 4 of 4: the final image');
    expect(count(h, 'filmstrip-save-frame') + count(h, 'filmstrip-save-zip')).toBe(2);
  });

  it('the run report: one bar per step, preview steps marked, totals, the backend', () => {
    run([12, 11, 10, 7]);
    const h = html(TimingPanel);
    expect(h).toContain('data-steps="4"');
    expect(count(h, 'timing-bar')).toBe(4);
    expect([...h.matchAll(/data-preview="(\w+)"/g)].map((m) => m[1])).toEqual(['true', 'true', 'true', 'false']);
    expect([...h.matchAll(/data-ms="([\d.]+)"/g)].map((m) => Number(m[1]))).toEqual([12, 11, 10, 7]);
    expect(h).toMatch(/data-testid="timing-encode">5\.0 ms/);
    expect(h).toContain('data-testid="device-report" data-backend="webgpu"');
    expect(h).toContain('SwiftShader');
  });

  it('the animation panel: kind, seed B, frames up to the model batch limit, start enabled once loaded', () => {
    run();
    const h = html(AnimationPanel);
    for (const id of ['animation-kind-seed', 'animation-kind-prompt', 'animation-to-seed', 'animation-frames', 'animation-start', 'animation-cancel']) expect(count(h, id), id).toBe(1);
    expect(h).toMatch(/data-testid="animation-frames" min="2" max="4"/);
    expect(h).toMatch(/<button[^>]*data-testid="animation-start"(?![^>]*disabled)/);
    expect(count(h, 'animation-player')).toBe(0);
  });
});
