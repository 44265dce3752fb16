/**
 * Tensors that stay inside the runtime between graph runs (on WebGPU: in GPU memory), and the
 * counters that prove it. No ORT here: sessions.ts implements DeviceOps, pipeline.ts and
 * deviceSampling.ts drive it.
 */
import type { StepSpec } from './stepGraph';
import type { FloatTensor, HostTensor } from './tensor';

/** A tensor held by the runtime (a GPU buffer on WebGPU). Dispose it when done: nothing else frees it. */
export interface DeviceTensor {
  readonly dims: readonly number[];
  /** Element type ('float32', 'float16', ...). */
  readonly type: string;
  dispose(): void;
}

export type Feed = HostTensor | DeviceTensor;

export function isDeviceTensor(t: Feed): t is DeviceTensor {
  return !('data' in t);
}

/** CFG + Euler for one shape, run where the tensors are. */
export interface Stepper {
  /** One step; `x0` (the preview) only when asked for. The inputs stay owned by the caller. */
  step(latents: DeviceTensor, velocity: DeviceTensor, guidanceScale: number, sigma: number, sigmaNext: number, wantX0: boolean): Promise<{ latents: DeviceTensor; modelInput?: DeviceTensor; x0?: DeviceTensor }>;
}

/** What a graph runner offers when its tensors can stay in the runtime between runs. */
export interface DeviceOps {
  /** 'gpu-buffer' on WebGPU; 'cpu' where the runtime's tensors live in main memory (WASM, Node tests). */
  readonly location: 'gpu-buffer' | 'cpu';
  /** A host tensor into the runtime, as `type` (float16 converted). */
  upload(t: HostTensor, type?: string): Promise<DeviceTensor>;
  /** This graph, with every output kept in the runtime. */
  run(feeds: Record<string, Feed>): Promise<Record<string, DeviceTensor>>;
  /** A tensor back to the host, as float32 (a GPU -> CPU read on WebGPU: counted). */
  read(t: DeviceTensor): Promise<FloatTensor>;
  /**
   * Resolves when the device has finished the work submitted so far (no data moves). Runs on
   * WebGPU return once their work is queued: without this a step's progress event would time the
   * submission, and the whole loop would wait in the final read.
   */
  sync(): Promise<void>;
  /** The CFG + Euler step for this shape, on the same device (made once per shape, freed with the runner). */
  stepper(spec: StepSpec): Promise<Stepper>;
}

/**
 * GPU traffic since the page started: reads of GPU tensors back to the CPU, and device tensors the
 * engine holds now (uploads and kept outputs not yet disposed). Reported with each image.
 */
export const gpuTraffic = { readbacks: 0, liveTensors: 0 };
