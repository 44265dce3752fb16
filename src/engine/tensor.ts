/** A plain CPU tensor: what crosses between the pipeline and a graph runner. */
export interface HostTensor {
  data: Float32Array;
  dims: number[];
}

/** Runs one ONNX graph. Implemented with onnxruntime-web in sessions.ts; the pipeline sees only this. */
export interface GraphRunner {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  dispose(): Promise<void>;
}

export const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
