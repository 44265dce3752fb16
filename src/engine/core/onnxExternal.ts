/**
 * The external data files an ONNX graph refers to, read from its protobuf: every TensorProto with
 * `external_data` {key "location"} among the graph's initializers and its nodes' attribute tensors
 * (sub-graphs included). Only those fields are decoded; weights stored inline are skipped by length,
 * so this costs one pass over the graph bytes. ORT needs each file under exactly this path.
 */

/** Field numbers of onnx.proto3 (ModelProto.graph, GraphProto.node/initializer, ...). */
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_ATTRIBUTE = 5;
const ATTR_T = 5;
const ATTR_G = 6;
const ATTR_TENSORS = 10;
const ATTR_GRAPHS = 11;
const ATTR_SPARSE_TENSOR = 22;
const ATTR_SPARSE_TENSORS = 23;
const SPARSE_VALUES = 1;
const SPARSE_INDICES = 2;
const TENSOR_EXTERNAL_DATA = 13;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;

class Reader {
  pos: number;
  constructor(
    private buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error('varint too long');
    }
  }

  /** Each field as [number, start, end] (length-delimited) or [number, -1, -1] (skipped scalars). */
  *fields(): Generator<[number, number, number]> {
    while (this.pos < this.end) {
      const tag = this.varint();
      const field = Math.floor(tag / 8);
      switch (tag % 8) {
        case 0:
          this.varint();
          yield [field, -1, -1];
          break;
        case 1:
          this.pos += 8;
          yield [field, -1, -1];
          break;
        case 2: {
          const len = this.varint();
          const start = this.pos;
          this.pos += len;
          if (this.pos > this.end) throw new Error('field runs past its message');
          yield [field, start, this.pos];
          break;
        }
        case 5:
          this.pos += 4;
          yield [field, -1, -1];
          break;
        default:
          throw new Error(`unsupported wire type ${tag % 8}`);
      }
    }
  }
}

/** The `location` of every externally stored tensor of an ONNX model, in order, each once. */
export function externalDataPaths(model: Uint8Array): string[] {
  const found = new Set<string>();
  const utf8 = new TextDecoder();
  const sub = (s: number, e: number) => new Reader(model, s, e);

  const tensor = (r: Reader) => {
    for (const [f, s, e] of r.fields()) {
      if (f !== TENSOR_EXTERNAL_DATA || s < 0) continue;
      let key = '';
      let value = '';
      for (const [ef, es, ee] of sub(s, e).fields()) {
        if (ef === ENTRY_KEY && es >= 0) key = utf8.decode(model.subarray(es, ee));
        if (ef === ENTRY_VALUE && es >= 0) value = utf8.decode(model.subarray(es, ee));
      }
      if (key === 'location' && value) found.add(value);
    }
  };
  const sparse = (r: Reader) => {
    for (const [f, s, e] of r.fields()) if ((f === SPARSE_VALUES || f === SPARSE_INDICES) && s >= 0) tensor(sub(s, e));
  };
  const graph = (r: Reader): void => {
    for (const [f, s, e] of r.fields()) {
      if (s < 0) continue;
      if (f === GRAPH_INITIALIZER) tensor(sub(s, e));
      else if (f === GRAPH_SPARSE_INITIALIZER) sparse(sub(s, e));
      else if (f === GRAPH_NODE) {
        for (const [nf, ns, ne] of sub(s, e).fields()) {
          if (nf !== NODE_ATTRIBUTE || ns < 0) continue;
          for (const [af, as, ae] of sub(ns, ne).fields()) {
            if (as < 0) continue;
            if (af === ATTR_T || af === ATTR_TENSORS) tensor(sub(as, ae));
            else if (af === ATTR_G || af === ATTR_GRAPHS) graph(sub(as, ae));
            else if (af === ATTR_SPARSE_TENSOR || af === ATTR_SPARSE_TENSORS) sparse(sub(as, ae));
          }
        }
      }
    }
  };
  for (const [f, s, e] of sub(0, model.length).fields()) if (f === MODEL_GRAPH && s >= 0) graph(sub(s, e));
  return [...found];
}
