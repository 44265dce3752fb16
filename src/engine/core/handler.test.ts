/** The worker's request handler driven directly in Node, with the real engine on a model folder. */
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine } from './engine';
import { createHandler } from './handler';
import { MemoryStorage } from './storage';
import type { WorkerEvent } from '../protocol';
import { fileFetcher, MODEL_URL, readManifest } from '../testing/fixtures';

type Ev<T extends WorkerEvent['type']> = Extract<WorkerEvent, { type: T }>;

function harness() {
  const events: { ev: WorkerEvent; transfer?: Transferable[] }[] = [];
  const engine = new Engine({ storage: new MemoryStorage(), fetcher: fileFetcher });
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
    return (f[0] as Ev<'error'>).error;
  };
  const progress = (id: string, stage: string) => of(id).filter((e) => e.type === 'progress' && e.stage === stage) as Ev<'progress'>[];
  /** Every request this harness sent got exactly one final event. */
  const oneFinalEach = (ids: string[]) => {
    for (const id of ids) expect(finals(id), id).toHaveLength(1);
  };
  return { events, engine, handle, of, finals, errorOf, progress, hooks, oneFinalEach };
}

const params = { prompt: 'a large red heart in the center on a white background', negativePrompt: '', numInferenceSteps: 3, guidanceScale: 3, seed: 1 };

describe('requests before a model is loaded', () => {
  it('generate answers NotReadyError', async () => {
    const h = harness();
    await h.handle({ type: 'generate', id: 'g', params });
    expect(h.errorOf('g')).toMatchObject({ name: 'NotReadyError' });
    expect(h.errorOf('g').action).toMatch(/Wait for the model/);
  });

  it('a folder without a manifest answers ModelError with what to do', async () => {
    const h = harness();
    await h.handle({ type: 'load', id: 'l', modelUrl: '/nonexistent/', backend: 'wasm' });
    const e = h.errorOf('l');
    expect(e.name).toBe('ModelError');
    expect(e.message).toMatch(/no manifest\.json.*404/);
    expect(e.action).toMatch(/model URL/);
  });

  it('forcing WebGPU where there is none answers BackendUnavailableError', async () => {
    const h = harness();
    await h.handle({ type: 'load', id: 'l', modelUrl: MODEL_URL, backend: 'webgpu' });
    expect(h.errorOf('l')).toMatchObject({ name: 'BackendUnavailableError' });
    expect(h.errorOf('l').action).toMatch(/wasm/i);
  });
});

