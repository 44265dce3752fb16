/**
 * The engine: load a model folder (manifest -> verified files -> sessions), generate images.
 * Runs inside the worker; handler.ts turns its results into protocol events.
 */
import { assertSupportedFamily, createAdapter, type FamilyAdapter } from './adapters';
import { defaultCache, fetchVerified, type Fetcher, type ModelCache } from './cache';
import { EngineError, modelError } from './errors';
import { parseManifest, type ModelManifest } from './manifest';
import { runPipeline, type PipelineHooks } from './pipeline';
import type { Backend, BackendInfo, BackendPreference, DoneResult, GenerateParams, ModelInfo } from './protocol';
import { createRunner, selectBackend, webgpuDeviceInUse } from './sessions';
import type { GraphRunner } from './tensor';

export type LoadResult = Extract<DoneResult, { request: 'load' }>;
export type GenerateResult = Extract<DoneResult, { request: 'generate' }> & { latents: Float32Array };

export interface EngineOptions {
  cache?: ModelCache;
  fetcher?: Fetcher;
  /** Where transformers.js runs the text encoder; undefined = its default (Node: onnxruntime-node). */
  textEncoderDevice?: (backend: Backend) => 'wasm' | 'webgpu' | undefined;
}

export interface LoadCallbacks {
  onDownload?: (file: string, loaded: number, total: number) => void;
  onStatus?: (message: string) => void;
  onBackend?: (info: BackendInfo) => void;
}

interface Loaded {
  manifest: ModelManifest;
  adapter: FamilyAdapter;
  transformer: GraphRunner;
  vaeDecoder: GraphRunner;
  backend: BackendInfo;
}

const TRANSFORMER_INPUTS = ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep'];

/** Split a manifest URL into the folder root transformers.js sees and the model's folder name. */
export function modelLocation(manifestUrl: string): { base: string; root: string; name: string } {
  const base = manifestUrl.slice(0, manifestUrl.lastIndexOf('/') + 1); // .../webdit-tiny/
  const trimmed = base.slice(0, -1);
  const cut = trimmed.lastIndexOf('/');
  return { base, root: trimmed.slice(0, cut + 1), name: trimmed.slice(cut + 1) };
}

export class Engine {
  private loaded: Loaded | null = null;
  private cache: ModelCache;
  private fetcher: Fetcher;

  constructor(private opts: EngineOptions = {}) {
    this.cache = opts.cache ?? defaultCache();
    this.fetcher = opts.fetcher ?? ((url, init) => fetch(url, init));
  }

  get ready(): boolean {
    return this.loaded !== null;
  }

  get manifest(): ModelManifest | null {
    return this.loaded?.manifest ?? null;
  }

  async load(manifestUrl: string, pref: BackendPreference, cb: LoadCallbacks = {}): Promise<LoadResult> {
    const t0 = performance.now();
    cb.onStatus?.('Reading the model manifest');
    const manifest = await this.fetchManifest(manifestUrl);
    assertSupportedFamily(manifest.family);

    let backend = await selectBackend(pref);
    cb.onBackend?.(backend);

    const { base, root, name } = modelLocation(manifestUrl);
    const files = new Map<string, Uint8Array>();
    for (const [file, spec] of Object.entries(manifest.files)) {
      files.set(
        file,
        await fetchVerified({ url: base + file, name: file, ...spec }, this.cache, this.fetcher, (loaded, total) => cb.onDownload?.(file, loaded, total)),
      );
    }

    cb.onStatus?.(`Starting ${backend.backend === 'webgpu' ? 'WebGPU' : 'WASM'} sessions`);
    let runners: [GraphRunner, GraphRunner];
    try {
      runners = await this.createRunners(manifest, files, backend.backend);
      if (backend.backend === 'webgpu' && !webgpuDeviceInUse()) {
        await Promise.all(runners.map((r) => r.dispose()));
        throw modelError('ONNX Runtime did not open a WebGPU device for the transformer.', 'Reload, or use the WASM backend (?backend=wasm).');
      }
    } catch (e) {
      if (backend.backend !== 'webgpu' || pref === 'webgpu') throw e;
      // auto: a WebGPU failure (driver, limits) falls back to WASM and says why
      backend = { backend: 'wasm', threads: backend.threads, fallbackReason: `WebGPU failed: ${(e as Error).message}` };
      cb.onBackend?.(backend);
      runners = await this.createRunners(manifest, files, 'wasm');
    }

    cb.onStatus?.('Loading the text encoder');
    let adapter: FamilyAdapter;
    try {
      adapter = await createAdapter({ manifest, files, root, name, textDevice: this.opts.textEncoderDevice?.(backend.backend) });
    } catch (e) {
      await Promise.all(runners.map((r) => r.dispose()));
      throw e;
    }
    // only now replace the previous model: a failed reload leaves the working one in place
    await this.dispose();
    this.loaded = { manifest, adapter, transformer: runners[0], vaeDecoder: runners[1], backend };
    return { request: 'load', model: modelInfo(manifest), backend, loadMs: performance.now() - t0 };
  }

  async generate(params: GenerateParams, hooks: PipelineHooks = {}): Promise<GenerateResult> {
    const l = this.loaded;
    if (!l) throw new EngineError('NotReadyError', 'No model is loaded yet.', 'Wait for the model to finish loading, then press Generate.');
    const out = await runPipeline(l, params, hooks);
    return {
      request: 'generate',
      image: { width: out.width, height: out.height, pixels: out.pixels },
      params,
      modelId: l.manifest.id,
      shift: l.manifest.scheduler.shift,
      timings: out.timings,
      latents: out.latents,
    };
  }

  async dispose(): Promise<void> {
    const l = this.loaded;
    this.loaded = null;
    if (l) await Promise.all([l.transformer.dispose(), l.vaeDecoder.dispose(), l.adapter.dispose()]);
  }

  private async fetchManifest(url: string): Promise<ModelManifest> {
    let res: Response;
    try {
      res = await this.fetcher(url);
    } catch (e) {
      throw modelError(`Could not fetch the model manifest ${url} (${(e as Error).message}).`, 'Check the model URL and your connection, then reload.');
    }
    if (!res.ok) {
      throw modelError(`The model manifest ${url} answered ${res.status} ${res.statusText}.`, 'Check the model URL: it must point at a manifest.json inside a model folder.');
    }
    return parseManifest(await res.text());
  }

  private async createRunners(m: ModelManifest, files: Map<string, Uint8Array>, backend: Backend): Promise<[GraphRunner, GraphRunner]> {
    const t = await createRunner(files.get(m.graphs.transformer)!, m.graphs.transformer, backend, TRANSFORMER_INPUTS);
    try {
      const v = await createRunner(files.get(m.graphs.vae_decoder)!, m.graphs.vae_decoder, backend, ['latent_sample']);
      return [t, v];
    } catch (e) {
      await t.dispose();
      throw e;
    }
  }
}

export function modelInfo(m: ModelManifest): ModelInfo {
  return {
    id: m.id,
    name: m.name,
    family: m.family,
    imageSize: m.image_size,
    defaults: { steps: m.defaults.steps, guidanceScale: m.defaults.guidance_scale, negativePrompt: m.defaults.negative_prompt ?? '' },
    shift: m.scheduler.shift,
  };
}
