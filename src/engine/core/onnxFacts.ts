/**
 * What preflight needs to know of an ONNX graph before its weights are downloaded, read from the
 * graph's protobuf alone (a graph with external data is a small file): its largest initializer in
 * bytes (external ones by their `length` entry, inline ones by their data field) and the inputs and
 * outputs it declares as float16. Only those fields are decoded; everything else is skipped by length.
 */

// onnx.proto3 field numbers
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const VALUE_INFO_NAME = 1;
const VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_TYPE_ELEM = 1;
const TENSOR_DIMS = 1;
const TENSOR_DATA_TYPE = 2;
const TENSOR_EXTERNAL_DATA = 13;
// float_data, int32_data, string_data, int64_data, raw_data, double_data, uint64_data (packed: bytes = field length)
const TENSOR_DATA_FIELDS = new Set([4, 5, 6, 7, 9, 10, 11]);
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
export const FLOAT16 = 10;

/** Bytes per element of ONNX TensorProto data types (0: unknown / variable). */
const ELEM_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2, 21: 0.5, 22: 0.5 };

type Field = { field: number; value: number; start: number; end: number };

function* fields(buf: Uint8Array, start: number, end: number): Generator<Field> {
  let pos = start;
  const varint = () => {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (pos >= end) throw new Error('truncated varint');
      const b = buf[pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error('varint too long');
    }
  };
  while (pos < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        yield { field, value: varint(), start: -1, end: -1 };
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint();
        const s = pos;
        pos += len;
        if (pos > end) throw new Error('field runs past its message');
        yield { field, value: len, start: s, end: pos };
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${tag % 8}`);
    }
  }
}

export interface GraphFacts {
  /** Bytes of the largest initializer (weights), inline or external. */
  largestInitializer: number;
  /** Inputs and outputs declared float16. */
  float16Io: string[];
}

/** Packed repeated varints (TensorProto.dims), or the values of unpacked ones. */
function dimsOf(buf: Uint8Array, f: Field): number[] {
  return f.start < 0 ? [f.value] : readPacked(buf, f.start, f.end);
}

function readPacked(buf: Uint8Array, start: number, end: number): number[] {
  const out: number[] = [];
  let pos = start;
  while (pos < end) {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = buf[pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    out.push(result);
  }
  return out;
}

function tensorBytes(buf: Uint8Array, start: number, end: number): number {
  const utf8 = new TextDecoder();
  const dims: number[] = [];
  let type = 0;
  let inline = 0;
  let external: number | null = null;
  for (const f of fields(buf, start, end)) {
    if (f.field === TENSOR_DIMS) dims.push(...dimsOf(buf, f));
    else if (f.field === TENSOR_DATA_TYPE && f.start < 0) type = f.value;
    else if (f.field === TENSOR_EXTERNAL_DATA && f.start >= 0) {
      let key = '';
      let value = '';
      for (const e of fields(buf, f.start, f.end)) {
        if (e.field === ENTRY_KEY && e.start >= 0) key = utf8.decode(buf.subarray(e.start, e.end));
        if (e.field === ENTRY_VALUE && e.start >= 0) value = utf8.decode(buf.subarray(e.start, e.end));
      }
      if (key === 'length' && /^\d+$/.test(value)) external = Number(value);
    } else if (f.start >= 0 && TENSOR_DATA_FIELDS.has(f.field)) inline = Math.max(inline, f.value);
  }
  // elements x element size where the type is known (packed varints are not the tensor's size); else what the data takes
  if (ELEM_BYTES[type]) return Math.ceil(dims.reduce((a, b) => a * b, 1) * ELEM_BYTES[type]);
  return Math.max(external ?? 0, inline);
}

function valueInfo(buf: Uint8Array, start: number, end: number): { name: string; elem: number } {
  let name = '';
  let elem = 0;
  for (const f of fields(buf, start, end)) {
    if (f.field === VALUE_INFO_NAME && f.start >= 0) name = new TextDecoder().decode(buf.subarray(f.start, f.end));
    if (f.field === VALUE_INFO_TYPE && f.start >= 0) {
      for (const t of fields(buf, f.start, f.end)) {
        if (t.field !== TYPE_TENSOR || t.start < 0) continue;
        for (const e of fields(buf, t.start, t.end)) if (e.field === TENSOR_TYPE_ELEM && e.start < 0) elem = e.value;
      }
    }
  }
  return { name, elem };
}

/** The facts of one graph (top-level initializers and I/O; sub-graphs hold no weights that matter here). */
export function graphFacts(model: Uint8Array): GraphFacts {
  let largestInitializer = 0;
  const float16Io: string[] = [];
  for (const m of fields(model, 0, model.length)) {
    if (m.field !== MODEL_GRAPH || m.start < 0) continue;
    for (const g of fields(model, m.start, m.end)) {
      if (g.start < 0) continue;
      if (g.field === GRAPH_INITIALIZER) largestInitializer = Math.max(largestInitializer, tensorBytes(model, g.start, g.end));
      else if (g.field === GRAPH_INPUT || g.field === GRAPH_OUTPUT) {
        const v = valueInfo(model, g.start, g.end);
        if (v.elem === FLOAT16) float16Io.push(v.name);
      }
    }
  }
  return { largestInitializer, float16Io };
}
