import type { DeviceOps } from './device';

/** A plain CPU tensor: what crosses between the pipeline and a graph runner. */
export interface HostTensor {
  data: Float32Array | BigInt64Array;
  dims: number[];
}

/** A float32 CPU tensor (every graph output the pipeline reads is one). */
export interface FloatTensor extends HostTensor {
  data: Float32Array;
}

/** Runs one ONNX graph. Implemented with onnxruntime-web in sessions.ts; the pipeline sees only this. */
/** What a graph declares about one input (from the session; undefined where ORT does not say). */
export interface InputInfo {
  type: string | undefined;
  shape: (number | string)[] | undefined;
}

export interface GraphRunner {
  /** Inputs by name, with the dtype and shape the graph declares: feeds are converted to them. */
  readonly inputs: ReadonlyMap<string, InputInfo>;
  readonly outputNames: readonly string[];
  run(feeds: Record<string, HostTensor>): Promise<Record<string, FloatTensor>>;
  /** Runs that keep tensors in the runtime (GPU-resident sampling); absent on WASM and on wrapped runners. */
  readonly device?: DeviceOps;
  dispose(): Promise<void>;
}

/** The output `name` of a run, or an error naming what the graph gave instead. */
export function output(out: Record<string, FloatTensor>, name: string, graph: string): FloatTensor {
  const t = out[name];
  if (!t) throw new Error(`${graph} has no output "${name}" (it gave ${Object.keys(out).join(', ')}).`);
  return t;
}
