/**
 * Renders the page to HTML in Node (no DOM library is installed) to check the contract that
 * Playwright relies on: test ids, data-state, enabled/disabled buttons, labels.
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../App';
import { GENERATE_FIELDS } from '../engine/schema';
import { STRENGTH_STEP } from '../store/params';
import { connectEngine } from '../store/connect';
import { resetStudio, studioStore } from '../store/store';
import { FakeEngine, loadDone, modelInfo, pixels } from '../store/testUtils';

let engine: FakeEngine;
let disconnect: () => void;

beforeEach(() => {
  resetStudio();
  engine = new FakeEngine();
  disconnect = connectEngine(studioStore, engine);
  // Server rendering reads getInitialState(); point it at the live state so each case renders what it set up.
  vi.spyOn(studioStore, 'getInitialState').mockImplementation(() => studioStore.getState());
});

afterEach(() => {
  disconnect();
  vi.restoreAllMocks();
});

function render(): Document {
  const html = renderToStaticMarkup(createElement(App));
  return parse(html);
}

// A tiny query helper over the markup: enough to find elements by data-testid and read attributes.
interface Document {
  html: string;
  byTestId(id: string): { tag: string; attrs: Record<string, string>; inner: string } | null;
}

function parse(html: string): Document {
  return {
    html,
    byTestId(id) {
      const open = new RegExp(`<(\\w+)([^>]*\\sdata-testid="${id}"[^>]*)>`).exec(html);
      if (!open) return null;
      const attrs: Record<string, string> = {};
      for (const m of open[2].matchAll(/([\w-]+)(?:="([^"]*)")?/g)) attrs[m[1]] = m[2] ?? '';
      // Walk to the matching close tag, counting nested elements of the same name.
      const start = open.index + open[0].length;
      const tags = new RegExp(`<(/?)${open[1]}\\b[^>]*>`, 'g');
      tags.lastIndex = start;
      let depth = 1;
      let end = start;
      for (let m = tags.exec(html); m && depth > 0; m = tags.exec(html)) {
        depth += m[1] ? -1 : 1;
        end = m.index;
      }
      return { tag: open[1], attrs, inner: depth === 0 ? html.slice(start, end) : '' };
    },
  };
}

const text = (inner: string) => inner.replace(/<[^>]+>/g, '').replace(/&amp;/g, '&');
const countTestId = (html: string, id: string) => html.split(`data-testid="${id}"`).length - 1;

function ready(): void {
  studioStore.getState().loadModel('/m/');
  engine.emit(loadDone(engine.lastId));
}

describe('App', () => {
  it('renders every test hook while loading, with the schema ranges until the model says its own', () => {
    studioStore.getState().loadModel('/m/');
    engine.emit({ type: 'progress', stage: 'download', id: engine.lastId, file: 'transformer/model.onnx', loaded: 420, total: 1000 });
    const doc = render();
    expect(doc.html).toMatch(/^<div class="app" data-state="loading">/);
    for (const id of ['prompt', 'negative-prompt', 'steps', 'steps-value', 'guidance', 'guidance-value', 'images', 'images-value', 'seed', 'dice', 'random-seed', 'live-preview', 'generate', 'cancel', 'progress', 'result-canvas', 'download', 'backend-select', 'load-progress', 'status']) {
      expect(doc.byTestId(id), id).not.toBeNull();
    }
    const { numInferenceSteps: steps, guidanceScale: cfg, numImagesPerPrompt: images, prompt } = GENERATE_FIELDS;
    expect(doc.byTestId('prompt')!.tag).toBe('textarea');
    expect(doc.byTestId('prompt')!.attrs.maxLength).toBe(String(prompt.maxLength));
    expect(doc.byTestId('steps')!.attrs).toMatchObject({ type: 'range', min: String(steps.min), max: String(steps.max) });
    expect(doc.byTestId('guidance')!.attrs).toMatchObject({ type: 'range', min: String(cfg.min), max: String(cfg.max), step: String(cfg.step) });
    expect(doc.byTestId('images')!.attrs).toMatchObject({ type: 'range', min: '1', max: String(images.max), value: '1' });
    // the model's defaults are not known yet
    expect(text(doc.byTestId('steps-value')!.inner)).toBe('auto');
    expect(doc.byTestId('seed')!.attrs).toMatchObject({ type: 'text', inputMode: 'numeric' });
    expect(doc.byTestId('random-seed')!.attrs).toMatchObject({ type: 'checkbox' });
    expect(doc.byTestId('live-preview')!.attrs).toHaveProperty('checked');
    // a run can be sent now: the engine queues it behind the load
    expect(doc.byTestId('generate')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('cancel')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('download')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('result-canvas')!.attrs).toMatchObject({ width: '1', height: '1', 'data-kind': 'empty' });
    expect(text(doc.byTestId('status')!.inner)).toBe('Loading model… downloading transformer/model.onnx, 42% of 1.0 kB');
    expect(doc.byTestId('status')!.attrs['aria-live']).toBe('polite');
    expect(text(doc.byTestId('load-progress')!.inner)).toContain('transformer/model.onnx');
    expect(text(doc.byTestId('load-progress')!.inner)).toContain('420 B of 1.0 kB');
    expect(doc.byTestId('backend-badge')).toBeNull(); // not known until the engine says
    // switching now replaces the load
    expect(doc.byTestId('backend-select')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('error-banner')).toBeNull();
    expect(doc.html).toContain('Runs entirely in your browser. Nothing is uploaded.');
  });

  it("is ready with the model's defaults, limits, size and the backend badge", () => {
    ready();
    const doc = render();
    expect(doc.html).toMatch(/data-state="ready"/);
    expect(doc.byTestId('load-progress')).toBeNull();
    expect(doc.byTestId('generate')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('cancel')!.attrs).toHaveProperty('disabled');
    expect(text(doc.byTestId('steps-value')!.inner)).toBe('24');
    expect(text(doc.byTestId('guidance-value')!.inner)).toBe('4.5');
    expect(doc.byTestId('negative-prompt')!.attrs.value).toBe('blurry');
    expect(doc.byTestId('steps')!.attrs).toMatchObject({ max: String(modelInfo.limits.numInferenceSteps.max), value: '24' });
    expect(doc.byTestId('images')!.attrs).toMatchObject({ max: String(modelInfo.limits.numImagesPerPrompt.max) });
    const badge = doc.byTestId('backend-badge')!;
    expect(badge.attrs['data-backend']).toBe('webgpu');
    expect(text(badge.inner)).toBe('WebGPU');
    expect(badge.attrs.title).toContain('SwiftShader');
    expect(doc.byTestId('result-canvas')!.attrs).toMatchObject({ width: String(modelInfo.defaults.width), height: String(modelInfo.defaults.height) });
    expect(text(doc.byTestId('status')!.inner)).toBe('Ready');
  });

  it('shows a run pressed during the load as waiting for the model, and cancellable', () => {
    studioStore.getState().loadModel('/m/');
    studioStore.getState().generate();
    const doc = render();
    expect(doc.html).toMatch(/data-state="running"/);
    expect(text(doc.byTestId('generate')!.inner)).toBe('Waiting…');
    expect(doc.byTestId('cancel')!.attrs).not.toHaveProperty('disabled');
    expect(text(doc.byTestId('status')!.inner)).toBe('Will start when the model is ready');
    expect(text(doc.byTestId('progress')!.inner)).toContain('waiting for the model');
  });

  it('shows a run in progress with its preview', () => {
    ready();
    studioStore.getState().setNumInferenceSteps(20);
    studioStore.getState().generate();
    engine.emit({ type: 'progress', stage: 'denoise', id: engine.lastId, step: 3, total: 20, msPerStep: 100 });
    engine.emit({ type: 'preview', id: engine.lastId, step: 3, total: 20, index: 0, image: { width: 4, height: 4, pixels: pixels(0) } });
    const doc = render();
    expect(doc.html).toMatch(/data-state="running"/);
    expect(doc.byTestId('generate')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('cancel')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('backend-select')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('result-canvas')!.attrs['data-kind']).toBe('preview');
    expect(text(doc.byTestId('progress')!.inner)).toContain('Step 3/20');
    expect(text(doc.byTestId('progress')!.inner)).toContain('~1.7 s left');
    expect(text(doc.byTestId('status')!.inner)).toBe('Generating 20 steps…');
  });

  it('shows the image, its seed, timings and an enabled download; no thumbnails for one image', () => {
    ready();
    studioStore.getState().setSeed(77);
    studioStore.getState().generate();
    engine.finish();
    const doc = render();
    expect(doc.byTestId('result-canvas')!.attrs).toMatchObject({ width: '4', height: '4', 'data-kind': 'image' });
    expect(doc.byTestId('download')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('download')!.attrs.title).toContain('webdit-77.png');
    expect(text(doc.byTestId('timings')!.inner)).toBe('1.23 s · 45 ms/step · seed 77');
    expect(doc.byTestId('thumbnails')).toBeNull();
    expect(text(doc.byTestId('status')!.inner)).toBe('Done in 1.2 s');
  });

  it('shows a batch as thumbnails, the first one large until another is picked', () => {
    ready();
    studioStore.getState().setSeed(10);
    studioStore.getState().setNumImagesPerPrompt(3);
    studioStore.getState().generate();
    const id = engine.lastId;
    engine.finish(id);
    let doc = render();
    expect(countTestId(doc.html, 'thumbnail')).toBe(3);
    expect([...doc.html.matchAll(/data-seed="(\d+)" aria-pressed="(true|false)"/g)].map((m) => [m[1], m[2]])).toEqual([
      ['10', 'true'],
      ['11', 'false'],
      ['12', 'false'],
    ]);
    expect(text(doc.byTestId('timings')!.inner)).toContain('seed 10');
    studioStore.getState().showImage(id, 1);
    doc = render();
    expect(text(doc.byTestId('timings')!.inner)).toContain('seed 11');
    expect(doc.html).toContain('data-seed="11" aria-pressed="true"');
    expect(doc.byTestId('download')!.attrs.title).toContain('webdit-11.png');
  });

  it('shows an error banner as an alert with what to do', () => {
    ready();
    studioStore.getState().generate();
    engine.emit({ type: 'error', id: engine.lastId, error: { name: 'RuntimeError', message: 'Out of GPU memory.', action: 'Switch to WASM.' } });
    const doc = render();
    expect(doc.html).toMatch(/data-state="error"/);
    const banner = doc.byTestId('error-banner')!;
    expect(banner.attrs.role).toBe('alert');
    expect(banner.attrs['data-error']).toBe('RuntimeError');
    expect(text(banner.inner)).toContain('Out of GPU memory.');
    expect(text(banner.inner)).toContain('Switch to WASM.');
    expect(banner.inner).toContain('aria-label="Dismiss error"');
  });

  it('disables the init image with the reason when the model has no VAE encoder', () => {
    ready(); // modelInfo.imageToImage is false
    studioStore.getState().generate();
    engine.finish();
    const doc = render();
    expect(doc.byTestId('init-image-field')!.attrs).toHaveProperty('disabled');
    expect(text(doc.byTestId('init-image-hint')!.inner)).toBe('WebDiT tiny has no VAE encoder, so it cannot start from an image.');
    expect(doc.byTestId('use-as-init')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('use-as-init')!.attrs.title).toBe('WebDiT tiny has no VAE encoder, so it cannot start from an image.');
  });

  it('offers image-to-image when the model can: strength from the model, the init image with its source and a remove button', () => {
    studioStore.getState().loadModel('/m/');
    engine.emit(loadDone(engine.lastId, { ...modelInfo, imageToImage: true }));
    let doc = render();
    expect(doc.byTestId('init-image-field')!.attrs).not.toHaveProperty('disabled');
    const { min, max } = GENERATE_FIELDS.strength;
    expect(doc.byTestId('strength')!.attrs).toMatchObject({ type: 'range', min: String(min), max: String(max), step: String(STRENGTH_STEP), value: String(modelInfo.defaults.strength) });
    expect(doc.byTestId('init-image')).toBeNull();
    expect(doc.byTestId('init-image-clear')).toBeNull();
    expect(doc.byTestId('use-as-init')!.attrs).toHaveProperty('disabled'); // no image yet
    studioStore.getState().generate();
    engine.finish();
    studioStore.getState().setInitImage({ width: 4, height: 4, data: pixels(0) }, 'result, seed 42');
    doc = render();
    expect(doc.byTestId('use-as-init')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('init-image')!.attrs).toMatchObject({ width: '4', height: '4' });
    expect(text(doc.byTestId('init-image-source')!.inner)).toBe('result, seed 42');
    expect(doc.byTestId('init-image-clear')).not.toBeNull();
    expect(doc.byTestId('init-image-file')!.attrs).toMatchObject({ type: 'file', accept: 'image/*' });
  });

  it('shows the size select only for a model with several sizes', () => {
    ready();
    expect(render().byTestId('size')).toBeNull();
    studioStore.getState().loadModel('/m/');
    engine.emit(loadDone(engine.lastId, { ...modelInfo, limits: { ...modelInfo.limits, sizes: [[4, 4], [8, 4]] } }));
    studioStore.getState().setSize(8, 4);
    const doc = render();
    expect(doc.byTestId('size')!.tag).toBe('select');
    expect(doc.byTestId('size')!.inner).toContain('value="8x4" selected=""');
  });

  it("has a Copy link button and shows what a link's values could not give", () => {
    studioStore.getState().reportFormNotice('Ignored from the link (not a valid value): steps="abc".');
    const doc = render();
    expect(text(doc.byTestId('copy-link')!.inner)).toBe('Copy link');
    expect(doc.byTestId('share-link')).toBeNull(); // only when the clipboard refused
    expect(doc.byTestId('form-notice')!.attrs.role).toBe('status');
    expect(text(doc.byTestId('form-notice')!.inner)).toContain('steps=&quot;abc&quot;');
  });

  it('labels every form control', () => {
    ready();
    studioStore.getState().setNumImagesPerPrompt(2);
    studioStore.getState().generate();
    engine.finish();
    const { html } = render();
    expect(countTestId(html, 'thumbnail')).toBe(2);
    for (const m of html.matchAll(/<(input|textarea|select|button)\b[^>]*>/g)) {
      const tag = m[0];
      const id = /\sid="([^"]+)"/.exec(tag)?.[1];
      const after = html.slice(m.index + tag.length, m.index + tag.length + 200);
      const labelled =
        /aria-label=/.test(tag) ||
        (id !== undefined && html.includes(`for="${id}"`)) ||
        /<label[^>]*>\s*$/.test(html.slice(0, m.index)) ||
        (m[1] === 'button' && /^[^<]*\w/.test(after)); // a button's own text
      expect(labelled, tag).toBe(true);
    }
  });
});
