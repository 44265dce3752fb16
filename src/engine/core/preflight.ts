/**
 * Preflight: whether a model can run in this browser, decided before its weights are downloaded.
 * Checks WebGPU (present, a hardware adapter), `shader-f16` when the graphs compute in float16,
 * the adapter's buffer limits against the largest weight tensor, the 4 GiB WebAssembly memory WASM
 * runs in, the device's memory (navigator.deviceMemory) and the free storage; decides the backend
 * and whether optional components (SD3's T5) are left out. A model that cannot run here is refused
 * with what it needs, what this browser has, and what would work.
 *
 * The decision (`decide`) is a pure function of the model's needs and the environment, so it is
 * tested with fake adapters; `probeEnvironment` reads the real browser.
 */
import type { BackendInfo, BackendPreference } from '../protocol';
import { EngineError, type ErrorFix } from '../errors';
import { presentComponent, type ModelFamily } from './family';
import type { FileSpec, FileStore } from './files';
import type { ModelFolder } from './folder';
import { graphFacts } from './onnxFacts';

export const GiB = 2 ** 30;
/** ORT-web's WASM build is 32-bit: one 4 GiB memory holds every session's weights and activations. */
export const WASM_MEMORY_BYTES = 4 * GiB;
/** Of it, what weights may take (the rest: activations, the runtime, a graph's copy while it loads). An estimate. */
export const WASM_WEIGHT_BUDGET = 3.5 * GiB;
/** Chrome reports navigator.deviceMemory rounded down to a power of two and never above 8. */
export const DEVICE_MEMORY_CAP_GIB = 8;

