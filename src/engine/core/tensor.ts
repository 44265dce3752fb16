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
export interface GraphRunner {
  run(feeds: Record<string, HostTensor>): Promise<Record<string, FloatTensor>>;
  dispose(): Promise<void>;
}

/** The output `name` of a run, or an error naming what the graph gave instead. */
export function output(out: Record<string, FloatTensor>, name: string, graph: string): FloatTensor {
  const t = out[name];
  if (!t) throw new Error(`${graph} has no output "${name}" (it gave ${Object.keys(out).join(', ')}).`);
  return t;
}
