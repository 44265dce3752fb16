/**
 * The engine (worker side of ImageEngine): model folders -> verified files -> a family's
 * LoadedModel -> images. Jobs run one at a time through the JobQueue.
 */
import { detectFamily, FAMILIES } from '../families';
import { badRequest, CancelledError, deviceLostError, EngineError, modelError, notReady } from '../errors';
import type { BackendInfo, GeneratedImage, GenerateResult, ImageEngine, Job, JobListener, LoadOptions, LoadResult, ModelInfo, StorageReport } from '../protocol';
import { parseGenerateParams, type GenerateParams, type GenerateRequestParams, type ResolvedGenerateParams } from '../schema';
import { type FamilyContext, type LoadedModel, type ModelFamily } from './family';
import { browserLocks, checkFileSize, FileStore, LARGE_FILE_BYTES, type Fetcher, type Locks } from './files';
import { componentFiles, openFolder, readComponentJson, readComponentText, type ModelFolder } from './folder';
import { JobQueue } from './jobs';
import { defaultFetcher } from './localFolder';
import { planLoad, usedFiles } from './preflight';
import { externalDataPaths } from './onnxExternal';
import { img2imgStart, runPipeline } from './pipeline';
import { createRunner, selectBackend, wasmThreads, watchWebgpuDevice, webgpuDeviceInUse } from './sessions';
import { deviceReport } from './deviceReport';
import { defaultStorage, type ModelStorage } from './storage';
import { TextTokenizer } from './tokenizer';

export interface EngineOptions {
  storage?: ModelStorage;
  fetcher?: Fetcher;
  families?: readonly ModelFamily[];
  /** Free storage in bytes, or null when the browser cannot say (navigator.storage.estimate). */
  storageFree?: () => Promise<number | null>;
  /** Web Locks, so tabs and workers download a file once between them (navigator.locks by default). */
  locks?: Locks;
  /** The GPU device under the loaded model was lost: its sessions are dead (the worker says so to the UI). */
  onDeviceLost?: (why: string) => void;
}

/** quota - usage from the browser, null where there is no StorageManager (Node, old browsers). */
async function browserStorageFree(): Promise<number | null> {
  const est = await (globalThis.navigator as Navigator | undefined)?.storage?.estimate?.().catch(() => undefined);
  return est?.quota !== undefined && est.usage !== undefined ? est.quota - est.usage : null;
}

export interface Current {
  info: ModelInfo;
  model: LoadedModel;
  backend: BackendInfo;
  storage: StorageReport;
}

const noop: JobListener = () => undefined;

function checkAbort(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledError('Loading the model');
}

/** A component's graph file (model.onnx unless a family names another one). */
function graphFile(folder: ModelFolder, component: string, file: string) {
  const graph = componentFiles(folder, component).get(file);
  if (!graph) throw modelError(`The model folder has no ${component}/${file}.`, 'Use a complete model folder (docs/model-folder.md).');
  return graph;
}

/**
 * The external data files a graph refers to, under the paths stored in it (what ORT looks them up
 * by), each checked to be in the folder: a missing shard is named before ORT fails on it. A graph
 * that cannot be parsed here gets the files named after it (`<file>_data*`, `<file>.data`).
 */
