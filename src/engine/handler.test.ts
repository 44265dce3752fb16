/** The worker's request handler driven directly in Node, with the real engine on the shipped model. */
import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from './cache';
import { Engine } from './engine';
import { createHandler } from './handler';
import type { WorkerEvent } from './protocol';
import { fileFetcher, MANIFEST_PATH } from './testing/fixtures';

function harness() {
  const events: { ev: WorkerEvent; transfer?: Transferable[] }[] = [];
  const engine = new Engine({ cache: new MemoryCache(), fetcher: fileFetcher });
  const hooks = { onEvent: (_ev: WorkerEvent) => {} };
  const handle = createHandler(engine, (ev, transfer) => {
    events.push({ ev, transfer });
    hooks.onEvent(ev);
  });
  const of = (id: string) => events.filter((e) => e.ev.id === id).map((e) => e.ev);
  const finals = (id: string) => of(id).filter((e) => e.type === 'done' || e.type === 'error');
  const errorOf = (id: string) => {
    const f = finals(id);
    expect(f).toHaveLength(1);
    expect(f[0].type).toBe('error');
    return (f[0] as Extract<WorkerEvent, { type: 'error' }>).error;
  };
  return { events, engine, handle, of, finals, errorOf, hooks };
}

const params = { prompt: 'a large red heart in the center on a white background', negativePrompt: '', numInferenceSteps: 3, guidanceScale: 3, seed: 1 };

describe('requests before a model is loaded', () => {
  it('generate answers NotReadyError', async () => {
    const h = harness();
    await h.handle({ type: 'generate', id: 'g', params });
    expect(h.errorOf('g')).toMatchObject({ name: 'NotReadyError' });
    expect(h.errorOf('g').action).toMatch(/Wait for the model/);
  });

  it('a missing manifest answers ModelError with what to do', async () => {
    const h = harness();
    await h.handle({ type: 'load', id: 'l', modelUrl: '/nonexistent/manifest.json', backend: 'wasm' });
    const e = h.errorOf('l');
    expect(e.name).toBe('ModelError');
    expect(e.message).toMatch(/404/);
    expect(e.action).toMatch(/model URL/);
  });

  it('forcing WebGPU where there is none answers BackendUnavailableError', async () => {
    const h = harness();
    await h.handle({ type: 'load', id: 'l', modelUrl: MANIFEST_PATH, backend: 'webgpu' });
    expect(h.errorOf('l')).toMatchObject({ name: 'BackendUnavailableError' });
    expect(h.errorOf('l').action).toMatch(/wasm/i);
  });
});

describe('malformed requests', () => {
  it.each([
    ['not an object', 42, 'invalid', /object/],
    ['no id', { type: 'load', modelUrl: 'x.json' }, 'invalid', /"id"/],
    ['unknown type', { type: 'explode', id: 'u' }, 'u', /Unknown request type/],
    ['load without a manifest URL', { type: 'load', id: 'l1', modelUrl: 'model.onnx' }, 'l1', /manifest/],
    ['load with a bad backend', { type: 'load', id: 'l2', modelUrl: 'm.json', backend: 'cuda' }, 'l2', /backend/],
    ['generate without params', { type: 'generate', id: 'g1' }, 'g1', /"params"/],
    ['prompt not a string', { type: 'generate', id: 'g2', params: { ...params, prompt: 3 } }, 'g2', /"prompt"/],
    ['prompt over 10,000 characters', { type: 'generate', id: 'g3', params: { ...params, prompt: 'a'.repeat(10_001) } }, 'g3', /10000/],
    ['0 steps', { type: 'generate', id: 'g4', params: { ...params, numInferenceSteps: 0 } }, 'g4', /numInferenceSteps/],
    ['51 steps', { type: 'generate', id: 'g5', params: { ...params, numInferenceSteps: 51 } }, 'g5', /numInferenceSteps/],
    ['fractional steps', { type: 'generate', id: 'g6', params: { ...params, numInferenceSteps: 2.5 } }, 'g6', /numInferenceSteps/],
    ['guidance 13', { type: 'generate', id: 'g7', params: { ...params, guidanceScale: 13 } }, 'g7', /guidanceScale/],
    ['guidance NaN', { type: 'generate', id: 'g8', params: { ...params, guidanceScale: NaN } }, 'g8', /guidanceScale/],
    ['negative seed', { type: 'generate', id: 'g9', params: { ...params, seed: -1 } }, 'g9', /seed/],
    ['seed over uint32', { type: 'generate', id: 'g10', params: { ...params, seed: 2 ** 32 } }, 'g10', /seed/],
    ['cancel without target', { type: 'cancel', id: 'c1' }, 'c1', /targetId/],
  ])('%s -> BadRequestError', async (_name, req, id, pattern) => {
    const h = harness();
    await h.handle(req);
    const e = h.errorOf(id);
    expect(e.name).toBe('BadRequestError');
    expect(e.message).toMatch(pattern);
    expect(e.action.length).toBeGreaterThan(0);
  });
});

