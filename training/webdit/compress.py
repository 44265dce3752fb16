"""Smaller graphs: large float32 initializers stored as float16, or as int8 with one float32 scale per
output channel / row, each followed by the nodes that turn it back into the float32 tensor under its
original name. Every consumer, the graph's inputs and outputs and all compute stay float32.

    stored as        nodes                                       = the float32 tensor N
    fp16             Cast(N::fp16 -> float)                       exact value of the fp16 number
    int8 (castmul)   Mul(Cast(N::int8 -> float), N::scale)        q * s, one float32 multiply
    int8 (dq)        DequantizeLinear(N::int8, N::scale, axis)    the same value, as an ONNX QDQ op

The decoders' inputs are all initializers, so onnxruntime's constant folding (a basic optimisation,
run before the graph is split between execution providers, so on WASM and WebGPU alike) replaces them
at session creation by the float32 tensor: the optimised graph is the fp32 graph with rounded weights
and runs at the same speed. `castmul` is the default because onnxruntime does NOT fold
DequantizeLinear (it keeps QDQ nodes for its quantized kernels; onnxruntime-node even rewrites
DequantizeLinear -> MatMul into MatMulNBits, a different kernel), which costs time at every run.

Scales are symmetric (zero point 0): s = max|w| / 127 over the channel, q = round(w / s) in
[-127, 127]. The axis is the one a consumer reads per output: Gather's table per row (token),
MatMul's B per column, Gemm's B per output (row with transB), Conv's weight per output channel.

`inflate` undoes the storage (the exact float32 values onnxruntime computes); `compress` inflates
first and keeps any tensor already stored the requested way as it is, so it is idempotent.
"""
import json
import os
import shutil
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP32, FP16, INT8 = "fp32", "fp16", "int8"
SUFFIX = {"fp16": "::fp16", "int8": "::int8", "scale": "::scale", "int8f": "::int8_f32"}
META_KEY = "webdit.weight_storage"