export interface GpuAdapterInfo {
  description: string;
  /** A CPU-emulated adapter (SwiftShader): runs, far slower than WASM. */
  fallback: boolean;
  shaderF16: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface Environment {
  /** Whether the browser has the WebGPU API at all (navigator.gpu). */
  webgpuApi: boolean;
  /** The adapter, or null when there is none (or WebGPU is off). */
  adapter: GpuAdapterInfo | null;
  /** navigator.deviceMemory in GiB, or null where the browser does not say. */
  deviceMemoryGiB: number | null;
  /** Free storage for this site in bytes, or null where the browser does not say. */
  storageFree: number | null;
}

/** One graph as a session holds it. */
export interface GraphNeeds {
  /** e.g. 'transformer/model.onnx'. */
  name: string;
  component: string;
  /** Graph file + its external data. */
  bytes: number;
  /** Largest weight tensor: exact when the graph file was read, else null. */
  largestTensor: number | null;
  /** Inputs/outputs declared float16 (when the graph file was read). */
  float16Io: string[];
}

export interface ModelNeeds {
  name: string;
  graphs: GraphNeeds[];
  /** Bytes of every file the load uses (graphs, configs, tokenizers) and of those not stored yet, per component ('' for root files). */
  files: { component: string; bytes: number; missing: number }[];
  /** Why the graphs need shader-f16 on WebGPU when the manifest says so (float16 I/O read from the graphs counts too), or null. */
  float16: string | null;
  /** Why the model needs WebGPU beyond its size (declared by its manifest), or null. */
  webgpu: string | null;
  /** Components that may be left out when they would not fit, with what to call them ('T5'). */
  droppable: readonly { components: readonly string[]; label: string }[];
}

export interface PreflightPlan {
  backend: BackendInfo;
  /** Components left out (asked for, or droppable ones that would not fit). */
  skip: string[];
  /** Weights the sessions hold (on WebGPU: GPU memory), and the estimate of system memory the load needs at its peak. */
  weightBytes: number;
  memoryBytes: number;
  /** What the user should know that does not stop the load (T5 left out, a tight memory estimate). */
  notes: string[];
}

const gb = (n: number) => `${(n / 1e9).toFixed(n < 1e9 ? 2 : 1)} GB`;

/** A model that cannot run here, said before any weight is downloaded. */
export class PreflightError extends EngineError {
  constructor(
    message: string,
    action: string,
    fix: ErrorFix | undefined,
    /** What failed, for tests and the picker: 'webgpu', 'shader-f16', 'buffer-size', 'wasm-memory', 'device-memory'. */
    readonly need: string,
  ) {
    super('UnsupportedError', message, action, fix);
  }
}

const BROWSERS_F16 = 'Chrome or Edge 121+ on a desktop GPU that offers shader-f16 (most from the last years; Windows, macOS, ChromeOS, and Android 12+ with a recent GPU)';
const BROWSERS_WEBGPU = 'Chrome or Edge 113+ (Windows, macOS, ChromeOS), or Safari 26 / Firefox 141+ where they enable WebGPU';
const EMBEDDED = 'or use the embedded model (it runs everywhere)';

function used(needs: ModelNeeds, skip: ReadonlySet<string>) {
  const graphs = needs.graphs.filter((g) => !skip.has(g.component));
  const weightBytes = graphs.reduce((n, g) => n + g.bytes, 0);
  const missing = needs.files.filter((f) => !skip.has(f.component)).reduce((n, f) => n + f.missing, 0);
  const largestGraph = graphs.reduce((n, g) => Math.max(n, g.bytes), 0);
  return { graphs, weightBytes, missing, largestGraph };
}

/** Why the graphs need shader-f16 (declared, or the first graph with float16 inputs/outputs), or null. */
function float16Why(needs: ModelNeeds, graphs: GraphNeeds[]): string | null {
  const g = graphs.find((x) => x.float16Io.length);
  return needs.float16 ?? (g ? `${g.name} takes and gives float16 tensors: ${g.float16Io.join(', ')}` : null);
}

/** Why WebGPU cannot run these graphs on this adapter (empty: it can). */
function gpuProblems(needs: ModelNeeds, graphs: GraphNeeds[], env: Environment): { need: string; have: string }[] {
  const a = env.adapter;
  if (!a) return [{ need: 'webgpu', have: env.webgpuApi ? 'this browser has WebGPU but no adapter (GPU blocklisted or disabled)' : 'this browser has no WebGPU' }];
  const out: { need: string; have: string }[] = [];
  const f16 = float16Why(needs, graphs);
  if (f16 && !a.shaderF16) out.push({ need: 'shader-f16', have: `this browser has WebGPU without it (adapter: ${a.description})` });
  const limit = Math.min(a.maxBufferSize, a.maxStorageBufferBindingSize);
  const big = graphs.filter((g) => g.largestTensor !== null && g.largestTensor > limit);
  if (big.length) out.push({ need: 'buffer-size', have: `${big[0].name} has a ${gb(big[0].largestTensor!)} weight, more than the ${gb(limit)} this GPU's buffers hold (maxBufferSize ${a.maxBufferSize}, maxStorageBufferBindingSize ${a.maxStorageBufferBindingSize})` });
  return out;
}

/**
 * System memory the load needs at its peak (an estimate): on WASM every weight sits in the heap
 * (plus activations); on WebGPU the weights go to the GPU, and system memory holds one graph's files
 * twice while its session is created (ORT's copy and the upload's staging).
 */
function memoryEstimate(backend: 'webgpu' | 'wasm', weightBytes: number, largestGraph: number): number {
  return backend === 'wasm' ? Math.round(weightBytes * 1.15) : 2 * largestGraph;
}

/**
 * The plan for a load, or a PreflightError that says what this model needs, what this browser
 * has, and what would work. `selected` is the backend the preference picked (sessions.ts);
 * `asked` the components the user chose to leave out (undefined: decide here).
 */
export function decide(needs: ModelNeeds, env: Environment, preference: BackendPreference, selected: BackendInfo, asked?: readonly string[]): PreflightPlan {
  const auto = asked === undefined;
  const droppable = needs.droppable.filter((d) => d.components.some((c) => needs.files.some((f) => f.component === c)));
  const attempt = (skip: ReadonlySet<string>) => tryPlan(needs, env, preference, selected, skip);

  const base = new Set(asked ?? []);
  const first = attempt(base);
  if (first.plan || !auto) return finish(first, [...base], needs);
  // leave out droppable components, one after another, until it fits
  const skip = new Set(base);
  const dropped: string[] = [];
  for (const d of droppable) {
    d.components.forEach((c) => skip.add(c));
    dropped.push(d.label);
    const next = attempt(skip);
    if (next.plan) {
      const saved = needs.graphs.filter((g) => d.components.includes(g.component)).reduce((n, g) => n + g.bytes, 0);
      next.plan.notes.unshift(`${dropped.join(' and ')} left out (${gb(saved)}): ${first.error!.message.replace(/\.$/, '')}. Turn it on in the model picker to try it anyway.`);
      return finish(next, [...skip], needs);
    }
  }
  return finish(first, [...base], needs);
}

function finish(r: Attempt, skip: string[], needs: ModelNeeds): PreflightPlan {
  if (r.error) throw r.error;
  r.plan!.skip = skip.filter((c) => needs.files.some((f) => f.component === c) || needs.graphs.some((g) => g.component === c));
  return r.plan!;
}

type Attempt = { plan?: PreflightPlan; error?: EngineError };

function tryPlan(needs: ModelNeeds, env: Environment, preference: BackendPreference, selected: BackendInfo, skip: ReadonlySet<string>): Attempt {
  const { graphs, weightBytes, missing, largestGraph } = used(needs, skip);
  const name = needs.name;
  const notes: string[] = [];
  const fitsWasm = needs.webgpu === null && weightBytes <= WASM_WEIGHT_BUDGET;
  const wasmWhy = needs.webgpu ?? `its weights are ${gb(weightBytes)}, more than the ${gb(WASM_MEMORY_BYTES)} WebAssembly memory WASM runs in holds with room to run`;
  const gpu = gpuProblems(needs, graphs, env);
  const f16Why = float16Why(needs, graphs);

  // 1. the backend
  let backend: BackendInfo = selected;
  if (selected.backend === 'webgpu' && gpu.length) {
    if (preference === 'auto' && fitsWasm) {
      backend = { backend: 'wasm', threads: selected.threads, fallbackReason: `${name} cannot run on this GPU: ${gpu.map((p) => p.have).join('; ')}` };
    } else return refuseGpu(name, gpu, f16Why, fitsWasm, fitsWasm ? null : wasmWhy);
  } else if (selected.backend === 'wasm' && !fitsWasm) {
    // WASM cannot hold it: WebGPU, when this browser has an adapter that can run it
    if (env.adapter && !gpu.length) {
      if (preference === 'wasm') {
        return { error: new PreflightError(`${name} cannot run on WASM: ${wasmWhy}.`, 'Press Use WebGPU: this browser has a WebGPU adapter that can run it.', 'switch-backend', 'wasm-memory') };
      }
      backend = { backend: 'webgpu', adapter: env.adapter.description, shaderF16: env.adapter.shaderF16, threads: selected.threads };
      if (env.adapter.fallback) notes.push(`${name} is too large for WASM, so it runs on the software WebGPU adapter (${env.adapter.description}): expect minutes per image.`);
    } else return refuseGpu(name, gpu, f16Why, false, wasmWhy);
  }

  // 2. memory: refused only when certainly short (deviceMemory is rounded down to a power of two: the device has less than twice it)
  const memoryBytes = memoryEstimate(backend.backend, weightBytes, largestGraph);
  const dm = env.deviceMemoryGiB;
  if (dm !== null && dm < DEVICE_MEMORY_CAP_GIB) {
    if (memoryBytes > 2 * dm * GiB) {
      return { error: new PreflightError(`${name} needs about ${gb(memoryBytes)} of memory to load (an estimate), and this device has less than ${2 * dm} GB (the browser reports ${dm} GB).`, `Use a device with more memory, ${EMBEDDED}.`, 'smaller-model', 'device-memory') };
    }
    if (memoryBytes > dm * GiB) notes.push(`${name} needs about ${gb(memoryBytes)} of memory to load (an estimate); this device reports ${dm} GB, so loading may fail: close other tabs first.`);
  }

  // 3. storage for what is not stored yet
  if (env.storageFree !== null && missing > env.storageFree) {
    return {
      error: new EngineError(
        'StorageFullError',
        `${name} needs ${gb(missing)} more of browser storage, but only ${gb(Math.max(0, env.storageFree))} is free for this site.`,
        'Press Delete cached models to free the space this studio uses, or choose a smaller model.',
        'free-storage',
      ),
    };
  }
  return { plan: { backend, skip: [], weightBytes, memoryBytes, notes } };
}

function refuseGpu(name: string, gpu: { need: string; have: string }[], f16Why: string | null, fitsWasm: boolean, wasmWhy: string | null): Attempt {
  const p = gpu[0];
  const instead = fitsWasm ? 'press Use WASM (it runs there, more slowly)' : EMBEDDED;
  const fix: ErrorFix = fitsWasm ? 'switch-backend' : 'smaller-model';
  const noWasm = wasmWhy ? ` WASM cannot run it instead: ${wasmWhy}.` : '';
  const f16 = f16Why ? ` with shader-f16 (${f16Why})` : '';
  switch (p.need) {
    case 'shader-f16':
    case 'webgpu':
      return { error: new PreflightError(`${name} needs WebGPU${f16}; ${p.have}.${noWasm}`, `Try ${f16Why ? BROWSERS_F16 : BROWSERS_WEBGPU}; ${instead}.`, fix, p.need) };
    default:
      return { error: new PreflightError(`${name} cannot run on this GPU: ${p.have}.${noWasm}`, `Try a GPU with larger buffer limits (a desktop GPU in Chrome or Edge); ${instead}.`, fix, p.need) };
  }
}

/** The environment of this browser (in the worker or the page). */
export async function probeEnvironment(storageFree: () => Promise<number | null>): Promise<Environment> {
  const nav = globalThis.navigator as (Navigator & { deviceMemory?: number }) | undefined;
  const gpu = nav?.gpu;
  let adapter: GpuAdapterInfo | null = null;
  if (gpu) {
    try {
      const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (a) {
        const info = a.info;
        adapter = {
          description: [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' / ') || 'unknown adapter',
          fallback: !!info?.isFallbackAdapter,
          shaderF16: a.features.has('shader-f16'),
          maxBufferSize: a.limits.maxBufferSize,
          maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
        };
      }
    } catch {
      adapter = null;
    }
  }
  return { webgpuApi: !!gpu, adapter, deviceMemoryGiB: typeof nav?.deviceMemory === 'number' ? nav.deviceMemory : null, storageFree: await storageFree() };
}

/** A manifest's declared needs: `requires: { webgpu?: string|true, shader_f16?: string|true }` (our manifest, optional). */
export function declaredNeeds(manifest: unknown): { webgpu: string | null; float16: string | null } {
  const r = (manifest as { requires?: unknown } | null)?.requires;
  const why = (v: unknown, dflt: string) => (typeof v === 'string' && v ? v : v === true ? dflt : null);
  if (typeof r !== 'object' || r === null) return { webgpu: null, float16: null };
  const o = r as Record<string, unknown>;
  return { webgpu: why(o.webgpu, 'its manifest says it needs WebGPU'), float16: why(o.shader_f16, 'its manifest says its graphs compute in float16') };
}

/** The files a load of `family` downloads from `folder` (before any component is left out). */
export function usedFiles(folder: ModelFolder, family: ModelFamily): [string, FileSpec][] {
  const used = [...family.requiredComponents.map((c) => presentComponent(folder, c)).filter((c): c is string => c !== null), ...family.optionalComponents.filter((c) => folder.components.includes(c))];
  return [...folder.files].filter(([path]) => used.some((c) => path.startsWith(c + '/')) && !family.skipFiles?.test(path));
}

const componentOf = (path: string) => (path.includes('/') ? path.slice(0, path.indexOf('/')) : '');

/** Graph files larger than this are not read ahead to find their largest tensor (their weights are inline: they are the download). */
export const MAX_GRAPH_READ_AHEAD = 64 * 2 ** 20;

/**
 * What a model needs, from its file list (sizes, which are stored) and manifest; with `readGraphs`
 * the small graph files are downloaded first (they are needed anyway) and read for their largest
 * weight and float16 inputs/outputs.
 */
export async function modelNeeds(folder: ModelFolder, family: ModelFamily, store: FileStore, options: { readGraphs?: (g: GraphNeeds) => boolean; signal?: AbortSignal; onDownload?: (path: string, loaded: number, total: number) => void } = {}): Promise<ModelNeeds> {
  const files = usedFiles(folder, family);
  const declared = declaredNeeds(folder.manifest);
  const graphs: GraphNeeds[] = [];
  for (const [path, spec] of files) {
    if (!path.endsWith('.onnx')) continue;
    const component = componentOf(path);
    // its external data: files beside it named after it (model.onnx_data, model.onnx.data, x.onnx_data_1)
    const data = files.filter(([p]) => p !== path && p.startsWith(path) && componentOf(p) === component);
    const g: GraphNeeds = { name: path, component, bytes: spec.bytes + data.reduce((n, [, f]) => n + f.bytes, 0), largestTensor: null, float16Io: [] };
    if (options.readGraphs?.(g) && spec.bytes <= MAX_GRAPH_READ_AHEAD) {
      // with byte progress like the load's own downloads: a graph read ahead is downloaded here
      await store.ensure(spec, (loaded, total) => options.onDownload?.(path, loaded, total), options.signal);
      try {
        const facts = graphFacts(await store.read(spec, options.signal));
        g.largestTensor = facts.largestInitializer;
        g.float16Io = facts.float16Io;
      } catch (e) {
        if (e instanceof EngineError) throw e;
        // not a graph this reader follows: the session will say what is wrong with it
      }
    }
    graphs.push(g);
  }
  const perFile = await Promise.all(files.map(async ([path, spec]) => ({ component: componentOf(path), bytes: spec.bytes, missing: (await store.has(spec)) ? 0 : spec.bytes - (await store.storedBytes(spec)) })));
  return { name: folder.name, graphs, files: perFile, float16: declared.float16, webgpu: declared.webgpu, droppable: family.droppable ?? [] };
}

/** The largest file of a graph: its largest tensor is no larger (so a limit above it needs no look inside). */
export function largestFileOf(folder: ModelFolder, g: GraphNeeds): number {
  return Math.max(...[...folder.files].filter(([p]) => p.startsWith(g.name)).map(([, f]) => f.bytes));
}

/**
 * The preflight of a load: the environment, the model's needs (graph files read ahead only where
 * that can change the answer: on WebGPU without shader-f16, where float16 I/O matters, or where a
 * graph's largest file exceeds the adapter's buffer limit), and the decision.
 */
export async function planLoad(
  folder: ModelFolder,
  family: ModelFamily,
  o: { asked?: readonly string[]; preference: BackendPreference; selected: BackendInfo; store: FileStore; storageFree: () => Promise<number | null>; signal?: AbortSignal; onDownload?: (path: string, loaded: number, total: number) => void },
): Promise<PreflightPlan> {
  const env = await probeEnvironment(o.storageFree);
  const declared = declaredNeeds(folder.manifest);
  const a = env.adapter;
  const weights = usedFiles(folder, family).reduce((n, [p, f]) => n + (/\.onnx/.test(p) ? f.bytes : 0), 0);
  const gpuMayRun = a !== null && o.preference !== 'wasm' && (o.selected.backend === 'webgpu' || weights > WASM_WEIGHT_BUDGET || declared.webgpu !== null);
  const limit = a ? Math.min(a.maxBufferSize, a.maxStorageBufferBindingSize) : Infinity;
  const needs = await modelNeeds(folder, family, o.store, {
    signal: o.signal,
    onDownload: o.onDownload,
    // (never of a component the user left out: its files are not downloaded at all)
    readGraphs: (g) => gpuMayRun && !o.asked?.includes(g.component) && ((!a!.shaderF16 && declared.float16 === null) || largestFileOf(folder, g) > limit),
  });
  return decide(needs, env, o.preference, o.selected, o.asked);
}

/** The backend sessions.ts' selectBackend would pick, for the page (which does not load ORT): WebGPU on a hardware adapter, or when forced. */
export function guessBackend(env: Environment, preference: BackendPreference, threads = 1): BackendInfo {
  const a = env.adapter;
  if (preference !== 'wasm' && a && (preference === 'webgpu' || !a.fallback)) return { backend: 'webgpu', adapter: a.description, shaderF16: a.shaderF16, threads };
  return { backend: 'wasm', threads, ...(preference !== 'wasm' && { fallbackReason: a ? 'only a software WebGPU adapter is available' : 'no WebGPU' }) };
}