describe('malformed requests', () => {
  it.each([
    ['not an object', 42, 'invalid', /object/],
    ['no id', { type: 'load', modelUrl: 'x/' }, 'invalid', /"id"/],
    ['unknown type', { type: 'explode', id: 'u' }, 'u', /Unknown request type/],
    ['load without a model URL', { type: 'load', id: 'l1', modelUrl: '' }, 'l1', /modelUrl/],
    ['load with a bad backend', { type: 'load', id: 'l2', modelUrl: 'm/', backend: 'cuda' }, 'l2', /backend/],
    ['generate without params', { type: 'generate', id: 'g1' }, 'g1', /"params"/],
    ['an unknown parameter', { type: 'generate', id: 'g0', params: { ...params, cfg: 7 } }, 'g0', /Unknown parameter.*"cfg"/],
    ['prompt not a string', { type: 'generate', id: 'g2', params: { ...params, prompt: 3 } }, 'g2', /"prompt"/],
    ['prompt over 10,000 characters', { type: 'generate', id: 'g3', params: { ...params, prompt: 'a'.repeat(10_001) } }, 'g3', /10000/],
    ['0 steps', { type: 'generate', id: 'g4', params: { ...params, numInferenceSteps: 0 } }, 'g4', /numInferenceSteps/],
    ['51 steps', { type: 'generate', id: 'g5', params: { ...params, numInferenceSteps: 51 } }, 'g5', /numInferenceSteps/],
    ['fractional steps', { type: 'generate', id: 'g6', params: { ...params, numInferenceSteps: 2.5 } }, 'g6', /numInferenceSteps/],
    ['guidance 21', { type: 'generate', id: 'g7', params: { ...params, guidanceScale: 21 } }, 'g7', /guidanceScale/],
    ['guidance NaN', { type: 'generate', id: 'g8', params: { ...params, guidanceScale: NaN } }, 'g8', /guidanceScale/],
    ['negative seed', { type: 'generate', id: 'g9', params: { ...params, seed: -1 } }, 'g9', /seed/],
    ['seed over uint32', { type: 'generate', id: 'g10', params: { ...params, seed: 2 ** 32 } }, 'g10', /seed/],
    ['9 images', { type: 'generate', id: 'g11', params: { ...params, numImagesPerPrompt: 9 } }, 'g11', /numImagesPerPrompt/],
    ['an image without pixels', { type: 'generate', id: 'g12', params: { ...params, image: { width: 2, height: 2, data: new Uint8ClampedArray(3) } } }, 'g12', /image\.data.*2x2x4/],
    ['strength 1.5', { type: 'generate', id: 'g13', params: { ...params, strength: 1.5 } }, 'g13', /strength/],
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

describe('jobs: queueing and cancelling loads', () => {
  it('a generate sent while a load runs is queued, then runs on the loaded model', async () => {
    const h = harness();
    const load = h.handle({ type: 'load', id: 'load', modelUrl: MODEL_URL, backend: 'wasm' });
    const gen = h.handle({ type: 'generate', id: 'gen', params });
    await Promise.all([load, gen]);
    expect(h.progress('gen', 'queued')).toMatchObject([{ position: 1 }]);
    expect(h.finals('load')).toMatchObject([{ type: 'done', result: { request: 'load' } }]);
    expect(h.finals('gen')).toMatchObject([{ type: 'done', result: { request: 'generate', seeds: [1] } }]);
    // the generate started only after the load had finished
    const order = h.events.map((e) => `${e.ev.id}:${e.ev.type}`);
    const firstWork = h.events.findIndex((e) => e.ev.id === 'gen' && (e.ev.type === 'image' || (e.ev.type === 'progress' && e.ev.stage === 'denoise')));
    expect(order.indexOf('load:done')).toBeGreaterThan(-1);
    expect(order.indexOf('load:done')).toBeLessThan(firstWork);
    h.oneFinalEach(['load', 'gen']);
    await h.engine.dispose();
  });

  it('a running load can be cancelled; the generate queued behind it then finds no model', async () => {
    const h = harness();
    h.hooks.onEvent = (ev) => {
      // cancel as soon as the first byte of the first file arrives, as the UI thread would
      if (ev.id === 'load' && ev.type === 'progress' && ev.stage === 'download') void h.handle({ type: 'cancel', id: 'cancel', targetId: 'load' });
    };
    const load = h.handle({ type: 'load', id: 'load', modelUrl: MODEL_URL, backend: 'wasm' });
    const gen = h.handle({ type: 'generate', id: 'gen', params });
    await Promise.all([load, gen]);
    expect(h.errorOf('load')).toMatchObject({ name: 'CancelledError', message: expect.stringMatching(/^Downloading .* was cancelled\.$/) });
    expect(h.progress('load', 'download').length).toBeLessThan(3);
    expect(h.finals('cancel')).toMatchObject([{ type: 'done', result: { request: 'cancel', cancelled: true } }]);
    expect(h.errorOf('gen')).toMatchObject({ name: 'NotReadyError' });
    expect(h.engine.ready).toBe(false);
    h.oneFinalEach(['load', 'gen', 'cancel']);
  });
});

describe('with the model loaded', () => {
  const h = harness();
  beforeAll(async () => {
    await h.handle({ type: 'load', id: 'load', modelUrl: MODEL_URL, backend: 'auto' });
  });

  it('load reports every file of the folder, the backend, the model limits and one done', () => {
    const downloaded = new Set(h.progress('load', 'download').map((e) => (e as Extract<Ev<'progress'>, { stage: 'download' }>).file));
    expect([...downloaded].sort()).toEqual(Object.keys(readManifest().files).filter((f) => f !== 'model_index.json').sort());
    const backend = h.of('load').find((e) => e.type === 'backend') as Ev<'backend'>;
    expect(backend.info.backend).toBe('wasm'); // Node has no WebGPU: auto falls back and says why
    expect(backend.info.fallbackReason).toMatch(/WebGPU/);
    const done = h.finals('load')[0] as Ev<'done'>;
    if (done.result.request !== 'load') throw new Error('expected a load result');
    const { model } = done.result;
    expect(model.family).toBe('webdit');
    expect(model.id).toBe(readManifest().id);
    expect(model.limits.sizes).toEqual([[model.defaults.width, model.defaults.height]]);
    // the load warmed every graph up before saying done
    const prepares = h.progress('load', 'prepare').map((e) => (e as Extract<Ev<'progress'>, { stage: 'prepare' }>).message);
    expect(prepares.at(-1)).toBe('Warming up');
  });

  it('generate streams steps, previews and one image per seed, transferring the pixels', async () => {
    await h.handle({ type: 'generate', id: 'gen', params: { ...params, numInferenceSteps: 4, numImagesPerPrompt: 2, previewEvery: 2 } });
    const steps = h.progress('gen', 'denoise').map((e) => (e as Extract<Ev<'progress'>, { stage: 'denoise' }>).step);
    expect(steps).toEqual([1, 2, 3, 4]);
    // a preview of each image at step 2 (not at the last step: the image itself follows)
    const previews = h.of('gen').filter((e) => e.type === 'preview') as Ev<'preview'>[];
    expect(previews.map((p) => [p.step, p.index])).toEqual([[2, 0], [2, 1]]);
    const images = h.events.filter((e) => e.ev.id === 'gen' && e.ev.type === 'image');
    expect(images.map((e) => (e.ev as Ev<'image'>).params.seed)).toEqual([1, 2]);
    for (const { ev, transfer } of images) {
      const { image } = ev as Ev<'image'>;
      expect(image.pixels.length).toBe(image.width * image.height * 4);
      expect(transfer).toEqual([image.pixels.buffer]);
    }
    expect(h.finals('gen')).toMatchObject([{ type: 'done', result: { request: 'generate', seeds: [1, 2] } }]);
  });

  it('a size the model cannot make is refused with the sizes it can', async () => {
    await h.handle({ type: 'generate', id: 'big', params: { ...params, width: 512, height: 512 } });
    expect(h.errorOf('big')).toMatchObject({ name: 'BadRequestError', message: expect.stringMatching(/512x512/), action: expect.stringMatching(/\d+x\d+/) });
  });

  it('requests queue behind each other and all finish', async () => {
    const runs = ['q1', 'q2', 'q3'].map((id) => h.handle({ type: 'generate', id, params: { ...params, numInferenceSteps: 2 } }));
    await Promise.all(runs);
    for (const id of ['q1', 'q2', 'q3']) expect(h.finals(id)).toMatchObject([{ type: 'done' }]);
    expect(h.progress('q3', 'queued')).toMatchObject([{ position: 2 }]);
  });

  it('cancel stops a run within one step and the engine keeps working', async () => {
    let cancelled: Promise<void> | null = null;
    h.hooks.onEvent = (ev) => {
      if (ev.id === 'c-run' && ev.type === 'progress' && ev.stage === 'denoise' && !cancelled) {
        cancelled = new Promise((resolve) => setTimeout(() => void h.handle({ type: 'cancel', id: 'c', targetId: 'c-run' }).then(resolve), 0));
      }
    };
    await h.handle({ type: 'generate', id: 'c-run', params: { ...params, numInferenceSteps: 50 } });
    await cancelled;
    h.hooks.onEvent = () => {};
    expect(h.finals('c')).toMatchObject([{ type: 'done', result: { request: 'cancel', cancelled: true } }]);
    const e = h.errorOf('c-run');
    expect(e.name).toBe('CancelledError');
    expect(e.message).toMatch(/at step 1 of 50/);
    expect(h.progress('c-run', 'denoise')).toHaveLength(1);
    await h.handle({ type: 'generate', id: 'after', params });
    expect(h.finals('after')).toMatchObject([{ type: 'done' }]);
  });

  it('cancel of nothing pending answers cancelled: false', async () => {
    await h.handle({ type: 'cancel', id: 'c2', targetId: 'nope' });
    expect(h.finals('c2')).toMatchObject([{ type: 'done', result: { request: 'cancel', cancelled: false } }]);
  });

  it('a failed reload keeps the working model', async () => {
    await h.handle({ type: 'load', id: 'bad-load', modelUrl: '/nonexistent/', backend: 'wasm' });
    expect(h.errorOf('bad-load')).toMatchObject({ name: 'ModelError' });
    await h.handle({ type: 'generate', id: 'still', params });
    expect(h.finals('still')).toMatchObject([{ type: 'done' }]);
  });

  it('every request of this block got exactly one final event', () => {
    h.oneFinalEach(['load', 'gen', 'big', 'q1', 'q2', 'q3', 'c-run', 'c', 'after', 'c2', 'bad-load', 'still']);
    const ids = new Set(h.events.map((e) => e.ev.id));
    expect(ids.size).toBe(12);
  });
});