# ---- what is stored, and how to read it back --------------------------------------------------
@dataclass
class Stored:
    name: str            # the float32 tensor the decoder produces (the consumers' input name)
    kind: str            # fp16 | int8
    arrays: dict         # {initializer name: numpy array}
    nodes: list          # the decoder nodes
    scheme: str = ""     # int8: castmul | dq
    axis: int = 0        # int8: the per-channel axis

    def value(self):
        """The float32 tensor, computed as onnxruntime computes it (bit for bit)."""
        if self.kind == FP16:
            return self.arrays[self.name + SUFFIX["fp16"]].astype(np.float32)
        q = self.arrays[self.name + SUFFIX["int8"]].astype(np.float32)
        s = self.arrays[self.name + SUFFIX["scale"]].astype(np.float32)
        if self.scheme == "dq":
            shape = [1] * q.ndim
            shape[self.axis] = -1
            s = s.reshape(shape)
        return (q * s).astype(np.float32)


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def stored_tensors(model):
    """{name: Stored} for every decoder this module writes (recognised by its names and types)."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    by_out = {o: n for n in g.node for o in n.output}
    found = {}
    for n in g.node:
        if n.op_type == "Cast" and len(n.input) == 1 and n.input[0] == n.output[0] + SUFFIX["fp16"] \
                and n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.FLOAT16 \
                and _attrs(n).get("to") == TensorProto.FLOAT:
            name = n.output[0]
            found[name] = Stored(name, FP16, {n.input[0]: numpy_helper.to_array(inits[n.input[0]])}, [n])
        elif n.op_type == "Mul" and list(n.input) == [n.output[0] + SUFFIX["int8f"], n.output[0] + SUFFIX["scale"]]:
            name, cast = n.output[0], by_out.get(n.input[0])
            qn, sn = name + SUFFIX["int8"], name + SUFFIX["scale"]
            if cast is not None and cast.op_type == "Cast" and list(cast.input) == [qn] and qn in inits and sn in inits \
                    and inits[qn].data_type == TensorProto.INT8 and _attrs(cast).get("to") == TensorProto.FLOAT:
                s = numpy_helper.to_array(inits[sn])
                axis = next((k for k, d in enumerate(s.shape) if d > 1), 0)
                found[name] = Stored(name, INT8, {qn: numpy_helper.to_array(inits[qn]), sn: s}, [cast, n], "castmul", axis)
        elif n.op_type == "DequantizeLinear" and len(n.input) == 2 \
                and list(n.input) == [n.output[0] + SUFFIX["int8"], n.output[0] + SUFFIX["scale"]] \
                and all(i in inits for i in n.input) and inits[n.input[0]].data_type == TensorProto.INT8:
            name = n.output[0]
            found[name] = Stored(name, INT8, {i: numpy_helper.to_array(inits[i]) for i in n.input}, [n], "dq",
                                 int(_attrs(n).get("axis", 1)))
    return found


def _rebuild(model, values, stored, old_decoder_outputs):
    """A copy of model whose initializers are `values` ({name: fp32 array}, in the original order:
    each stored tensor takes the place of its float32 tensor) with the decoder nodes first (the
    model's own decoders, whose outputs are old_decoder_outputs, are dropped)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    decoders = [n for s in stored.values() for n in s.nodes]
    del g.initializer[:]
    for name, a in values.items():
        if name in stored:
            g.initializer.extend(numpy_helper.from_array(arr, k) for k, arr in stored[name].arrays.items())
        elif isinstance(a, TensorProto):
            g.initializer.append(a)
        else:
            g.initializer.append(numpy_helper.from_array(a, name))
    nodes = [n for n in model.graph.node if not set(n.output) & old_decoder_outputs]
    del g.node[:]
    g.node.extend(decoders + nodes)
    return out


def _plain(model):
    """(ordered {name: TensorProto or fp32 array} with stored tensors inflated, {name: Stored},
    the output names of the decoder nodes)."""
    stored = stored_tensors(model)
    storage_inits = {k for s in stored.values() for k in s.arrays}
    first_of = {next(iter(s.arrays)): s.name for s in stored.values()}
    values = {}
    for t in model.graph.initializer:
        if t.name in first_of:
            values[first_of[t.name]] = stored[first_of[t.name]].value()
        elif t.name not in storage_inits:
            values[t.name] = t
    decoder_outputs = {o for s in stored.values() for n in s.nodes for o in n.output}
    return values, stored, decoder_outputs


def inflate(model):
    """The graph with every stored tensor back as a plain float32 initializer under its own name
    (decoder nodes removed): what onnxruntime's constant folding makes of it."""
    values, stored, decoder_outputs = _plain(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    del g.node[:]
    g.node.extend(n for n in model.graph.node if not set(n.output) & decoder_outputs)
    del g.initializer[:]
    g.initializer.extend(v if isinstance(v, TensorProto) else numpy_helper.from_array(v, k) for k, v in values.items())
    del out.metadata_props[:]
    out.metadata_props.extend(p for p in model.metadata_props if p.key != META_KEY)
    return out


# ---- the plan: which tensor is stored how -----------------------------------------------------
@dataclass
class Policy:
    """min_elements: float tensors smaller than this stay fp32 (norms, biases, per-channel affines).
    int8_ops: consumer op types whose weight is stored int8 (Gather, MatMul, Gemm, Conv); others fp16.
    int8_min_elements: only tensors at least this large go int8. scheme: castmul | dq."""
    min_elements: int = 4096
    int8_ops: frozenset = field(default_factory=frozenset)
    int8_min_elements: int = 65536
    scheme: str = "castmul"
    fp16: bool = True


def int8_axis(name, consumers):
    """The per-output axis of a weight for its consumers, or None when it is not a weight input
    (or the consumers disagree)."""
    axes = set()
    for n, idx in consumers:
        a = _attrs(n)
        if n.op_type == "Gather" and idx == 0 and a.get("axis", 0) == 0:
            axes.add(0)
        elif n.op_type == "MatMul" and idx == 1:
            axes.add(1)
        elif n.op_type == "Gemm" and idx == 1:
            axes.add(0 if a.get("transB", 0) else 1)
        elif n.op_type == "Conv" and idx == 1:
            axes.add(0)
        else:
            return None
    return axes.pop() if len(axes) == 1 else None


def quantize_int8(w, axis):
    """(q int8, s float32 1-D) with w ~= q * s along axis; symmetric, per channel."""
    w = np.asarray(w, np.float32)
    red = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=red)
    s = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / s.reshape(shape)), -127, 127).astype(np.int8)
    return q, s


