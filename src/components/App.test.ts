/**
 * Renders the page to HTML in Node (no DOM library is installed) to check the contract that
 * Playwright relies on: test ids, data-state, enabled/disabled buttons, labels.
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../App';
import { connectEngine } from '../store/connect';
import { resetStudio, studioStore } from '../store/store';
import { FakeEngine, generateResult, loadDone } from '../store/testUtils';

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

function ready(): void {
  studioStore.getState().loadModel('/m.json');
  engine.emit(loadDone(engine.lastId));
}

describe('App', () => {
  it('renders every test hook while loading', () => {
    studioStore.getState().loadModel('/m.json');
    engine.emit({ type: 'download', id: engine.lastId, file: 'transformer.onnx', loaded: 420, total: 1000 });
    const doc = render();
    expect(doc.html).toMatch(/^<div class="app" data-state="loading">/);
    for (const id of ['prompt', 'negative-prompt', 'steps', 'steps-value', 'guidance', 'guidance-value', 'seed', 'dice', 'random-seed', 'generate', 'cancel', 'progress', 'result-canvas', 'download', 'backend-select', 'load-progress', 'status']) {
      expect(doc.byTestId(id), id).not.toBeNull();
    }
    expect(doc.byTestId('prompt')!.tag).toBe('textarea');
    expect(doc.byTestId('steps')!.attrs).toMatchObject({ type: 'range', min: '1', max: '50' });
    expect(doc.byTestId('guidance')!.attrs).toMatchObject({ type: 'range', min: '1', max: '12', step: '0.5' });
    expect(doc.byTestId('seed')!.attrs).toMatchObject({ type: 'number' });
    expect(doc.byTestId('random-seed')!.attrs).toMatchObject({ type: 'checkbox' });
    expect(doc.byTestId('generate')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('cancel')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('download')!.attrs).toHaveProperty('disabled');
    expect(text(doc.byTestId('status')!.inner)).toBe('Loading model… 42%');
    expect(doc.byTestId('status')!.attrs['aria-live']).toBe('polite');
    expect(text(doc.byTestId('load-progress')!.inner)).toContain('transformer.onnx');
    expect(doc.byTestId('backend-badge')).toBeNull(); // not known until the engine says
    expect(doc.byTestId('backend-select')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('error-banner')).toBeNull();
    expect(doc.html).toContain('Runs entirely in your browser. Nothing is uploaded.');
  });

  it('is ready with the model defaults and the backend badge', () => {
    ready();
    const doc = render();
    expect(doc.html).toMatch(/data-state="ready"/);
    expect(doc.byTestId('load-progress')).toBeNull();
    expect(doc.byTestId('generate')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('cancel')!.attrs).toHaveProperty('disabled');
    expect(text(doc.byTestId('steps-value')!.inner)).toBe('24');
    expect(text(doc.byTestId('guidance-value')!.inner)).toBe('4.5');
    const badge = doc.byTestId('backend-badge')!;
    expect(badge.attrs['data-backend']).toBe('webgpu');
    expect(text(badge.inner)).toBe('WebGPU');
    expect(badge.attrs.title).toContain('SwiftShader');
    expect(doc.byTestId('result-canvas')!.attrs).toMatchObject({ width: '64', height: '64' });
    expect(text(doc.byTestId('status')!.inner)).toBe('Ready');
  });

  it('shows a run in progress', () => {
    ready();
    studioStore.getState().setNumInferenceSteps(20);
    studioStore.getState().generate();
    engine.emit({ type: 'step', id: engine.lastId, step: 3, total: 20, msPerStep: 100 });
    const doc = render();
    expect(doc.html).toMatch(/data-state="running"/);
    expect(doc.byTestId('generate')!.attrs).toHaveProperty('disabled');
    expect(doc.byTestId('cancel')!.attrs).not.toHaveProperty('disabled');
    expect(doc.byTestId('backend-select')!.attrs).toHaveProperty('disabled');
    expect(text(doc.byTestId('progress')!.inner)).toContain('Step 3/20');
    expect(text(doc.byTestId('progress')!.inner)).toContain('~1.7 s left');
    expect(text(doc.byTestId('status')!.inner)).toBe('Generating 20 steps…');
  });

  it('shows the result size, timings and an enabled download', () => {
    ready();
    studioStore.getState().generate();
    const call = engine.calls[1];
    if (call.type !== 'generate') throw new Error('expected a generate call');
    engine.emit({ type: 'done', id: engine.lastId, result: generateResult(call.params) });
    const doc = render();
    expect(doc.byTestId('result-canvas')!.attrs).toMatchObject({ width: '2', height: '2' });
    expect(doc.byTestId('download')!.attrs).not.toHaveProperty('disabled');
    expect(doc.html).toContain('1.23 s · 45 ms/step');
    expect(text(doc.byTestId('status')!.inner)).toBe('Done in 1.2 s');
  });

  it('shows an error banner as an alert with what to do', () => {
    ready();
    studioStore.getState().generate();
    engine.emit({ type: 'error', id: engine.lastId, error: { name: 'OutOfMemoryError', message: 'Out of GPU memory.', action: 'Switch to WASM.' } });
    const doc = render();
    expect(doc.html).toMatch(/data-state="error"/);
    const banner = doc.byTestId('error-banner')!;
    expect(banner.attrs.role).toBe('alert');
    expect(text(banner.inner)).toContain('Out of GPU memory.');
    expect(text(banner.inner)).toContain('Switch to WASM.');
    expect(banner.inner).toContain('aria-label="Dismiss error"');
  });

  it('labels every form control', () => {
    ready();
    const { html } = render();
    for (const m of html.matchAll(/<(input|textarea|select)\b[^>]*>/g)) {
      const tag = m[0];
      const id = /\sid="([^"]+)"/.exec(tag)?.[1];
      const labelled = /aria-label=/.test(tag) || (id !== undefined && html.includes(`for="${id}"`)) || /<label[^>]*>\s*$/.test(html.slice(0, m.index));
      expect(labelled, tag).toBe(true);
    }
  });
});
