import { describe, expect, it } from 'vitest';
import { GENERATE_FIELDS } from '../engine/schema';
import { readyData } from './testUtils';
import { formValuesOf } from './persist';
import { ignoredNotice, parseShareLink, shareUrl, withoutShareParams } from './share';
import { createStudioStore } from './store';
import { initialData, type StudioData } from './state';

describe('parseShareLink', () => {
  it('reads every setting of a link', () => {
    const link = parseShareLink('?prompt=a+red+star&negative=blurry&seed=42&steps=20&cfg=5&width=64&height=64&backend=wasm&run=1');
    expect(link).toEqual({
      values: { prompt: 'a red star', negativePrompt: 'blurry', seed: 42, numInferenceSteps: 20, guidanceScale: 5, size: [64, 64], backendPreference: 'wasm' },
      ignored: [],
      run: true,
    });
  });

  it('keeps an empty prompt (an unconditional sample) and reads nothing that is absent', () => {
    expect(parseShareLink('?prompt=&model=webdit/sd3-tiny')).toEqual({ values: { prompt: '' }, ignored: [], run: false });
  });

  it('ignores garbage and names it; out-of-range numbers are kept for the setters to clamp', () => {
    const link = parseShareLink('?steps=abc&cfg=&seed=0x10&width=64&backend=cuda&prompt=ok&run=yes');
    expect(link.values).toEqual({ prompt: 'ok' });
    expect(link.ignored).toEqual(['seed="0x10"', 'steps="abc"', 'cfg=""', 'width without height', 'backend="cuda"']);
    expect(parseShareLink('?width=abc&height=64').ignored).toEqual(['width="abc"']);
    expect(link.run).toBe(false);
    expect(ignoredNotice(link.ignored)).toBe(
      'Ignored from the link (not a valid value): seed="0x10", steps="abc", cfg="", width without height, backend="cuda". The form keeps its own values for them.',
    );
    expect(ignoredNotice([])).toBeNull();
    expect(parseShareLink('?steps=999&cfg=-3&seed=7').values).toEqual({ numInferenceSteps: 999, guidanceScale: -3, seed: 7 });
  });

  it('reads the seed exactly as the seed field does: what the field refuses is named, never rewritten', () => {
    for (const raw of ['1e3', '-1', '12.7', '4294967296', '+5', '', 'abc']) {
      const link = parseShareLink(`?seed=${encodeURIComponent(raw)}`);
      expect(link.values, raw).toEqual({});
      expect(link.ignored, raw).toEqual([`seed=${JSON.stringify(raw)}`]);
    }
    expect(ignoredNotice(parseShareLink('?seed=1e3').ignored)).toBe('Ignored from the link (not a valid value): seed="1e3". The form keeps its own values for them.');
    for (const [raw, seed] of [['0', 0], ['4294967295', 4294967295], ['0042', 42], [' 7 ', 7]] as const) {
      expect(parseShareLink(`?seed=${encodeURIComponent(raw)}`).values, raw).toEqual({ seed });
    }
  });

  it('goes through the setters: out-of-range values are clamped like typed ones', () => {
    const store = createStudioStore('auto');
    store.getState().applyForm(parseShareLink('?steps=999&cfg=4.3&width=3&height=99999').values);
    expect(store.getState()).toMatchObject({
      numInferenceSteps: GENERATE_FIELDS.numInferenceSteps.max,
      guidanceScale: 4.5,
      size: [GENERATE_FIELDS.width.min, GENERATE_FIELDS.height.max],
    });
  });
});

describe('shareUrl', () => {
  const form = (patch: Partial<StudioData>) => ({ ...readyData(), ...patch });

  it("writes the resolved settings, so a default shows as the model's value", () => {
    const url = new URL(shareUrl(form({ prompt: 'a cat, "quoted" & more', seed: 7 }), 'http://localhost:5173/studio/'));
    expect(url.pathname).toBe('/studio/');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      prompt: 'a cat, "quoted" & more',
      negative: 'blurry',
      seed: '7',
      steps: '24',
      cfg: '4.5',
      width: '4',
      height: '4',
    });
  });

  it('keeps the model, hub, revision and backend, and drops run and stale settings', () => {
    const href = 'http://localhost:5173/?model=webdit/sd3-tiny&hub=http://localhost:9000&revision=v2&run=1&steps=3&backend=webgpu';
    const url = new URL(shareUrl(form({ backendPreference: 'wasm', numInferenceSteps: 12 }), href));
    expect(url.searchParams.get('model')).toBe('webdit/sd3-tiny');
    expect(url.searchParams.get('hub')).toBe('http://localhost:9000');
    expect(url.searchParams.get('revision')).toBe('v2');
    expect(url.searchParams.get('backend')).toBe('wasm');
    expect(url.searchParams.get('steps')).toBe('12');
    expect(url.searchParams.has('run')).toBe(false);
    expect(new URL(shareUrl(form({}), href)).searchParams.has('backend')).toBe(false);
  });

  it('round-trips: opening the link fills a fresh form with the same settings', () => {
    const s = form({ prompt: 'a small red star at the top left', negativePrompt: '', seed: 4294967295, numInferenceSteps: 6, guidanceScale: 1 });
    const fresh = createStudioStore('auto');
    fresh.getState().applyForm(parseShareLink(new URL(shareUrl(s, 'http://localhost/')).search).values);
    expect(formValuesOf(fresh.getState())).toMatchObject({ prompt: s.prompt, negativePrompt: '', seed: 4294967295, numInferenceSteps: 6, guidanceScale: 1 });
  });

  it('before a model is loaded, leaves out what only the model knows', () => {
    const url = new URL(shareUrl(initialData(), 'http://localhost/'));
    expect([...url.searchParams.keys()]).toEqual(['prompt', 'negative', 'seed']);
  });
});

describe('withoutShareParams', () => {
  it('takes the form out of the address bar and leaves the page as it is', () => {
    expect(withoutShareParams('http://localhost/?backend=wasm&prompt=x&seed=1&run=1&model=a/b#top')).toBe('http://localhost/?backend=wasm&model=a%2Fb#top');
    expect(withoutShareParams('http://localhost/')).toBe('http://localhost/');
    // nothing to take out: the address is left exactly as typed
    expect(withoutShareParams('http://localhost/?model=a/b')).toBe('http://localhost/?model=a/b');
  });
});
