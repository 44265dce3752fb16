"""A speed variant measured for the performance issue and not kept: the transformer's MatMuls with
constant weights turned into dynamic int8 (DynamicQuantizeLinear on the activations, MatMulInteger
on per-output-channel int8 weights, the two scales multiplied back), so WASM runs integer GEMMs.
Prints ms per forward (batch 2, 1 thread, interleaved rounds) in onnxruntime-node and the WASM
build, and the image PSNR of the full pipeline in the WASM build against the folder's own graphs
(fixture runs + 8 prompts at the defaults). README's "Benchmarks" table holds the result.

    /usr/bin/python3 training/dynamic_int8.py public/models/webdit-tiny --out /tmp/webdit-int8
"""
import argparse
import json
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from webdit.compress_eval import extra_runs, fixture_runs, time_transformers, wasm_psnr
from webdit.export import ROOT, read_json
from webdit.ort_pipeline import OrtServer


def fold_constants(graph):
    """Cast / Mul nodes that read only constants (the fp16 / int8 storage's decode nodes) evaluated
    here: returns (nodes left, {name: array} of the constants they read)."""
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = []
    for n in graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
            nodes.append(n)
        elif n.op_type in ("Cast", "Mul") and all(i in consts for i in n.input):
            a = [consts[i] for i in n.input]
            if n.op_type == "Cast":
                to = next(x.i for x in n.attribute if x.name == "to")
                consts[n.output[0]] = a[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[to])
            else:
                consts[n.output[0]] = a[0] * a[1]
        else:
            nodes.append(n)
    return nodes, consts


def dynamic_int8(src, dst, min_values=4096):
    m = onnx.load(src)
    nodes, consts = fold_constants(m.graph)
    out, extra, count = [], {}, 0
    for n in nodes:
        w = consts.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) > 1 else None
        if w is None or w.ndim != 2 or w.size < min_values:
            out.append(n)
            continue
        w = w.astype(np.float32)
        scale = np.abs(w).max(0) / 127.0
        scale[scale == 0] = 1.0
        t = f"dq{count}"
        count += 1
        extra[t + "_w"] = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        extra[t + "_s"] = scale.astype(np.float32)
        extra[t + "_wz"] = np.zeros(w.shape[1], np.int8)
        out += [helper.make_node("DynamicQuantizeLinear", [n.input[0]], [t + "_a", t + "_as", t + "_az"]),
                helper.make_node("MatMulInteger", [t + "_a", t + "_w", t + "_az", t + "_wz"], [t + "_acc"]),
                helper.make_node("Cast", [t + "_acc"], [t + "_accf"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [t + "_as", t + "_s"], [t + "_sc"]),
                helper.make_node("Mul", [t + "_accf", t + "_sc"], [n.output[0]])]
    const_nodes = {n.output[0] for n in out if n.op_type == "Constant"}
    used = {i for n in out for i in n.input}
    inits = {k: v for k, v in {**consts, **extra}.items() if k in used and k not in const_nodes}
    del m.graph.initializer[:]
    m.graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in inits.items())
    del m.graph.node[:]
    m.graph.node.extend(out)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--out", required=True, help="a copy of the folder with the int8 transformer")
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "src", "engine", "__fixtures__", "webdit-tiny.json"))
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args(argv)
    shutil.rmtree(a.out, ignore_errors=True)
    shutil.copytree(a.folder, a.out)
    g = os.path.join("transformer", "model.onnx")
    n = dynamic_int8(os.path.join(a.folder, g), os.path.join(a.out, g))
    folders = {"fp32": a.folder, "dynamic int8": a.out}
    with OrtServer() as srv:
        speed = {rt: time_transformers(srv, folders, rt, a.rounds, 1) for rt in ("node", "wasm")}
    runs = fixture_runs(a.fixtures) + extra_runs(read_json(os.path.join(a.folder, "manifest.json"))["defaults"], 8)
    p = wasm_psnr(a.folder, a.out, runs)
    vals = sorted(v["psnr_db"] for v in p.values())
    print(json.dumps({"matmuls_converted": n,
                      "ms": {rt: {k: v["median_ms"] for k, v in r.items()} for rt, r in speed.items()},
                      "psnr_db": {"min": vals[0], "median": vals[len(vals) // 2], "runs": p}}))


if __name__ == "__main__":
    main()
