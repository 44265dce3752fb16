/**
 * The one module that imports onnxruntime-web. Same entry point as @huggingface/transformers
 * ('onnxruntime-web/webgpu'), so the bundle carries one ORT and one set of .wasm files.
 */
import * as ort from 'onnxruntime-web/webgpu';
import * as ortCpu from 'onnxruntime-web/wasm';
import type { Backend, BackendInfo, BackendPreference } from '../protocol';
import { hasFixedBatchOne, rowByRow } from './batch';
import { fromHalfArray, toHalfArray } from './float16';
import type { FloatTensor, GraphRunner, HostTensor, InputInfo } from './tensor';
import { gpuTraffic, isDeviceTensor, type DeviceOps, type DeviceTensor, type Feed, type Stepper } from './device';
import { buildStepGraph, hasModelInput, STEP, stepKey, type StepSpec } from './stepGraph';
import { EngineError, modelError } from '../errors';

export interface RuntimeOptions {
  /** URLs of ORT's .mjs/.wasm served from our own origin (never a CDN): the WebGPU build (asyncify). */
  wasmPaths?: { mjs: string; wasm: string };
  /** The same for the plain WASM build (ort-wasm-simd-threaded), which runs WASM-only loads. */
  cpuWasmPaths?: { mjs: string; wasm: string };
}

type Ort = typeof ort;

/** Point ORT at our own .wasm and pick the thread count (threads need cross-origin isolation). */
export function configureRuntime(opts: RuntimeOptions): void {
  if (opts.wasmPaths) ort.env.wasm.wasmPaths = { ...opts.wasmPaths };
  if (opts.cpuWasmPaths) ortCpu.env.wasm.wasmPaths = { ...opts.cpuWasmPaths };
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const cores = (globalThis.navigator as Navigator | undefined)?.hardwareConcurrency ?? 1;
  for (const rt of [ort, ortCpu] as const) {
    rt.env.wasm.numThreads = isolated ? Math.max(1, Math.min(4, cores)) : 1;
    rt.env.wasm.proxy = false; // we already are in a worker
  }
}

let gpuRuntimeStarted = false;

/**
 * Which ORT build runs a session. The WebGPU EP needs the asyncify build; WASM-only loads run the
 * plain build, which compiles faster and reaches full speed at once, where V8 takes a dozen forwards
 * to optimise the 27 MB asyncify module (bench, 1 thread: forwards 571, 471, 462, ... 61 ms vs 190,
 * 57, 52 ms; session 2.5 vs 0.85 s; the same 51-52 ms once warm). Once the WebGPU build has started
 * in this worker every session uses it, so a WebGPU load never starts both (its WASM text encoder
 * included).
 */
function runtimeFor(backend: Backend): Ort {
  if (backend === 'webgpu') gpuRuntimeStarted = true;
  return gpuRuntimeStarted ? ort : (ortCpu as Ort);
}

// Safe defaults at import (Node and non-isolated pages get 1 thread); the worker refines them.
configureRuntime({});

export function wasmThreads(): number {
  return Number(ort.env.wasm.numThreads) || 1;
}

async function webgpuAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  try {
    return await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    return null;
  }
}

function describeAdapter(a: GPUAdapter): string {
  const info = a.info;
  return [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' / ') || 'unknown adapter';
}

/**
 * Decide the backend: WebGPU when an adapter exists (unless WASM is forced), otherwise WASM.
 * Forcing WebGPU where there is none is an error that says what to do, not a silent fallback.
 */
export async function selectBackend(pref: BackendPreference): Promise<BackendInfo> {
  if (pref !== 'wasm') {
    const adapter = await webgpuAdapter();
    if (adapter && pref === 'auto' && adapter.info?.isFallbackAdapter) {
      // a CPU-emulated adapter (e.g. SwiftShader) is far slower than WASM: measured 8.9 s per forward vs 45 ms per CFG step on WASM
      return { backend: 'wasm', threads: wasmThreads(), fallbackReason: `only a software WebGPU adapter (${describeAdapter(adapter)}) is available; WASM is faster` };
    }
    if (adapter) {
      return { backend: 'webgpu', adapter: describeAdapter(adapter), shaderF16: adapter.features.has('shader-f16'), threads: wasmThreads() };
    }
    if (pref === 'webgpu') {
      throw new EngineError(
        'BackendUnavailableError',
        'WebGPU was requested but this browser offers no WebGPU adapter.',
        'Press Use WASM, or use a browser with WebGPU enabled (Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu).',
        'switch-backend',
      );
    }
    const reason = (globalThis.navigator as Navigator | undefined)?.gpu ? 'no WebGPU adapter available' : 'this browser has no WebGPU';
    return { backend: 'wasm', threads: wasmThreads(), fallbackReason: reason };
  }
  return { backend: 'wasm', threads: wasmThreads() };
}