def _encode(name, w, kind, axis, scheme):
    if kind == FP16:
        n = helper.make_node("Cast", [name + SUFFIX["fp16"]], [name], to=TensorProto.FLOAT, name=name + "/decode_fp16")
        return Stored(name, FP16, {name + SUFFIX["fp16"]: w.astype(np.float16)}, [n])
    q, s = quantize_int8(w, axis)
    qn, sn = name + SUFFIX["int8"], name + SUFFIX["scale"]
    if scheme == "dq":
        n = helper.make_node("DequantizeLinear", [qn, sn], [name], axis=axis, name=name + "/decode_int8")
        return Stored(name, INT8, {qn: q, sn: s}, [n], "dq", axis)
    shape = [1] * w.ndim
    shape[axis] = -1
    cast = helper.make_node("Cast", [qn], [name + SUFFIX["int8f"]], to=TensorProto.FLOAT, name=name + "/decode_int8_cast")
    mul = helper.make_node("Mul", [name + SUFFIX["int8f"], sn], [name], name=name + "/decode_int8_scale")
    return Stored(name, INT8, {qn: q, sn: s.reshape(shape)}, [cast, mul], "castmul", axis)


def compress(model, policy=Policy()):
    """Returns (compressed model, report {name: {kind, shape, ...}}). Idempotent: a tensor already
    stored as the policy asks is kept as it is (same bytes)."""
    values, old, decoder_outputs = _plain(model)
    consumers = {}
    for n in model.graph.node:
        if set(n.output) & decoder_outputs:
            continue
        for k, i in enumerate(n.input):
            consumers.setdefault(i, []).append((n, k))
    graph_inputs = {i.name for i in model.graph.input}  # an initializer that is also an input can be fed: leave it
    stored, report = {}, {}
    for name, v in values.items():
        if (isinstance(v, TensorProto) and v.data_type != TensorProto.FLOAT) or name in graph_inputs:
            continue
        a = numpy_helper.to_array(v) if isinstance(v, TensorProto) else v
        if a.size < policy.min_elements or name not in consumers:
            continue
        kind, axis = (FP16 if policy.fp16 else FP32), None
        ops = {n.op_type for n, _ in consumers[name]}
        if a.size >= policy.int8_min_elements and ops <= set(policy.int8_ops):
            axis = int8_axis(name, consumers[name])
            if axis is not None:
                kind = INT8
        if kind == FP32:
            continue
        prev = old.get(name)
        if prev is not None and prev.kind == kind and (kind == FP16 or (prev.scheme == policy.scheme and prev.axis == axis)):
            stored[name] = prev
        else:
            stored[name] = _encode(name, a, kind, axis, policy.scheme)
        report[name] = {"kind": kind, "shape": list(a.shape), "ops": sorted(ops),
                        "max_abs_err": float(np.abs(stored[name].value() - a).max())}
    out = _rebuild(model, values, stored, decoder_outputs)
    del out.metadata_props[:]
    out.metadata_props.extend(p for p in model.metadata_props if p.key != META_KEY)
    counts = {k: sum(1 for r in report.values() if r["kind"] == k) for k in (FP16, INT8)}
    if stored:
        out.metadata_props.append(onnx.StringStringEntryProto(
            key=META_KEY, value=json.dumps({"fp16": counts[FP16], "int8": counts[INT8], "scheme": policy.scheme,
                                            "min_elements": policy.min_elements})))
    onnx.checker.check_model(out)
    return out, report