function externalFiles(folder: ModelFolder, component: string, file: string, model: Uint8Array) {
  const files = componentFiles(folder, component);
  let paths: string[];
  try {
    paths = externalDataPaths(model);
  } catch {
    paths = [...files.keys()].filter((name) => name !== file && name.startsWith(file) && !name.includes('/'));
  }
  return paths.map((location) => {
    const spec = files.get(location.replace(/^\.\//, ''));
    if (!spec) {
      throw modelError(
        `${component}/${file} keeps its weights in ${component}/${location}, which the model folder does not have.`,
        'The repository is incomplete: upload every external data file of the graph (a large graph has several shards, e.g. .onnx_data and .onnx_data_1), or use a complete model folder.',
      );
    }
    return [location, spec] as const;
  });
}

export class Engine implements ImageEngine {
  private queue = new JobQueue();
  private current: Current | null = null;
  private deps: LoadDeps;

  constructor(private opts: EngineOptions = {}) {
    // the network, and model folders the user opened from disk (answered from storage)
    const fetcher = opts.fetcher ?? defaultFetcher();
    const store = new FileStore(opts.storage ?? defaultStorage(), fetcher, { locks: opts.locks ?? browserLocks() });
    this.deps = { fetcher, store, families: opts.families ?? FAMILIES, storageFree: opts.storageFree ?? browserStorageFree };
  }

  get ready(): boolean {
    return this.current !== null;
  }

  load(options: LoadOptions, listener: JobListener = noop, id?: string): Job<LoadResult> {
    return this.queue.add(
      'load',
      async (signal) => {
        const t0 = performance.now();
        const next = await openModel(options, this.deps, signal, listener);
        // only now replace the previous model: a failed or cancelled load leaves it in place
        await this.dispose();
        this.current = next;
        if (next.backend.backend === 'webgpu') void watchWebgpuDevice((why) => this.deviceLost(why));
        return { request: 'load', model: next.info, backend: next.backend, loadMs: performance.now() - t0, storage: next.storage };
      },
      listener,
      id,
    );
  }

  generate(params: GenerateRequestParams | GenerateParams, listener: JobListener = noop, id?: string): Job<GenerateResult> {
    return this.queue.add('generate', (signal) => this.runGenerate(params, signal, listener), listener, id);
  }

  async cancel(jobId: string): Promise<boolean> {
    return this.queue.cancel(jobId);
  }

  /**
   * A stray error inside the worker (an uncaught exception, an unhandled rejection): it fails the
   * job that was running, not the engine. Returns the failed job's id, or null when none ran.
   */
  failRunning(message: string): string | null {
    return this.queue.failRunning((what, kind) =>
      kind === 'load'
        ? new EngineError('RuntimeError', `${what} was interrupted by an internal error: ${message}`, 'Press Retry: files already downloaded are kept.', 'retry-load')
        : new EngineError('RuntimeError', `${what} was interrupted by an internal error: ${message}`, 'Press Run again: the model is still loaded.', 'run-again'),
    );
  }

  /** The GPU device is gone: the model on it cannot run again, and the job on it fails now. */
  private deviceLost(why: string): void {
    this.current = null;
    this.queue.failRunning((_what, kind) => deviceLostError(why, kind));
    this.opts.onDeviceLost?.(why);
  }

  async dispose(): Promise<void> {
    const c = this.current;
    this.current = null;
    await c?.model.dispose();
  }

  private async runGenerate(raw: GenerateRequestParams | GenerateParams, signal: AbortSignal, emit: JobListener): Promise<GenerateResult> {
    const parsed = parseGenerateParams(raw);
    const c = this.current;
    if (!c) throw notReady();
    const params = resolveParams(parsed, c.info);
    // an animation's frames all carry the first seed (the animation spec says the rest)
    const seeds = Array.from({ length: params.numImagesPerPrompt }, (_, b) => (params.animation ? params.seed : params.seed + b) >>> 0);
    const decoded: { index: number; image: GeneratedImage }[] = [];
    const stepMs = stepDurations(params.imageToImage ? img2imgStart(params.numInferenceSteps, params.strength) : 0);
    const out = await runPipeline(c.model, params, parsed.image, {
      signal,
      onStep: (step, total, msPerStep) => {
        stepMs.add(step, msPerStep);
        emit({ type: 'progress', stage: 'denoise', step, total, msPerStep });
      },
      onPreview: (index, step, total, image) => emit({ type: 'preview', index, step, total, image }),
      onImage: (index, image) => decoded.push({ index, image }),
    });
    const timings = { ...out.timings, stepMs: stepMs.values };
    // each image with the exact settings that make it again on its own (its seed, a batch of one;
    // an animation's frame: its spec, the frame being `index`)
    for (const { index, image } of decoded) {
      emit({ type: 'image', index, image, params: { ...params, seed: seeds[index], numImagesPerPrompt: 1 }, modelId: c.info.id, shift: c.info.scheduler.shift, timings });
    }
    return { request: 'generate', seeds, timings };
  }
}

/**
 * Each denoise step's own duration, from the running average the pipeline reports after each step
 * (msPerStep over the steps since the first one it runs, k): step s has taken avg * (s - k) so far.
 */
function stepDurations(k: number) {
  const values: number[] = [];
  let elapsed = 0;
  return {
    values,
    add(step: number, msPerStep: number) {
      const total = msPerStep * (step - k);
      values.push(total - elapsed);
      elapsed = total;
    },
  };
}

/** The request's values, or the model's defaults; checked against the model's own limits. */
export function resolveParams(p: GenerateParams, info: ModelInfo): ResolvedGenerateParams {
  const { defaults, limits } = info;
  const r: ResolvedGenerateParams = {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt ?? defaults.negativePrompt,
    numInferenceSteps: p.numInferenceSteps ?? defaults.numInferenceSteps,
    guidanceScale: p.guidanceScale ?? defaults.guidanceScale,
    seed: p.seed ?? crypto.getRandomValues(new Uint32Array(1))[0],
    // an animation's frames are the batch
    numImagesPerPrompt: p.animation ? p.animation.frames : p.numImagesPerPrompt,
    width: p.width ?? p.image?.width ?? defaults.width,
    height: p.height ?? p.image?.height ?? defaults.height,
    strength: p.strength,
    previewEvery: p.previewEvery,
    imageToImage: p.image !== undefined,
    ...(p.animation && { animation: p.animation }),
  };
  if (p.animation && p.animation.frames > limits.numImagesPerPrompt.max) {
    const { max } = limits.numImagesPerPrompt;
    throw badRequest(`An animation of ${p.animation.frames} frames is one batch of ${p.animation.frames} images; ${info.name} makes at most ${max} at a time.`, `Ask for 2 to ${max} frames.`);
  }
  if (p.animation?.kind === 'seed' && p.animation.to === r.seed) {
    throw badRequest(`The seed animation goes from seed ${r.seed} to the same seed: every frame would be the same picture.`, 'Pick a second seed different from the first.');
  }
  for (const key of ['numInferenceSteps', 'guidanceScale', 'numImagesPerPrompt'] as const) {
    const { min, max } = limits[key];
    if (r[key] < min || r[key] > max) throw badRequest(`"${key}" is ${r[key]}; ${info.name} allows ${min} to ${max}.`, `Set ${key} between ${min} and ${max}.`);
  }
  if (!limits.sizes.some(([w, h]) => w === r.width && h === r.height)) {
    throw badRequest(`${info.name} cannot make ${r.width}x${r.height} images.`, `Use one of: ${limits.sizes.map(([w, h]) => `${w}x${h}`).join(', ')}.`);
  }
  if (p.image && (p.image.width !== r.width || p.image.height !== r.height)) {
    throw badRequest(`The init image is ${p.image.width}x${p.image.height} but the request asks for ${r.width}x${r.height}.`, 'Resize the image to the output size first.');
  }
  if (p.image && !info.imageToImage) {
    throw badRequest(`${info.name} has no VAE encoder, so it cannot start from an image.`, 'Remove the init image, or load a model with a vae_encoder.');
  }
  return r;
}

/** Everything a load needs besides its options. */
export interface LoadDeps {
  store: FileStore;
  fetcher: Fetcher;
  families: readonly ModelFamily[];
  storageFree: () => Promise<number | null>;
}

/** Open a model folder as a LoadedModel on the best backend: the load job, minus the swap. */
export async function openModel(options: LoadOptions, deps: LoadDeps, signal: AbortSignal, emit: JobListener = noop): Promise<Current> {
  const prepare = (message: string) => emit({ type: 'progress', stage: 'prepare', message });

  // 1. the folder: file list (manifest.json or the Hub's tree listing) and model_index.json
  prepare('Reading the model folder');
  const opened = await openFolder(options.modelUrl, deps.store, deps.fetcher, signal);

  // 2. its family, before any large download, so an unsupported model costs nothing
  const family = detectFamily(opened, deps.families);

  // 3. the backend, with what the browser offers (shown with every run)
  const report = await deviceReport(wasmThreads());
  let backend: BackendInfo = { ...(await selectBackend(options.backend)), report };
  emit({ type: 'backend', info: backend });

  // 4. preflight, before any weight is downloaded: can this browser run it (WebGPU, shader-f16,
  //    buffer limits, WASM's 4 GiB, memory, storage), on which backend, and with which optional
  //    components (SD3's T5 is left out by default when it would not fit)
  const asked = options.skipComponents;
  const required = family.requiredComponents.filter((c) => c.split('|').some((alt) => asked?.includes(alt)));
  if (required.length) throw badRequest(`${required.join(', ')} cannot be left out: the ${family.name} family needs it.`, 'Leave out only optional components.');
  // a size no browser can take (a manifest saying 2^40 bytes) is refused by the file's name, before any byte
  for (const [, spec] of usedFiles(opened, family)) checkFileSize(spec);
  prepare('Checking what this model needs');
  const download = (file: string, loaded: number, total: number) => emit({ type: 'progress', stage: 'download', file, loaded, total });
  const plan = await planLoad(opened, family, { asked, preference: options.backend, selected: backend, store: deps.store, storageFree: deps.storageFree, signal, onDownload: download });
  if (plan.backend.backend !== backend.backend) emit({ type: 'backend', info: plan.backend });
  backend = plan.backend;
  for (const note of plan.notes) prepare(note);
  const skip = new Set(plan.skip);
  const folder = { ...opened, components: opened.components.filter((c) => !skip.has(c)) };

  // 5. every file of the components used, into storage with byte progress
  const files = usedFiles(folder, family);
  for (const [path, spec] of files) {
    await deps.store.ensure(spec, (loaded, total) => download(path, loaded, total), signal);
  }
  checkAbort(signal);

  // 6. sessions; in auto mode a WebGPU failure falls back to WASM and says why
  let model: LoadedModel;
  try {
    prepare(`Starting ${backend.backend === 'webgpu' ? 'WebGPU' : 'WASM'} sessions`);
    model = await family.load(familyContext(deps.store, folder, backend.backend, signal, prepare));
    if (backend.backend === 'webgpu' && !webgpuDeviceInUse()) {
      await model.dispose();
      throw modelError('ONNX Runtime did not open a WebGPU device for the transformer.', 'Press Use WASM, or Retry.', 'switch-backend');
    }
  } catch (e) {
    if (signal.aborted || backend.backend !== 'webgpu' || options.backend === 'webgpu') throw e;
    backend = { backend: 'wasm', threads: backend.threads, fallbackReason: `WebGPU failed: ${(e as Error).message}`, report };
    emit({ type: 'backend', info: backend });
    model = await family.load(familyContext(deps.store, folder, 'wasm', signal, prepare));
  }
  const info: ModelInfo = { id: folder.id, name: folder.name, family: family.name, ...model.info };
  const total = [...opened.files.values()].filter((f) => f.path === 'model_index.json' || files.some(([p]) => p === f.path)).reduce((n, f) => n + f.bytes, 0);
  const storage: StorageReport = { bytes: total, ...deps.store.state() };

  // 7. warm up: one 1-step image at the defaults runs every graph once, so kernels are compiled
  //    and memory planned before the user's first click instead of during it; on WASM, transformer
  //    steps follow until their time settles (V8 runs new wasm code unoptimised first: the first
  //    forwards of webdit-tiny take 218, 84, 52, 84, 61, 56 ms, then ~49; one warm-up step left the
  //    user's first image at 1.47x a later one)
  try {
    prepare('Warming up');
    const d = info.defaults;
    const warm = resolveParams({ prompt: '', negativePrompt: d.negativePrompt, numInferenceSteps: 1, guidanceScale: d.guidanceScale, seed: 0, numImagesPerPrompt: 1, strength: d.strength, previewEvery: 0 }, info);
    await runPipeline(model, warm, undefined, { signal });
    if (backend.backend === 'wasm') await settleSteps(model, { ...warm, numInferenceSteps: Math.min(WARM_STEPS, info.limits.numInferenceSteps.max) }, signal);
  } catch (e) {
    await model.dispose();
    throw signal.aborted ? new CancelledError('Loading the model') : e;
  }
  return { info, model, backend, storage };
}

const WARM_STEPS = 8;
const WARM_BUDGET_MS = 1500;

/** Transformer steps until two in a row are within 15% of each other and of the fastest so far
 *  (at least 3, at most WARM_STEPS, stopped early past WARM_BUDGET_MS); the run is abandoned
 *  before its decode (the first warm-up image decoded). Exported for its test. */
export async function settleSteps(model: LoadedModel, params: ResolvedGenerateParams, signal: AbortSignal): Promise<number[]> {
  const stop = new AbortController();
  const forward = () => stop.abort();
  signal.addEventListener('abort', forward, { once: true });
  if (signal.aborted) stop.abort();
  const times: number[] = [];
  const t0 = performance.now();
  let last = t0;
  try {
    await runPipeline(model, params, undefined, {
      signal: stop.signal,
      onStep() {
        const t = performance.now();
        times.push(t - last);
        last = t;
        const n = times.length;
        const best = Math.min(...times);
        const settled = n >= 3 && times[n - 1] <= 1.15 * best && times[n - 2] <= 1.15 * best;
        if (settled || t - t0 > WARM_BUDGET_MS) stop.abort();
      },
    });
  } catch (e) {
    if (signal.aborted || !stop.signal.aborted) throw e;
  } finally {
    signal.removeEventListener('abort', forward);
  }
  return times;
}

/** What a family's load gets from the core (exported for tests that load a family without the warm-up). */
export function familyContext(store: FileStore, folder: ModelFolder, backend: 'webgpu' | 'wasm', signal: AbortSignal, progress: (m: string) => void, runners: { resident?: boolean } = {}): FamilyContext {
  return {
    folder,
    store,
    signal,
    progress,
    readJson: (component, file) => readComponentJson(folder, store, component, file, signal),
    has: (component, file) => folder.files.has(`${component}/${file}`),
    readText: (component, file) => readComponentText(folder, store, component, file, signal),
    async tokenizer(component, tokenizerJson) {
      const config = await readComponentJson(folder, store, component, 'tokenizer_config.json', signal);
      const json = tokenizerJson ?? (await readComponentJson(folder, store, component, 'tokenizer.json', signal));
      return { tokenizer: TextTokenizer.create(json, config, `${component}/`), config };
    },
    async openGraph(component, contract, options = {}) {
      checkAbort(signal);
      const file = options.file ?? 'model.onnx';
      const model = await store.read(graphFile(folder, component, file), signal);
      // bytes live only until the session holds them. A file over 2 GB never becomes one
      // ArrayBuffer of ours: ORT gets the URL of its disk-backed Blob (Cache API parts joined) and
      // streams it in itself (onnxruntime-web's loadFile: a preallocated buffer, or WebAssembly
      // memory when an ArrayBuffer that large cannot be made)
      const externalData: { path: string; data: Uint8Array | string }[] = [];
      const urls: string[] = [];
      for (const [path, spec] of externalFiles(folder, component, file, model)) {
        if (spec.bytes > LARGE_FILE_BYTES) urls.push(URL.createObjectURL(await store.blob(spec, signal)));
        externalData.push({ path, data: spec.bytes > LARGE_FILE_BYTES ? urls[urls.length - 1] : await store.read(spec, signal) });
      }
      try {
        return await createRunner({ name: `${component}/${file}`, model, externalData }, options.backend ?? backend, contract, runners);
      } finally {
        urls.forEach((u) => URL.revokeObjectURL(u));
      }
    },
  };
}
