"""training/convert_sd3.py and webdit/nbits.py: the 4-bit quantiser against its error bound, converted
graphs against the float ones in onnxruntime-node (within the bound the stored scales give), the SD3
replica's conversion (shards under the limit, every tensor resolvable, manifest right, graph I/O
unchanged, the committed sd3-tiny-q4 reproduced), clear errors for broken exports, and memory that does
not grow with the weights. Needs node + `npm install` (onnxruntime-node)."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import convert_sd3
from replicas import sd3_q4
from webdit import nbits
from webdit.export import ort_run, read_json, write_json
from webdit.fileio import sha256

SRC, COMMITTED = sd3_q4.SRC, sd3_q4.OUT


# ---- the quantiser ------------------------------------------------------------------------------
@pytest.mark.parametrize("k,block", [(64, 32), (72, 32), (40, 16), (16, 32)])
def test_blocks_dequantise_within_half_a_step(k, block):
    rng = np.random.default_rng(k)
    wt = (rng.standard_normal((24, k)) * rng.uniform(0.01, 3, (24, 1))).astype(np.float32)
    wt[3] = np.abs(wt[3])       # an all-positive row: 0 stays representable
    wt[5, :block] = 0.0         # an all-zero block
    for scale_dtype in (np.float32, np.float16):
        q, s, z = nbits.quantize_blocks(wt, block, scale_dtype)
        kb = -(-k // block)
        assert q.shape == (24, kb, block) and s.shape == (24, kb) and z.shape == (24, kb) and s.dtype == scale_dtype
        assert q.max() <= 15 and z.max() <= 15
        packed = nbits.pack_nibbles(q)
        assert packed.shape == (24, kb, block // 2)
        back = nbits.dequantize(packed, s, nbits.pack_zero_points(z), k)
        step = np.repeat(s.astype(np.float32), block, axis=1)[:, :k]
        assert np.all(np.abs(back - wt) <= step / 2 * (1 + 1e-6) + 1e-12)
        # the step is the block's range (with 0) over 15, rounded up to the stored dtype, never down
        blocks = np.pad(wt, ((0, 0), (0, kb * block - k))).reshape(24, kb, block)
        rng_ = np.maximum(blocks.max(2), 0) - np.minimum(blocks.min(2), 0)
        assert np.all(s.astype(np.float32) >= (rng_ / 15).astype(np.float32))
        assert np.all(s.astype(np.float32) <= rng_ / 15 * (1 + 2 ** -9) + 1e-30)
        assert np.all(back[5, :block] == 0)


def test_nibbles_low_first():
    """ContribOperators.md: 'the first 4 bits are stored in the lower 4 bits of a byte'."""
    assert nbits.pack_nibbles(np.array([[1, 2, 15, 0]], np.uint8)).tolist() == [[0x21, 0x0F]]
    assert nbits.pack_zero_points(np.array([[3, 4, 5]], np.uint8)).tolist() == [[0x43, 0x05]]


# ---- converted graphs vs the float ones, in onnxruntime ----------------------------------------
def _save(graph, path, external=True):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    if external:
        onnx.save(m, path, save_as_external_data=True, location=os.path.basename(path) + "_data", size_threshold=0)
    else:
        onnx.save(m, path)


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _stored(model_path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(model_path).graph.initializer}


def _bound(a, q, weight, k, block=32):
    """Elementwise |A @ Wq - A @ W| bound: sum_k |A_k| * step(k, n) / 2, from the stored scales."""
    s = q[weight + "_scales::fp16"].astype(np.float32)
    half = np.repeat(s, block, axis=1)[:, :k].T / 2          # [K, N]
    return np.abs(a.reshape(-1, k)).astype(np.float64) @ half.astype(np.float64)


def test_matmul_and_gemm_become_matmulnbits_within_the_bound(tmp_path):
    rng = np.random.default_rng(1)
    K, N, K2 = 96, 40, 72
    w = rng.standard_normal((K, N)).astype(np.float32)              # MatMul [K, N]
    wt = rng.standard_normal((N, K2)).astype(np.float32)            # Gemm transB=1 [N, K]
    c = rng.standard_normal(N).astype(np.float32)
    w16 = rng.standard_normal((K, N)).astype(np.float16)            # fp16 weight decoded by a Cast
    small = rng.standard_normal((K, 8)).astype(np.float32)          # N < min_size: stays MatMul
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y1"]), helper.make_node("MatMul", ["x", "w"], ["y1b"]),  # shared weight
             helper.make_node("Gemm", ["x2", "wt", "c"], ["y2"], transB=1),
             helper.make_node("Cast", ["w16"], ["w16f"], to=TensorProto.FLOAT), helper.make_node("MatMul", ["x", "w16f"], ["y3"]),
             helper.make_node("MatMul", ["x", "small"], ["y4"]),
             helper.make_node("Gemm", ["x2", "wt"], ["y5"], transB=1, alpha=0.5)]   # alpha != 1: left alone
    g = helper.make_graph(nodes, "g", [_vi("x", ["b", "s", K]), _vi("x2", ["m", K2])],
                          [_vi("y1", ["b", "s", N]), _vi("y1b", ["b", "s", N]), _vi("y2", ["m", N]), _vi("y3", ["b", "s", N]),
                           _vi("y4", ["b", "s", 8]), _vi("y5", ["m", N])],
                          [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (wt, "wt"), (c, "c"), (w16, "w16"), (small, "small"))])
    src, dst = str(tmp_path / "model.onnx"), str(tmp_path / "out" / "model.onnx")
    _save(g, src)
    os.makedirs(os.path.dirname(dst))
    st = nbits.convert_graph(src, dst, block_size=32, min_size=16)
    assert (st["matmuls"], st["quantized"], st["quantized_weights"], st["too_small"], st["not_convertible"]) == (6, 4, 3, 1, 1)
    m = onnx.load(dst, load_external_data=False)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("MatMulNBits") == 4 and ops.count("MatMul") == 1 and ops.count("Gemm") == 1
    nb = next(n for n in m.graph.node if n.op_type == "MatMulNBits")
    assert nb.domain == "com.microsoft" and {a.name: helper.get_attribute_value(a) for a in nb.attribute} == \
        {"K": K, "N": N, "bits": 4, "block_size": 32}
    assert any(o.domain == "com.microsoft" and o.version == 1 for o in m.opset_import)
    names = {t.name for t in m.graph.initializer}
    assert "w" not in names and "w16" not in names and "w16f" not in {o for n in m.graph.node for o in n.output}
    assert "wt::fp16" in names   # still read by the alpha=0.5 Gemm (stored fp16, 2880 elements)

    x = rng.standard_normal((2, 3, K)).astype(np.float32)
    x2 = rng.standard_normal((5, K2)).astype(np.float32)
    ref, got = ort_run(src, {"x": x, "x2": x2}), ort_run(dst, {"x": x, "x2": x2})
    q = _stored(dst)
    cases = (("y1", x, "w::q4", K, w), ("y1b", x, "w::q4", K, w), ("y3", x, "w16::q4", K, w16.astype(np.float32)),
             ("y2", x2, "wt::q4t", K2, wt.T))
    for out, a, name, k, wf in cases:
        wq = nbits.dequantize(q[name], q[name + "_scales::fp16"], q[name + "_zero_points"], k).T   # [K, N]
        exact = a.reshape(-1, k).astype(np.float64) @ wq.astype(np.float64) + (c if out == "y2" else 0)
        y, y_ref = got[out].reshape(-1, N), ref[out].reshape(-1, N)
        assert np.abs(y - exact).max() <= 1e-5 * np.abs(exact).max(), out     # the kernel computes our weights
        bound = _bound(a, q, name, k)
        assert np.all(np.abs(y - y_ref) <= bound + 1e-5 * np.abs(y_ref).max()), out  # and they are within half a step
        assert np.abs(y - y_ref).max() > 0, out
    np.testing.assert_array_equal(got["y4"], ref["y4"])
    y5 = 0.5 * x2.astype(np.float64) @ wt.astype(np.float16).astype(np.float64).T   # the fp16-stored weight, exactly
    assert np.abs(got["y5"] - y5).max() <= 1e-5 * np.abs(y5).max() < np.abs(ref["y5"] - y5).max()


def test_fp16_storage_only_where_safe(tmp_path):
    rng = np.random.default_rng(2)
    big = rng.standard_normal(2048).astype(np.float32)
    mask = np.zeros(2048, np.float32)
    mask[::7] = np.finfo(np.float32).min                    # an attention-mask-like constant: beyond fp16
    short = rng.standard_normal(1000).astype(np.float32)    # under fp16_min_elements
    nodes = [helper.make_node("Add", ["x", "big"], ["a"]), helper.make_node("Add", ["a", "mask"], ["b"]),
             helper.make_node("Slice", ["b", "st", "en", "ax"], ["c"]), helper.make_node("Mul", ["c", "short"], ["y"])]
    inits = [numpy_helper.from_array(big, "big"), numpy_helper.from_array(mask, "mask"), numpy_helper.from_array(short, "short"),
             numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([1000], np.int64), "en"), numpy_helper.from_array(np.array([1], np.int64), "ax")]
    g = helper.make_graph(nodes, "g", [_vi("x", ["m", 2048])], [_vi("y", ["m", 1000])], inits)
    src, dst = str(tmp_path / "model.onnx"), str(tmp_path / "out" / "model.onnx")
    _save(g, src, external=False)
    os.makedirs(os.path.dirname(dst))
    st = nbits.convert_graph(src, dst)
    types = {t.name: t.data_type for t in onnx.load(dst, load_external_data=False).graph.initializer}
    assert types == {"big::fp16": TensorProto.FLOAT16, "mask": TensorProto.FLOAT, "short": TensorProto.FLOAT,
                     "st": TensorProto.INT64, "en": TensorProto.INT64, "ax": TensorProto.INT64}
    assert (st["fp16_tensors"], st["fp32_tensors_kept"]) == (1, 2)
    x = rng.standard_normal((3, 2048)).astype(np.float32)
    ref, got = ort_run(src, {"x": x})["y"], ort_run(dst, {"x": x})["y"]
    fin = np.isfinite(ref) & (np.abs(ref) < 1e30)
    assert np.array_equal(fin, np.isfinite(got) & (np.abs(got) < 1e30))        # the mask survives exactly
    assert np.abs(got[fin] - ref[fin]).max() <= 2 ** -11 * np.abs(big).max() * np.abs(short).max() * 1.01


# ---- the SD3 replica ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("q4") / "sd3-tiny-q4")
    report = convert_sd3.convert(SRC, out, model_id="webdit/sd3-tiny-q4", name="SD3 tiny replica, 4-bit (MatMulNBits)",
                                 log=lambda *_: None, **sd3_q4.SETTINGS)
    return out, report


def test_every_transformer_and_text_encoder_matmul_is_4bit(converted):
    _, report = converted
    for g in ("transformer", "text_encoder", "text_encoder_2", "text_encoder_3"):
        s = report["graphs"][g]
        assert s["quantized"] == s["matmuls"] > 10, g
    for g in ("vae_decoder", "vae_encoder"):   # stored fp16 only
        assert report["graphs"][g]["quantized"] == 0 and report["graphs"][g]["fp16_tensors"] > 10
    assert report["bytes_out"] < 0.6 * report["bytes_in"]


def test_shards_under_the_limit_and_every_tensor_resolvable(converted):
    out, report = converted
    limit = sd3_q4.SETTINGS["shard_bytes"]
    multi = 0
    for g, s in report["graphs"].items():
        folder = os.path.join(out, g)
        shards = sorted(f for f in os.listdir(folder) if "_data" in f)
        assert shards == sorted(n for n, _ in s["shards"]) and shards[0] == "model.onnx_data"
        assert all(os.path.getsize(os.path.join(folder, f)) <= limit for f in shards)
        multi += len(shards) > 1
        m = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
        used = set()
        for t in list(m.graph.initializer) + list(nbits.attribute_tensors(m.graph)):
            if t.data_location == TensorProto.EXTERNAL:
                loc, off, n = nbits.external_location(t), *(int(nbits._external(t)[k]) for k in ("offset", "length"))
                assert loc in shards and off + n <= os.path.getsize(os.path.join(folder, loc)) and n == nbits.tensor_nbytes(t)
                used.add(loc)
        assert used == set(shards)
        full = onnx.load(os.path.join(folder, "model.onnx"))       # onnx reads every tensor back
        assert all(len(numpy_helper.to_array(t).reshape(-1)) == int(np.prod(t.dims)) for t in full.graph.initializer)
        onnx.checker.check_model(os.path.join(folder, "model.onnx"))
    assert multi >= 2


def test_graph_inputs_and_outputs_unchanged(converted):
    out, _ = converted
    sig = lambda vs: [(v.name, v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]) for v in vs]  # noqa: E731
    for g in sd3_q4.GRAPHS:
        a = onnx.load(os.path.join(SRC, g, "model.onnx"), load_external_data=False).graph
        b = onnx.load(os.path.join(out, g, "model.onnx"), load_external_data=False).graph
        assert sig(b.input) == sig(a.input) and sig(b.output) == sig(a.output), g


def test_manifest_lists_every_file_with_bytes_and_sha256(converted):
    out, _ = converted
    man = read_json(os.path.join(out, "manifest.json"))
    assert (man["format"], man["version"], man["family"], man["id"]) == ("webdit-model", 2, "sd3", "webdit/sd3-tiny-q4")
    on_disk = sorted(os.path.relpath(os.path.join(b, f), out).replace(os.sep, "/") for b, _, fs in os.walk(out) for f in fs)
    assert sorted(man["files"]) == [p for p in on_disk if p != "manifest.json"]
    for p, f in man["files"].items():
        assert f == {"bytes": os.path.getsize(os.path.join(out, p)), "sha256": sha256(os.path.join(out, p))}, p
    # configs, tokenizers and the scheduler are the export's own bytes
    for p in man["files"]:
        if not p.endswith(("model.onnx",)) and "_data" not in p:
            assert sha256(os.path.join(out, p)) == sha256(os.path.join(SRC, p)), p


def test_the_committed_sd3_tiny_q4_is_what_the_converter_writes(converted):
    out, _ = converted
    fresh = read_json(os.path.join(out, "manifest.json"))
    assert read_json(os.path.join(COMMITTED, "manifest.json")) == fresh
    assert read_json(sd3_q4.REPORT)["model_files"] == {k: v["sha256"] for k, v in fresh["files"].items()}


def test_the_reported_error_clears_the_floor():
    r = read_json(sd3_q4.REPORT)
    assert len(r["runs"]) == 3 and all(x["psnr_vs_pytorch_db"] >= r["floor_db"] for x in r["runs"])
    assert all(v["vs_q4_onnx"] < 45 for v in r["sensitivity_psnr_db"].values())
    assert r["graphs"]["fp16_only"]["transformer"]["out_hidden_states"]["rel_max"] < 1e-3


# ---- errors -------------------------------------------------------------------------------------
def test_clear_errors(tmp_path):
    with pytest.raises(nbits.ConvertError, match="no model_index.json"):
        convert_sd3.convert(str(tmp_path), str(tmp_path / "o"))
    write_json(str(tmp_path / "model_index.json"), {"_class_name": "FluxPipeline"})
    with pytest.raises(nbits.ConvertError, match="not a Stable Diffusion 3 pipeline"):
        convert_sd3.convert(str(tmp_path), str(tmp_path / "o"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(nbits.ConvertError, match="exists and is not empty"):
        convert_sd3.convert(SRC, str(busy))
    with pytest.raises(nbits.ConvertError, match="raise --shard-bytes"):
        convert_sd3.convert(SRC, str(tmp_path / "small"), block_size=16, min_size=16, shard_bytes=50_000, log=lambda *_: None)
    with pytest.raises(nbits.ConvertError, match="power of two"):
        nbits.convert_graph(os.path.join(SRC, "transformer", "model.onnx"), str(tmp_path / "t.onnx"), block_size=24)
    broken = tmp_path / "broken"
    shutil.copytree(SRC, broken)
    data = broken / "transformer" / "model.onnx_data"
    data.write_bytes(data.read_bytes()[:5000])
    with pytest.raises(nbits.ConvertError, match=r"model\.onnx_data is truncated.*Download it again"):
        convert_sd3.convert(str(broken), str(tmp_path / "o2"), log=lambda *_: None)
    data.unlink()
    with pytest.raises(nbits.ConvertError, match="missing next to the graph"):
        convert_sd3.convert(str(broken), str(tmp_path / "o3"), log=lambda *_: None)
    with pytest.raises(SystemExit, match="^convert_sd3: .*missing next to the graph"):
        convert_sd3.main([str(broken), "--out", str(tmp_path / "o4")])


# ---- streaming ----------------------------------------------------------------------------------
def test_memory_does_not_grow_with_the_weights(tmp_path):
    """A 256 MB MatMul weight and a 256 MB embedding: the conversion's peak RSS grows by under half of
    one of them (the whole graph would be 512 MB; its 4-bit output alone is 32 MB)."""
    K, N = 4096, 16384
    rng = np.random.default_rng(3)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Gather", ["e", "ids"], ["z"])], "big",
                          [_vi("x", ["m", K]), _vi("ids", ["m"], TensorProto.INT64)], [_vi("y", ["m", N]), _vi("z", ["m", K])],
                          [numpy_helper.from_array(rng.standard_normal((K, N), dtype=np.float32), "w"),
                           numpy_helper.from_array(rng.standard_normal((N, K), dtype=np.float32), "e")])
    src = str(tmp_path / "model.onnx")
    _save(g, src)
    del g
    os.makedirs(tmp_path / "out")
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
        from webdit import nbits
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        st = nbits.convert_graph({src!r}, {str(tmp_path / "out" / "model.onnx")!r}, min_size=16)
        assert st["quantized"] == 1 and st["fp16_tensors"] == 1, st
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grew = int(p.stdout.strip())
    assert grew < K * N * 4 / 2, f"peak RSS grew by {grew / 2**20:.0f} MB"
    # 4-bit codes, zero points (two per byte), fp16 scales, the fp16 embedding (+ alignment padding)
    expected = K * N // 2 + N * (K // 32) // 2 + N * (K // 32) * 2 + N * K * 2
    assert expected <= os.path.getsize(tmp_path / "out" / "model.onnx_data") <= expected + 4 * nbits.ShardWriter.ALIGN