def compress_file(src, dst, policy=Policy()):
    """Compress the graph at src into dst (may be the same path). Returns (bytes before, after, report)."""
    model = onnx.load(src)
    before = os.path.getsize(src)
    out, report = compress(model, policy)
    onnx.save(out, dst)
    return before, os.path.getsize(dst), report


# ---- variants and model folders ---------------------------------------------------------------
LINEAR = frozenset({"Gather", "MatMul", "Gemm"})
ALL_INT8 = LINEAR | {"Conv"}
GRAPHS = ("transformer", "text_encoder", "vae_decoder", "vae_encoder")


def variant(int8=None, **kw):
    """{graph: Policy}: every graph fp16 (>= min_elements), and int8 for the op types given per graph."""
    return {g: Policy(int8_ops=frozenset((int8 or {}).get(g, ())), **kw) for g in GRAPHS}


VARIANTS = {  # name -> {graph: Policy}; the report measures each, the shipped one is chosen from it
    "fp16": variant(),
    "fp16 + int8 token table": variant({"text_encoder": {"Gather"}}),
    "fp16 + int8 text encoder": variant({"text_encoder": LINEAR}),
    "fp16 + int8 DiT linears": variant({"transformer": LINEAR}),
    "fp16 + int8 token table + DiT adaLN": variant({"text_encoder": {"Gather"}, "transformer": {"Gemm"}}),
    "fp16 + int8 text encoder + DiT linears": variant({"text_encoder": LINEAR, "transformer": LINEAR}),
    "int8 linears + convs": variant({g: ALL_INT8 for g in GRAPHS}),
    # the same storage as "fp16 + int8 text encoder", decoded by DequantizeLinear: not folded by onnxruntime
    "fp16 + int8 text encoder (DequantizeLinear)": variant({"text_encoder": LINEAR}, scheme="dq"),
}


def compress_folder(src, dst, policies, copy_extras=False):
    """A model folder with its graphs compressed: every downloaded file of src (its manifest's list)
    copied to dst, each graph rewritten with policies[graph] (graphs not named are copied as they
    are), manifest.json rewritten (bytes + sha256; id, name and defaults kept). dst may be src
    (in place). Returns {graph: {"before", "after", "fp16", "int8"}} and the manifest."""
    from .export import read_json, write_manifest
    manifest = read_json(os.path.join(src, "manifest.json"))
    if os.path.abspath(src) != os.path.abspath(dst):
        names = list(manifest["files"]) + ["manifest.json"]
        if copy_extras:
            names += [n for n in os.listdir(src) if os.path.isfile(os.path.join(src, n)) and n not in names]
        for rel in names:
            os.makedirs(os.path.dirname(os.path.join(dst, rel)) or dst, exist_ok=True)
            shutil.copyfile(os.path.join(src, rel), os.path.join(dst, rel))
    sizes = {}
    for graph, policy in policies.items():
        path = os.path.join(dst, graph, "model.onnx")
        if not os.path.exists(path):
            continue
        before, after, report = compress_file(path, path, policy)
        sizes[graph] = {"before": before, "after": after,
                        **{k: sum(1 for r in report.values() if r["kind"] == k) for k in (FP16, INT8)}}
    return sizes, write_manifest(dst)


def download_bytes(folder):
    """What the engine downloads: the manifest's files plus manifest.json itself."""
    from .export import read_json
    m = read_json(os.path.join(folder, "manifest.json"))
    return sum(f["bytes"] for f in m["files"].values()) + os.path.getsize(os.path.join(folder, "manifest.json"))