describe('with the model loaded', () => {
  const h = harness();
  beforeAll(async () => {
    await h.handle({ type: 'load', id: 'load', modelUrl: MANIFEST_PATH, backend: 'auto' });
  });

  it('load reports every file, the backend, and one done', () => {
    const evs = h.of('load');
    const manifestFiles = Object.keys(JSON.parse(fs.readFileSync(MANIFEST_PATH, 'utf8')).files);
    const downloaded = new Set(evs.filter((e) => e.type === 'download').map((e) => (e as Extract<WorkerEvent, { type: 'download' }>).file));
    expect([...downloaded].sort()).toEqual([...manifestFiles].sort());
    const backend = evs.find((e) => e.type === 'backend') as Extract<WorkerEvent, { type: 'backend' }>;
    expect(backend.info.backend).toBe('wasm'); // Node has no WebGPU: auto falls back and says why
    expect(backend.info.fallbackReason).toMatch(/WebGPU/);
    const f = h.finals('load');
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ type: 'done', result: { request: 'load', model: { family: 'webdit' } } });
  });

  it('generate streams every step and transfers the image', async () => {
    await h.handle({ type: 'generate', id: 'gen', params });
    const steps = h.of('gen').filter((e) => e.type === 'step').map((e) => (e as Extract<WorkerEvent, { type: 'step' }>).step);
    expect(steps).toEqual([1, 2, 3]);
    const f = h.finals('gen');
    expect(f).toHaveLength(1);
    const done = f[0] as Extract<WorkerEvent, { type: 'done' }>;
    if (done.result.request !== 'generate') throw new Error('expected a generate result');
    const { image } = done.result;
    expect(image.pixels.length).toBe(image.width * image.height * 4);
    const entry = h.events.find((e) => e.ev === done)!;
    expect(entry.transfer).toEqual([image.pixels.buffer]);
  });

  it('a second request while one runs gets BusyError; the first still finishes', async () => {
    const first = h.handle({ type: 'generate', id: 'long', params: { ...params, numInferenceSteps: 8 } });
    await h.handle({ type: 'generate', id: 'second', params });
    await h.handle({ type: 'load', id: 'reload', modelUrl: MANIFEST_PATH, backend: 'wasm' });
    await first;
    expect(h.errorOf('second')).toMatchObject({ name: 'BusyError' });
    expect(h.errorOf('reload')).toMatchObject({ name: 'BusyError' });
    expect(h.finals('long')).toMatchObject([{ type: 'done' }]);
  });

  it('cancel stops a run within one step and the engine keeps working', async () => {
    // the cancel arrives as a separate message after the first step event, as from the UI thread
    let cancelled: Promise<void> | null = null;
    h.hooks.onEvent = (ev) => {
      if (ev.id === 'c-run' && ev.type === 'step' && !cancelled) {
        cancelled = new Promise((resolve) => setTimeout(() => void h.handle({ type: 'cancel', id: 'c', targetId: 'c-run' }).then(resolve), 0));
      }
    };
    await h.handle({ type: 'generate', id: 'c-run', params: { ...params, numInferenceSteps: 50 } });
    await cancelled;
    h.hooks.onEvent = () => {};
    expect(h.finals('c')).toMatchObject([{ type: 'done', result: { request: 'cancel', cancelled: true } }]);
    const e = h.errorOf('c-run');
    expect(e.name).toBe('CancelledError');
    expect(e.message).toMatch(/after step 1 of 50/);
    expect(h.of('c-run').filter((ev) => ev.type === 'step')).toHaveLength(1);
    await h.handle({ type: 'generate', id: 'after', params });
    expect(h.finals('after')).toMatchObject([{ type: 'done' }]);
  });

  it('cancel of nothing running answers cancelled: false', async () => {
    await h.handle({ type: 'cancel', id: 'c2', targetId: 'nope' });
    expect(h.finals('c2')).toMatchObject([{ type: 'done', result: { request: 'cancel', cancelled: false } }]);
  });

  it('every request got exactly one final event', () => {
    const ids = new Set(h.events.map((e) => e.ev.id));
    for (const id of ids) expect(h.finals(id), id).toHaveLength(1);
  });
});
