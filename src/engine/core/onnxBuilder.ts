/**
 * A small ONNX model writer: just enough of onnx.proto3 (ModelProto, GraphProto, NodeProto,
 * AttributeProto, ValueInfoProto) to build elementwise graphs in code, such as the CFG + Euler step
 * that runs beside the transformer on WebGPU (stepGraph.ts). No weights, no sub-graphs.
 */

/** onnx.TensorProto.DataType of the element types these graphs use. */
export const ELEM_TYPE = { float32: 1, int64: 7, float16: 10 } as const;
export type ElemType = keyof typeof ELEM_TYPE;

const utf8 = new TextEncoder();

/** Protobuf wire format, written field by field into a growing byte list. */
class Writer {
  private bytes: number[] = [];

  private varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot write ${v} as a varint`);
    while (v >= 0x80) {
      this.bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.bytes.push(v);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, v: number): this {
    this.tag(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.bytes.push(...b);
    return this;
  }

  raw(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.raw(field, utf8.encode(s));
  }

  message(field: number, m: Writer): this {
    return this.raw(field, m.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

export type AttributeValue = { int: number } | { float: number } | { ints: number[] };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
}

export interface ValueSpec {
  name: string;
  type: ElemType;
  /** Fixed sizes, or names for symbolic dimensions. */
  shape: (number | string)[];
}

export interface GraphSpec {
  name: string;
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  /** The default-domain opset the nodes are written for. */
  opset: number;
}

// onnx.AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

function attribute(name: string, v: AttributeValue): Writer {
  const a = new Writer().string(1, name);
  if ('int' in v) return a.int(3, v.int).int(20, ATTR_INT);
  if ('float' in v) return a.float(2, v.float).int(20, ATTR_FLOAT);
  for (const i of v.ints) a.int(8, i);
  return a.int(20, ATTR_INTS);
}

function valueInfo(v: ValueSpec): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
  const tensorType = new Writer().int(1, ELEM_TYPE[v.type]).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

/** The bytes of an ONNX ModelProto (IR version 8) holding one graph. */
export function buildModel(g: GraphSpec): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, i) => {
    const node = new Writer();
    for (const x of n.inputs) node.string(1, x);
    for (const y of n.outputs) node.string(2, y);
    node.string(3, `${n.op}_${i}`).string(4, n.op);
    for (const [k, v] of Object.entries(n.attributes ?? {})) node.message(5, attribute(k, v));
    graph.message(1, node);
  });
  graph.string(2, g.name);
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  return new Writer()
    .int(1, 8) // ir_version
    .string(2, 'webdit')
    .message(7, graph)
    .message(8, new Writer().string(1, '').int(2, g.opset))
    .finish();
}
