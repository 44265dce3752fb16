"""Golden values for src/engine/core/onnxFacts.ts: per ONNX graph of the replicas, the largest initializer in bytes (elements x element size, inline or external) and the
inputs/outputs declared float16, read with the onnx package (graphs only, external data not loaded).

    /usr/bin/python3 training/replicas/graph_facts.py   # -> src/engine/core/__fixtures__/graph-facts.json
"""
import glob
import json
import os

import numpy as np
import onnx
from onnx import mapping

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "src", "engine", "core", "__fixtures__", "graph-facts.json")
# the replicas (deterministic, rebuilt by their own scripts): inline and external weights, fp32 and fp16 I/O
GRAPHS = sorted(glob.glob(os.path.join(ROOT, "src/engine/families/*/__replica__/*/**/*.onnx"), recursive=True))


def tensor_bytes(t: onnx.TensorProto) -> int:
    numel = int(np.prod(t.dims)) if len(t.dims) else 1
    return numel * np.dtype(mapping.TENSOR_TYPE_TO_NP_TYPE[t.data_type]).itemsize


def facts(path: str) -> dict:
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    f16 = [v.name for v in list(g.input) + list(g.output) if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16]
    return {"largest_initializer": max([tensor_bytes(t) for t in g.initializer], default=0), "float16_io": f16}


def main():
    out = {"generated_by": "training/replicas/graph_facts.py (onnx)",
           "graphs": {os.path.relpath(p, ROOT): facts(p) for p in GRAPHS}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"{len(out['graphs'])} graphs -> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