// ORT sessions share one device and one wasm heap: run them one at a time.
let queue: Promise<unknown> = Promise.resolve();
function serialize<T>(fn: () => Promise<T>): Promise<T> {
  const next = queue.then(fn, fn);
  queue = next.catch(() => undefined);
  return next;
}

/** A host tensor as the graph declares the input: int64/int32 ids, float32/float16 values. */
function toOrt(t: HostTensor, want: string | undefined, name: string, rt: Ort): ort.Tensor {
  if (t.data instanceof BigInt64Array) {
    if (want === 'int32') return new rt.Tensor('int32', Int32Array.from(t.data, Number), t.dims);
    return new rt.Tensor('int64', t.data, t.dims);
  }
  if (want === 'float16') return new rt.Tensor('float16', toHalfArray(t.data), t.dims);
  if (want !== undefined && want !== 'float32') throw new Error(`input "${name}" is ${want}; the engine feeds float32, float16, int32 or int64.`);
  return new rt.Tensor('float32', t.data, t.dims);
}

function toFloat32(data: unknown, type: string): Float32Array {
  if (type === 'float16') return data instanceof Uint16Array ? fromHalfArray(data) : Float32Array.from(data as ArrayLike<number>);
  return data instanceof Float32Array ? new Float32Array(data) : Float32Array.from(data as ArrayLike<number>, Number);
}

/** Read a tensor to the host; a read of a GPU buffer is counted (gpuTraffic.readbacks). */
async function download(t: ort.Tensor): Promise<FloatTensor> {
  if (t.location === 'gpu-buffer') gpuTraffic.readbacks++;
  return { data: toFloat32(await t.getData(), t.type), dims: [...t.dims] };
}

/** An ORT tensor the engine keeps in the runtime between runs (see device.ts). */
class OrtDeviceTensor implements DeviceTensor {
  private alive = true;
  constructor(readonly tensor: ort.Tensor) {
    gpuTraffic.liveTensors++;
  }
  get dims(): readonly number[] {
    return this.tensor.dims;
  }
  get type(): string {
    return this.tensor.type;
  }
  dispose(): void {
    if (!this.alive) return;
    this.alive = false;
    gpuTraffic.liveTensors--;
    this.tensor.dispose();
  }
}

function ortFeed(t: Feed, want: string | undefined, name: string, rt: Ort): ort.Tensor {
  if (!isDeviceTensor(t)) return toOrt(t, want, name, rt);
  if (!(t instanceof OrtDeviceTensor)) throw new Error(`input "${name}" is a device tensor from another runtime.`);
  return t.tensor;
}

/** A host tensor as a WebGPU buffer on ORT's device (16-byte aligned; the tensor frees it on dispose). */
async function gpuTensor(t: ort.Tensor): Promise<ort.Tensor> {
  const device = (await (ort.env.webgpu as { device?: GPUDevice | Promise<GPUDevice> }).device) as GPUDevice | undefined;
  if (!device) throw new Error('no WebGPU device: a WebGPU session must exist before tensors can be uploaded.');
  const src = t.data as ArrayBufferView;
  const size = Math.max(16, Math.ceil(src.byteLength / 16) * 16);
  const bytes = new Uint8Array(size);
  bytes.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buffer, 0, bytes);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: t.type as ort.Tensor.GpuBufferDataTypes, dims: t.dims, dispose: () => buffer.destroy() });
}

class OrtRunner implements GraphRunner {
  readonly inputs: ReadonlyMap<string, InputInfo>;
  /** Present when outputs can stay in the runtime between runs (WebGPU; WASM only when asked for). */
  readonly device?: DeviceOps;
  private steppers = new Map<string, Promise<{ session: ort.InferenceSession; stepper: Stepper }>>();

