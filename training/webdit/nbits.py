"""Browser-ready ONNX graphs, written one tensor at a time: MatMul/Gemm weights as onnxruntime's 4-bit
`com.microsoft.MatMulNBits`, the other large float32 weights stored as float16, every large tensor in
external-data shards under a size limit. Used by training/convert_sd3.py; read it for the command.

MatMulNBits (onnxruntime docs/ContribOperators.md, domain com.microsoft, opset 1):
    attributes  K, N (required), bits (default 4), block_size (required: a power of two >= 16)
    inputs      A       T1 [..., K]                     (float or float16: stays the graph's float32)
                B       uint8 [N, k_blocks, block_size * bits / 8], k_blocks = ceil(K / block_size);
                        along K, packed low bits first (4 bits: element 2i in the low nibble of byte i)
                scales  T1 [N, k_blocks]
                zero_points  uint8 [N, ceil(k_blocks * bits / 8)], packed the same way (optional:
                        2^(bits-1) = 8 without it)
    output      Y = A @ W where W[k, n] = (B[n, k] - zero_point[n, k / block_size]) * scales[n, k / block_size]

Our quantiser (written here; no onnxruntime quantisation tool involved), per block of `block_size`
weights along K of one output column: asymmetric, with a zero point.
    lo = min(0, min w), hi = max(0, max w)          (0 is always representable)
    s  = (hi - lo) / 15, rounded to the stored scale dtype and then up, never down (so [lo, hi] fits)
    zp = round(-lo / s) in [0, 15],  q = clip(round(w / s) + zp, 0, 15)
so every dequantised weight is within s / 2 of the original: |w - (q - zp) s| <= (hi - lo) / 30. A
symmetric scheme (no zero points, s = max|w| / 7 or the signed-extreme /8 trick) has twice that step
or clips one end; the zero points cost 4 bits per block (0.125 bit per weight at block 32).
A K that is not a multiple of block_size is zero-padded in its last block.

Scales are stored in the compute dtype; for a float32 graph with `fp16=True` they are stored as float16
and decoded by a Cast (below), as the other weights. Gemm (transA 0, alpha 1, beta 1) becomes
MatMulNBits (+ Add for C); transB picks the layout. A weight reached through Cast(initializer) (fp16
weights decoded at the top of the graph) counts as a constant. MatMuls whose weight has K or N below
`min_size` stay as they are.

fp16 storage: a float32 initializer with at least `fp16_min_elements` elements whose values all fit
float16 (finite, |x| <= 65504, worst rounding error <= 2^-10 of its largest value) is stored as float16
`<name>::fp16` with a Cast(to=float) named `<name>` in front of the graph. onnxruntime constant-folds
those Casts when the session is created (WASM and WebGPU alike), so inputs, outputs and all compute stay
float32; the small tensors left float32 are norms' scales, attention masks built from -inf or float32's
lowest value, epsilons and shape constants.

Streaming: the graph is loaded without its external data; each tensor is read from its file in slabs
(np.fromfile, never the whole file) and written at once into the current shard, so memory holds the
graph's structure, one weight's 4-bit output (1/8 of its float32 bytes) and a few slabs of `work_bytes`.
"""
import os
from collections import defaultdict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS_DOMAIN = "com.microsoft"
FP16_MAX = 65504.0
FP16_REL_TOL = 2.0 ** -10
FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)
_NP = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64,
       TensorProto.INT64: np.int64, TensorProto.INT32: np.int32, TensorProto.INT16: np.int16,
       TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8, TensorProto.UINT16: np.uint16,
       TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_}


class ConvertError(ValueError):
    """A graph or its external data that cannot be converted; the message says what and what to do."""


def np_dtype(elem_type, what="tensor"):
    if elem_type not in _NP:
        raise ConvertError(f"{what}: ONNX element type {elem_type} ({TensorProto.DataType.Name(elem_type)}) is not supported by the converter.")
    return np.dtype(_NP[elem_type])


# ---- the quantiser ----------------------------------------------------------------------------
def _scales_up(s, dtype):
    """s (float32) in `dtype`, rounded up where rounding went down, so that lo..hi still fits 15 steps."""
    out = s.astype(dtype)
    low = out.astype(np.float32) < s
    if low.any():
        out[low] = np.nextafter(out[low], np.array(np.inf, dtype))
    return out


