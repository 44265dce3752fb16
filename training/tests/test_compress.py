"""webdit/compress.py on the toy model folder the smoke test exports (fixture `toy`, conftest.py):
graphs with their weights stored as fp16 / int8 are smaller, keep their float32 inputs and outputs
under the same names, stay close to the fp32 graphs in onnxruntime, are folded back to plain fp32
graphs by onnxruntime at session creation, compress idempotently, and from_onnx rebuilds from them
PyTorch modules that match them. The toy's tensors are tiny, so the thresholds are lowered to reach them."""
import os

import numpy as np
import onnx
import pytest
import torch

from webdit.compress import ALL_INT8, GRAPHS, SUFFIX, Policy, compress, compress_folder, download_bytes, inflate
from webdit.export import GRAPH_NAMES, graph_inputs
from webdit.from_onnx import configs, example_inputs, recover
from webdit.models import PosteriorMean
from webdit.ort_pipeline import OrtServer
from webdit.tokenizer import WordPieceTokenizer

FP16 = Policy(min_elements=256)
INT8 = Policy(min_elements=256, int8_ops=ALL_INT8, int8_min_elements=1024)
# max abs output difference from the fp32 graph, relative to the output's max abs value (measured on
# the toy: fp16 2e-4..7e-4, int8 3e-3..1e-2)
TOL = {"fp16": 3e-3, "int8": 4e-2}


@pytest.fixture(scope="module")
def srv():
    with OrtServer() as s:  # one onnxruntime-node process for every graph here
        yield s


def run(srv, path, feed):
    sid, _ = srv.load(path)
    try:
        return srv.run(sid, feed)
    finally:
        srv.close(sid)


@pytest.fixture(scope="module")
def folders(toy, tmp_path_factory):
    _, model = toy
    base = tmp_path_factory.mktemp("compress")
    out = {}
    for name, pol in (("fp16", FP16), ("int8", INT8)):
        out[name] = str(base / name)
        compress_folder(model, out[name], {g: pol for g in GRAPHS})
    return model, out


def test_smaller_download(folders):
    model, out = folders
    fp32, fp16, int8 = (download_bytes(f) for f in (model, out["fp16"], out["int8"]))
    for g in GRAPHS:
        a, b, c = (os.path.getsize(os.path.join(f, g, "model.onnx")) for f in (model, out["fp16"], out["int8"]))
        assert b < 0.75 * a and c < b, (g, a, b, c)
    assert fp16 < 0.7 * fp32 and int8 < 0.85 * fp16, (fp32, fp16, int8)


def test_same_contract_and_close_outputs(folders, models, srv):
    model, out = folders
    inputs = graph_inputs(models, torch.Generator().manual_seed(3))
    for g in GRAPHS:
        names_in, names_out = GRAPH_NAMES[g]
        feed = {n: a.numpy() for n, a in zip(names_in, inputs[g])}
        ref = run(srv, os.path.join(model, g, "model.onnx"), feed)
        for kind, folder in out.items():
            m = onnx.load(os.path.join(folder, g, "model.onnx"))
            src = onnx.load(os.path.join(model, g, "model.onnx"))
            assert [(i.name, i.type) for i in m.graph.input] == [(i.name, i.type) for i in src.graph.input]
            assert [(o.name, o.type) for o in m.graph.output] == [(o.name, o.type) for o in src.graph.output]
            got = run(srv, os.path.join(folder, g, "model.onnx"), feed)
            for n in names_out:
                rel = float(np.abs(got[n] - ref[n]).max() / np.abs(ref[n]).max())
                assert 0 < rel < TOL[kind], (g, kind, n, rel)


def test_idempotent_and_inflates_to_the_rounded_weights(folders):
    model, out = folders
    for g in GRAPHS:
        src = onnx.load(os.path.join(model, g, "model.onnx"))
        once = onnx.load(os.path.join(out["int8"], g, "model.onnx"))
        twice, _ = compress(once, INT8)
        assert twice.SerializeToString() == once.SerializeToString(), g
        back = inflate(once)  # the original graph's nodes and initializer names, values rounded
        assert [n.SerializeToString() for n in back.graph.node] == [n.SerializeToString() for n in src.graph.node]
        a = {t.name: onnx.numpy_helper.to_array(t) for t in src.graph.initializer}
        b = {t.name: onnx.numpy_helper.to_array(t) for t in back.graph.initializer}
        assert list(a) == list(b) and all(a[k].dtype == b[k].dtype == np.float32 or np.array_equal(a[k], b[k]) for k in a)
        changed = [k for k in a if not np.array_equal(a[k], b[k])]
        assert changed and all(np.abs(a[k] - b[k]).max() <= np.abs(a[k]).max() / 127 for k in changed), g
    # fp16 -> int8 re-encodes; int8 -> fp16 -> fp16 again is stable
    again, _ = compress(onnx.load(os.path.join(out["fp16"], "transformer", "model.onnx")), FP16)
    assert again.SerializeToString() == onnx.load(os.path.join(out["fp16"], "transformer", "model.onnx")).SerializeToString()


def test_onnxruntime_folds_the_decoders_away(folders, srv, tmp_path):
    """The graph onnxruntime runs (optimisation level 'all', as the engine) is the fp32 graph's."""
    model, out = folders
    for g in GRAPHS:
        ops = {}
        for kind, folder in (("fp32", model), *out.items()):
            path = str(tmp_path / f"{g}.{kind}.onnx")
            srv.close(srv.load(os.path.join(folder, g, "model.onnx"), "node", 1, optimized=path)[0])
            m = onnx.load(path)
            ops[kind] = [n.op_type for n in m.graph.node]
            assert not any(i.endswith(tuple(SUFFIX.values())) for n in m.graph.node for i in n.input), (g, kind)
            assert all(t.data_type not in (onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8) for t in m.graph.initializer)
        assert ops["fp16"] == ops["fp32"] == ops["int8"], g


def test_from_onnx_rebuilds_the_compressed_weights(folders, srv):
    _, out = folders
    modules, info = recover(out["int8"], preset="toy", check=False)
    vae, dit, text, _ = configs(out["int8"], "toy")
    tok = WordPieceTokenizer.load(os.path.join(out["int8"], "tokenizer"))
    for comp, m in modules.items():  # the module vs its compressed graph in onnxruntime, batch 3
        module = PosteriorMean(m) if comp == "vae_encoder" else m
        args = example_inputs(comp, vae, dit, text, tok)
        names_in, names_out = GRAPH_NAMES[comp]
        with torch.no_grad():
            ref = module(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = run(srv, os.path.join(out["int8"], comp, "model.onnx"), dict(zip(names_in, args)))
        assert max(float(np.abs(r.numpy() - got[n]).max()) for n, r in zip(names_out, ref)) < 1e-4, comp
    want = {t.name: onnx.numpy_helper.to_array(t) for t in
            inflate(onnx.load(os.path.join(out["int8"], "transformer", "model.onnx"))).graph.initializer}
    w = modules["transformer"].state_dict()["blocks.0.ada.1.weight"].numpy()
    assert np.array_equal(w, want["blocks.0.ada.1.weight"])
    assert len(np.unique(w[0] / np.abs(w[0]).max())) <= 255  # int8 levels per output row