  constructor(
    private session: ort.InferenceSession,
    private backend: Backend,
    resident: boolean,
    private rt: Ort,
  ) {
    const meta = (session as { inputMetadata?: readonly { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] }[] }).inputMetadata ?? [];
    this.inputs = new Map(
      session.inputNames.map((n) => {
        const m = meta.find((x) => x.name === n);
        return [n, { type: m?.isTensor ? m.type : undefined, shape: m?.isTensor ? [...(m.shape ?? [])] : undefined }];
      }),
    );
    if (resident) this.device = this.deviceOps(backend === 'webgpu' ? 'gpu-buffer' : 'cpu');
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  run(feeds: Record<string, HostTensor>): Promise<Record<string, FloatTensor>> {
    return serialize(async () => {
      const inputs: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(feeds)) inputs[k] = toOrt(t, this.inputs.get(k)?.type, k, this.rt);
      const out = await this.session.run(inputs);
      const res: Record<string, FloatTensor> = {};
      for (const [k, t] of Object.entries(out)) {
        res[k] = await download(t);
        t.dispose();
      }
      return res;
    });
  }

  private deviceOps(location: 'gpu-buffer' | 'cpu'): DeviceOps {
    const keep = (out: Record<string, ort.Tensor>) => Object.fromEntries(Object.entries(out).map(([k, t]) => [k, new OrtDeviceTensor(t)]));
    return {
      location,
      upload: async (t, type) => {
        const host = toOrt(t, type, 'upload', this.rt);
        return new OrtDeviceTensor(location === 'gpu-buffer' ? await gpuTensor(host) : host);
      },
      run: (feeds) =>
        serialize(async () => {
          const inputs: Record<string, ort.Tensor> = {};
          for (const [k, t] of Object.entries(feeds)) inputs[k] = ortFeed(t, this.inputs.get(k)?.type, k, this.rt);
          return keep(await this.session.run(inputs));
        }),
      read: (t) => {
        if (!(t instanceof OrtDeviceTensor)) throw new Error('read: a device tensor from another runtime.');
        return download(t.tensor);
      },
      sync: async () => {
        if (location !== 'gpu-buffer') return;
        const device = (await (ort.env.webgpu as { device?: GPUDevice | Promise<GPUDevice> }).device) as GPUDevice | undefined;
        await device?.queue.onSubmittedWorkDone();
      },
      stepper: async (spec) => {
        const key = stepKey(spec);
        let made = this.steppers.get(key);
        if (!made) {
          made = this.makeStepper(spec);
          this.steppers.set(key, made);
          made.catch(() => this.steppers.delete(key));
        }
        return (await made).stepper;
      },
    };
  }

  /** The CFG + Euler graph for this shape as its own session on the same backend, outputs kept there. */
  private async makeStepper(spec: StepSpec): Promise<{ session: ort.InferenceSession; stepper: Stepper }> {
    const session = await serialize(() =>
      this.rt.InferenceSession.create(buildStepGraph(spec), {
        executionProviders: [this.backend],
        ...(this.backend === 'webgpu' ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
      }),
    );
    const scalar = (x: number) => new this.rt.Tensor('float32', Float32Array.of(x), [1]);
    const stepper: Stepper = {
      step: (latents, velocity, guidanceScale, sigma, sigmaNext, wantX0) =>
        serialize(async () => {
          const feeds: Record<string, ort.Tensor> = {
            [STEP.latents]: ortFeed(latents, 'float32', STEP.latents, this.rt),
            [STEP.velocity]: ortFeed(velocity, spec.velocityType, STEP.velocity, this.rt),
            [STEP.sigma]: scalar(sigma),
            [STEP.sigmaNext]: scalar(sigmaNext),
          };
          if (spec.cfg) feeds[STEP.guidance] = scalar(guidanceScale);
          const fetches: string[] = [STEP.next];
          if (hasModelInput(spec)) fetches.push(STEP.modelInput);
          if (wantX0) fetches.push(STEP.x0);
          const out = await session.run(feeds, fetches);
          return {
            latents: new OrtDeviceTensor(out[STEP.next]),
            modelInput: out[STEP.modelInput] ? new OrtDeviceTensor(out[STEP.modelInput]) : undefined,
            x0: out[STEP.x0] ? new OrtDeviceTensor(out[STEP.x0]) : undefined,
          };
        }),
    };
    return { session, stepper };
  }

  async dispose() {
    const steppers = [...this.steppers.values()];
    this.steppers.clear();
    for (const s of await Promise.allSettled(steppers)) if (s.status === 'fulfilled') await s.value.session.release();
    await this.session.release();
  }
}

/**
 * A graph's bytes and its external data files, each under the path the graph refers to: the bytes,
 * or (a file over 2 GB) the URL of a Blob that ORT fetches and streams in itself.
 */
export interface GraphSource {
  name: string;
  model: Uint8Array;
  externalData?: { path: string; data: Uint8Array | string }[];
}

/**
 * Create a session for one graph on the chosen backend and check its names against the contract.
 * On WebGPU every output stays a GPU buffer until read (each read is counted), and the runner
 * offers `device` ops so sampling can keep tensors there; `resident` asks for them on WASM too
 * (Node tests of that path).
 */