def quantize_blocks(wt, block_size=32, scale_dtype=np.float32):
    """wt: float [N, K] (one row per output; the transposed MatMul weight). Returns 4-bit codes
    uint8 [N, k_blocks, block_size] (unpacked), scales [N, k_blocks] in scale_dtype and zero points
    uint8 [N, k_blocks] (unpacked)."""
    wt = np.asarray(wt, dtype=np.float32)
    n, k = wt.shape
    kb = -(-k // block_size)
    if kb * block_size != k:
        wt = np.pad(wt, ((0, 0), (0, kb * block_size - k)))
    w = wt.reshape(n, kb, block_size)
    lo = np.minimum(w.min(axis=2), 0.0)
    hi = np.maximum(w.max(axis=2), 0.0)
    scales = _scales_up(((hi - lo) / 15.0).astype(np.float32), scale_dtype)
    s = scales.astype(np.float32)
    safe = np.where(s > 0, s, np.float32(1.0))
    zp = np.clip(np.round(-lo / safe), 0, 15)
    x = w / safe[..., None]          # in place from here: one float32 slab besides w
    np.round(x, out=x)
    x += zp[..., None]
    np.clip(x, 0, 15, out=x)
    return x.astype(np.uint8), scales, zp.astype(np.uint8)


def pack_nibbles(q):
    """uint8 codes 0..15, last axis even -> bytes, element 2i in the low nibble of byte i."""
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def unpack_nibbles(b):
    out = np.empty(b.shape[:-1] + (b.shape[-1] * 2,), np.uint8)
    out[..., 0::2] = b & 15
    out[..., 1::2] = b >> 4
    return out


def pack_zero_points(zp):
    """[N, k_blocks] -> [N, ceil(k_blocks / 2)] (an odd count is padded with one 0 nibble)."""
    if zp.shape[1] % 2:
        zp = np.pad(zp, ((0, 0), (0, 1)))
    return pack_nibbles(zp)


def dequantize(b, scales, zero_points, k):
    """MatMulNBits' weight from its inputs: B [N, k_blocks, block_size/2], scales [N, k_blocks], packed
    zero points [N, ceil(k_blocks/2)] -> float32 [N, K] (the transposed MatMul weight)."""
    n, kb, _ = b.shape
    q = unpack_nibbles(b).astype(np.float32)
    zp = unpack_nibbles(zero_points)[:, :kb].astype(np.float32)
    w = (q - zp[..., None]) * scales.astype(np.float32)[..., None]
    return w.reshape(n, -1)[:, :k]


# ---- reading tensors one at a time ------------------------------------------------------------
def _external(t):
    return {e.key: e.value for e in t.external_data}


def external_location(t):
    """The file an externally stored tensor names (relative to its graph's folder)."""
    return _external(t).get("location")


def tensor_nbytes(t):
    return int(np.prod(t.dims, dtype=np.int64)) * np_dtype(t.data_type, t.name).itemsize


class Reader:
    """Reads a graph's tensors from their external-data files (relative to base_dir) or from the
    proto, in slabs of elements; checks that each external range exists."""

    def __init__(self, base_dir):
        self.base = base_dir
        self._last = (None, None)

    def _inline(self, t):
        """A tensor held in the proto, flattened (the last one kept: it is read slab by slab)."""
        if self._last[0] is not t:
            self._last = (t, numpy_helper.to_array(t).reshape(-1))
        return self._last[1]

    def read(self, t, start=0, count=None):
        """Elements [start, start + count) of the flattened tensor, as a 1-D numpy array."""
        dtype = np_dtype(t.data_type, t.name)
        total = int(np.prod(t.dims, dtype=np.int64))
        count = total - start if count is None else count
        if t.data_location != TensorProto.EXTERNAL:
            return self._inline(t)[start:start + count]
        ext = _external(t)
        if "location" not in ext:
            raise ConvertError(f"tensor {t.name} is stored externally but names no file (no 'location').")
        path = os.path.join(self.base, ext["location"])
        offset = int(ext.get("offset", 0))
        length = int(ext.get("length", total * dtype.itemsize))
        if length != total * dtype.itemsize:
            raise ConvertError(f"tensor {t.name} {list(t.dims)} needs {total * dtype.itemsize} bytes but its external data says {length}.")
        if not os.path.isfile(path):
            raise ConvertError(f"tensor {t.name} is in {ext['location']}, which is missing next to the graph: copy the export's external data files too.")
        if os.path.getsize(path) < offset + length:
            raise ConvertError(f"{ext['location']} is truncated: tensor {t.name} needs bytes {offset}..{offset + length}, the file has {os.path.getsize(path)}. Download it again.")
        with open(path, "rb") as f:
            return np.fromfile(f, dtype=dtype, count=count, offset=offset + start * dtype.itemsize)

    def rows(self, t, r0, r1):
        """Rows [r0, r1) of a 2-D tensor."""
        cols = int(t.dims[1])
        return self.read(t, r0 * cols, (r1 - r0) * cols).reshape(r1 - r0, cols)

    def chunks(self, t, elems):
        total = int(np.prod(t.dims, dtype=np.int64))
        for s in range(0, total, elems):
            yield self.read(t, s, min(elems, total - s))


# ---- writing: shards of external data ----------------------------------------------------------
class ShardWriter:
    """Appends tensors to <stem>, <stem>_1, <stem>_2, ... beside the graph, each at most max_bytes."""

    ALIGN = 64

    def __init__(self, out_dir, stem, max_bytes):
        self.dir, self.stem, self.max = out_dir, stem, int(max_bytes)
        self.files = []   # [name, bytes]
        self.f = None

    def _open(self):
        if self.f:
            self.f.close()
        name = self.stem if not self.files else f"{self.stem}_{len(self.files)}"
        self.f = open(os.path.join(self.dir, name), "wb")
        self.files.append([name, 0])

    def put(self, t, chunks, nbytes):
        """Write `chunks` (arrays whose bytes, in order, are the tensor's nbytes) and point t at them."""
        if nbytes > self.max:
            raise ConvertError(f"tensor {t.name} has {nbytes} bytes, more than a shard may hold ({self.max}): raise --shard-bytes above it.")
        pad = -self.files[-1][1] % self.ALIGN if self.files else 0
        if self.f is None or self.files[-1][1] + pad + nbytes > self.max:
            self._open()
            pad = 0
        self.f.write(b"\0" * pad)
        offset = self.files[-1][1] + pad
        written = 0
        for c in chunks:
            b = np.ascontiguousarray(c).tobytes()
            self.f.write(b)
            written += len(b)
        if written != nbytes:
            raise AssertionError(f"{t.name}: wrote {written} bytes, expected {nbytes}")
        self.files[-1][1] = offset + nbytes
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
            t.ClearField(field)
        del t.external_data[:]
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.files[-1][0]), ("offset", str(offset)), ("length", str(nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v

    def close(self):
        if self.f:
            self.f.close()
            self.f = None
        return [tuple(f) for f in self.files]


# ---- graph walking -----------------------------------------------------------------------------
def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _subgraphs(node):
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            yield from a.graphs


def _used_names(graph):
    """Every name read by a node of graph or of its subgraphs (outer-scope references included)."""
    used = set()
    for n in graph.node:
        used.update(x for x in n.input if x)
        for sg in _subgraphs(n):
            used |= _used_names(sg)
    used.update(o.name for o in graph.output)
    return used


def attribute_tensors(graph):
    """Tensors held in node attributes (Constant values, ...), subgraphs' initializers included."""
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t
            elif a.type == onnx.AttributeProto.TENSORS:
                yield from a.tensors
        for sg in _subgraphs(n):
            yield from sg.initializer
            yield from attribute_tensors(sg)


def _fp16_fits(reader, t, work_elems):
    """Whether a float32 tensor is safe as float16: finite, in range, rounding <= 2^-10 of max|x|."""
    amax, err = 0.0, 0.0
    for c in reader.chunks(t, work_elems):
        c = c.astype(np.float32, copy=False)
        if not np.isfinite(c).all():
            return False
        m = float(np.abs(c).max()) if c.size else 0.0
        if m > FP16_MAX:
            return False
        amax = max(amax, m)
        err = max(err, float(np.abs(c.astype(np.float16).astype(np.float32) - c).max()) if c.size else 0.0)
    return err <= FP16_REL_TOL * amax


# ---- the conversion of one graph --------------------------------------------------------------
def convert_graph(src, dst, *, quantize=True, block_size=32, min_size=256, fp16=True, fp16_min_elements=1024,
                  shard_bytes=2_000_000_000, external_min_bytes=1024, work_bytes=8 << 20):
    """Rewrite the graph file `src` (with its external data beside it) as `dst` + shards
    `<basename(dst)>_data`, `_data_1`, ... in dst's folder. Returns a dict of what was done."""
    if block_size < 16 or block_size & (block_size - 1):
        raise ConvertError(f"block_size must be a power of two >= 16 (MatMulNBits), not {block_size}.")
    src_dir, dst_dir = os.path.dirname(os.path.abspath(src)), os.path.dirname(os.path.abspath(dst))
    model = onnx.load(src, load_external_data=False)
    g = model.graph
    reader = Reader(src_dir)
    work_elems = max(1, work_bytes // 4)
    inits = {t.name: t for t in g.initializer}
    graph_inputs = {i.name for i in g.input}
    producers = {o: n for n in g.node for o in n.output}
    writer = ShardWriter(dst_dir, os.path.basename(dst) + "_data", shard_bytes)
    prologue, new_inits = [], []
    stats = {"matmuls": 0, "quantized": 0, "quantized_weights": 0, "too_small": 0, "not_convertible": 0,
             "fp16_tensors": 0, "fp32_tensors_kept": 0, "params_quantized": 0}

    def const_weight(name):
        """(initializer, compute elem type) when `name` is a constant 2-D float matrix."""
        if name in graph_inputs:
            return None
        if name in inits:
            t = inits[name]
            return (t, t.data_type) if t.data_type in FLOATS and len(t.dims) == 2 else None
        p = producers.get(name)
        if p is not None and p.op_type == "Cast" and p.input[0] in inits and p.input[0] not in graph_inputs:
            t, to = inits[p.input[0]], _attr(p, "to")
            if t.data_type in FLOATS and to in FLOATS and len(t.dims) == 2:
                return t, to
        return None

    done = {}

    def quantized(t, layout, t1):
        """Initializer names (B, scales, zero points) of weight t quantised; written once per weight."""
        key = (t.name, layout, t1)
        if key in done:
            return done[key]
        rows, cols = int(t.dims[0]), int(t.dims[1])
        k, n = (rows, cols) if layout == "KN" else (cols, rows)
        kb = -(-k // block_size)
        codes = np.empty((n, kb, block_size // 2), np.uint8)
        scale_np = np.float16 if t1 == TensorProto.FLOAT16 or fp16 else np.float32
        scales = np.empty((n, kb), scale_np)
        zps = np.empty((n, kb), np.uint8)
        if layout == "KN":   # W [K, N]: slabs of whole blocks along K
            step = max(block_size, (work_elems // max(n, 1)) // block_size * block_size)
            for k0 in range(0, k, step):
                k1 = min(k, k0 + step)
                q, s, z = quantize_blocks(reader.rows(t, k0, k1).T, block_size, scale_np)
                b0, b1 = k0 // block_size, k0 // block_size + q.shape[1]
                codes[:, b0:b1], scales[:, b0:b1], zps[:, b0:b1] = pack_nibbles(q), s, z
        else:                # W [N, K] (Gemm transB=1): slabs of whole rows
            step = max(1, work_elems // max(k, 1))
            for n0 in range(0, n, step):
                n1 = min(n, n0 + step)
                q, s, z = quantize_blocks(reader.rows(t, n0, n1), block_size, scale_np)
                codes[n0:n1], scales[n0:n1], zps[n0:n1] = pack_nibbles(q), s, z
        base = f"{t.name}::q4" + ("" if layout == "KN" else "t")
        names = (base, base + "_scales", base + "_zero_points")
        for name, arr in ((names[0], codes), (names[2], pack_zero_points(zps))):
            new_inits.append(_external_tensor(writer, name, arr, external_min_bytes))
        if t1 == TensorProto.FLOAT and scale_np == np.float16:   # stored fp16, decoded to the compute dtype
            new_inits.append(_external_tensor(writer, names[1] + "::fp16", scales, external_min_bytes))
            prologue.append(helper.make_node("Cast", [names[1] + "::fp16"], [names[1]], to=TensorProto.FLOAT, name=names[1] + "::decode"))
        else:
            new_inits.append(_external_tensor(writer, names[1], scales, external_min_bytes))
        stats["quantized_weights"] += 1
        stats["params_quantized"] += k * n
        done[key] = (names, k, n)
        return done[key]

    nodes = []
    for node in g.node:
        if node.op_type not in ("MatMul", "Gemm") or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        w = const_weight(node.input[1])
        if w is None:
            nodes.append(node)
            continue
        stats["matmuls"] += 1
        t, t1 = w
        layout, bias = "KN", None
        if node.op_type == "Gemm":
            has_c = len(node.input) > 2 and node.input[2]
            if _attr(node, "transA", 0) or _attr(node, "alpha", 1.0) != 1.0 or (has_c and _attr(node, "beta", 1.0) != 1.0):
                stats["not_convertible"] += 1
                nodes.append(node)
                continue
            layout = "NK" if _attr(node, "transB", 0) else "KN"
            bias = node.input[2] if has_c else None
        k, n = (int(t.dims[0]), int(t.dims[1])) if layout == "KN" else (int(t.dims[1]), int(t.dims[0]))
        if not quantize or k < min_size or n < min_size:
            stats["too_small" if quantize else "not_convertible"] += 1
            nodes.append(node)
            continue
        (b, s, z), k, n = quantized(t, layout, t1)
        out = node.output[0] if bias is None else node.output[0] + "::nobias"
        nodes.append(helper.make_node("MatMulNBits", [node.input[0], b, s, z], [out], domain=MS_DOMAIN,
                                      name=(node.name or node.output[0]) + "::q4", K=k, N=n, bits=4, block_size=block_size))
        if bias is not None:
            nodes.append(helper.make_node("Add", [out, bias], [node.output[0]], name=(node.name or node.output[0]) + "::bias"))
        stats["quantized"] += 1

    # Casts of a weight that no node reads any more, then initializers nobody reads
    used = _used_names(_graph_with(g, prologue + nodes))
    nodes = [n for n in nodes if not (n.op_type == "Cast" and n.output[0] not in used and n.input[0] in inits)]
    used = _used_names(_graph_with(g, prologue + nodes))
    kept = [t for t in g.initializer if t.name in used or t.name in graph_inputs]
    stats["dropped_initializers"] = len(g.initializer) - len(kept)

    # the remaining initializers: fp16 storage where safe, then into the shards (or inline if small)
    final = []
    for t in kept:
        count = int(np.prod(t.dims, dtype=np.int64))
        if (fp16 and t.data_type == TensorProto.FLOAT and count >= fp16_min_elements and t.name not in graph_inputs
                and _fp16_fits(reader, t, work_elems)):
            h = TensorProto()
            h.name, h.data_type = t.name + "::fp16", TensorProto.FLOAT16
            h.dims.extend(t.dims)
            _place(writer, h, (c.astype(np.float16) for c in reader.chunks(t, work_elems)), count * 2, external_min_bytes)
            prologue.append(helper.make_node("Cast", [h.name], [t.name], to=TensorProto.FLOAT, name=t.name + "::decode"))
            final.append(h)
            stats["fp16_tensors"] += 1
        else:
            if t.data_type == TensorProto.FLOAT:
                stats["fp32_tensors_kept"] += 1
            _relocate(writer, reader, t, work_elems, external_min_bytes)
            final.append(t)
    for t in attribute_tensors(g):  # Constant values stored externally (optimum's convert_attribute)
        if t.data_location == TensorProto.EXTERNAL:
            _relocate(writer, reader, t, work_elems, external_min_bytes)

    del g.initializer[:]
    g.initializer.extend(final + new_inits)
    del g.node[:]
    g.node.extend(prologue + nodes)
    if stats["quantized"] and not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    stats["shards"] = writer.close()
    with open(dst, "wb") as f:
        f.write(model.SerializeToString())
    onnx.checker.check_model(dst)
    stats["graph_bytes"] = os.path.getsize(dst)
    return stats


def _graph_with(g, nodes):
    h = onnx.GraphProto()
    h.node.extend(nodes)
    h.output.extend(g.output)
    return h


def _place(writer, t, chunks, nbytes, external_min_bytes):
    """Tensor bytes into a shard, or inline (raw_data) when small."""
    if nbytes >= external_min_bytes:
        writer.put(t, chunks, nbytes)
    else:
        t.data_location = TensorProto.DEFAULT
        del t.external_data[:]
        t.raw_data = b"".join(np.ascontiguousarray(c).tobytes() for c in chunks)


def _external_tensor(writer, name, arr, external_min_bytes=0):
    t = TensorProto()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") \
        else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype]
    t.dims.extend(arr.shape)
    _place(writer, t, [arr], arr.nbytes, external_min_bytes)
    return t


def _relocate(writer, reader, t, work_elems, external_min_bytes):
    """An unchanged tensor: its bytes into a shard, or inline when small."""
    if t.data_type == TensorProto.STRING:
        return
    nbytes = tensor_nbytes(t)
    if t.data_location != TensorProto.EXTERNAL and nbytes < external_min_bytes:
        return   # stays inline as it is
    _place(writer, t, list(reader.chunks(t, work_elems)) if nbytes < external_min_bytes else reader.chunks(t, work_elems),
           nbytes, external_min_bytes)