export async function createRunner(src: GraphSource, backend: Backend, contract: { inputs: readonly string[]; outputs: readonly string[] }, options: { resident?: boolean } = {}): Promise<GraphRunner> {
  const { name } = src;
  let session: ort.InferenceSession;
  const rt = runtimeFor(backend);
  try {
    session = await serialize(() =>
      rt.InferenceSession.create(src.model, {
        executionProviders: [backend],
        graphOptimizationLevel: 'all',
        ...(backend === 'webgpu' ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
        ...(src.externalData?.length ? { externalData: src.externalData } : {}),
      }),
    );
  } catch (e) {
    const runtime = /wasm|fetch|instantiate|memory/i.test((e as Error).message);
    throw modelError(
      `Could not open ${name} on ${backend === 'webgpu' ? 'WebGPU' : 'WASM'}: ${(e as Error).message}`,
      backend === 'webgpu'
        ? 'Press Use WASM. If WASM fails too, the file is not a valid ONNX graph: re-export it.'
        : runtime
          ? 'The WebAssembly runtime did not start: close other tabs if memory is short, then press Retry.'
          : 'The file is not a valid ONNX graph for this runtime (or its external data is missing): re-export it with training/export.py (opset 17), then press Retry.',
      backend === 'webgpu' ? 'switch-backend' : 'retry-load',
    );
  }
  const missing = contract.inputs.filter((n) => !session.inputNames.includes(n));
  const missingOut = contract.outputs.filter((n) => !session.outputNames.includes(n));
  if (missing.length || missingOut.length) {
    await session.release();
    const parts = [
      missing.length ? `missing input(s) ${missing.join(', ')} (it has ${session.inputNames.join(', ')})` : '',
      missingOut.length ? `missing output(s) ${missingOut.join(', ')} (it has ${session.outputNames.join(', ')})` : '',
    ].filter(Boolean);
    throw modelError(`${name} does not follow the graph contract: ${parts.join('; ')}.`, 'Export the graph with the names in docs/model-folder.md.');
  }
  if (backend === 'webgpu') await refuseFloat16WithoutShaderF16(session, name);
  const runner = new OrtRunner(session, backend, options.resident ?? backend === 'webgpu', rt);
  // a graph exported with batch fixed to 1 runs a batch row by row (CFG: two passes)
  return hasFixedBatchOne(runner) ? rowByRow(runner) : runner;
}

/**
 * A graph that takes or gives float16 tensors casts them on the GPU, which WebGPU does only with the
 * shader-f16 feature: without it the first run fails deep in ORT. Refuse at session creation with
 * the fix instead (in auto mode the engine then falls back to WASM).
 */
async function refuseFloat16WithoutShaderF16(session: ort.InferenceSession, name: string): Promise<void> {
  type Meta = readonly { name: string; isTensor: boolean; type?: string }[] | undefined;
  const s = session as { inputMetadata?: Meta; outputMetadata?: Meta };
  const f16 = [...(s.inputMetadata ?? []), ...(s.outputMetadata ?? [])].filter((m) => m.isTensor && m.type === 'float16').map((m) => m.name);
  if (!f16.length) return;
  const device = (await (ort.env.webgpu as { device?: unknown }).device) as GPUDevice | undefined;
  if (!device || device.features.has('shader-f16')) return;
  await session.release();
  throw modelError(
    `${name} takes and gives float16 tensors (${f16.join(', ')}), which WebGPU runs only with the shader-f16 feature, and this GPU adapter does not offer it.`,
    'Use the WASM backend (?backend=wasm), or a browser and GPU with shader-f16 (most desktop GPUs in current Chrome and Edge).',
  );
}

/** After a WebGPU session exists, ORT holds the device it really used: proof the EP ran. */
export function webgpuDeviceInUse(): boolean {
  try {
    return !!(ort.env.webgpu as { device?: unknown }).device;
  } catch {
    return false;
  }
}

const watchedDevices = new WeakSet<object>();

/**
 * Calls `onLost` once when the GPU device ORT runs on is lost (device.destroy(), a driver reset,
 * a GPU process crash). Call it after a WebGPU session exists: ORT sets `env.webgpu.device` then
 * (this build sets the device itself; others a promise of it). Returns whether a device is watched.
 */
export async function watchWebgpuDevice(onLost: (why: string) => void): Promise<boolean> {
  const held = (ort.env.webgpu as { device?: GPUDevice | Promise<GPUDevice> }).device;
  if (!held) return false;
  const device = await held;
  if (!device?.lost || watchedDevices.has(device)) return !!device?.lost;
  watchedDevices.add(device);
  void device.lost.then((info) => onLost(info.reason === 'destroyed' ? 'it was destroyed' : `the driver or GPU process reset it${info.message ? `: ${info.message}` : ''}`));
  return true;
}
