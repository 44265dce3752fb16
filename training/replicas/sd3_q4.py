"""The 4-bit copy of the SD3 replica (training/convert_sd3.py on sd3-tiny) and its measured error:

    /usr/bin/python3 training/replicas/sd3_q4.py
    #  -> src/engine/families/sd3/__replica__/sd3-tiny-q4/   (the converted folder, with manifest.json)
    #  -> src/engine/families/sd3/__replica__/sd3-q4-error.json

Error, all in onnxruntime-node (the CPU build in the npm package):
  graphs  every graph of sd3-tiny vs its converted copy on the replica's check inputs (real token ids
          for the text encoders, random latents/contexts for the transformer and VAE): max abs
          difference, that divided by max |fp32 output| (rel_max) and RMS(diff) / RMS(fp32) (rel_rms);
          for three variants: the shipped one (4-bit MatMuls + fp16 storage), 4-bit only, fp16 only.
  runs    the golden runs of sd3-golden.json through the SD3 pipeline of sd3.py (diffusers' order)
          with onnxruntime running the converted graphs: image PSNR against the PyTorch golden and
          against the same pipeline on the fp32 graphs (null: identical images); the 4-bit run's final latents and image are
          stored, so the engine's run on the converted folder can be compared with them directly.

The replica's matrices are 16-96 wide, so --min-size 16 and --block-size 16 make every transformer and
text-encoder MatMul a MatMulNBits (a real SD3 uses the defaults 256 and 32); --shard-bytes 100000
splits the larger graphs' external data into two shards.
"""
import argparse
import base64
import copy
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

import convert_sd3  # noqa: E402
from replicas import sd3  # noqa: E402
from webdit.export import ROOT, read_json, write_json  # noqa: E402
from webdit.ort_pipeline import OrtServer  # noqa: E402

DIR = os.path.join(ROOT, "src", "engine", "families", "sd3", "__replica__")
SRC, OUT, REPORT = os.path.join(DIR, "sd3-tiny"), os.path.join(DIR, "sd3-tiny-q4"), os.path.join(DIR, "sd3-q4-error.json")
SETTINGS = dict(block_size=16, min_size=16, shard_bytes=100_000)
GRAPHS = ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_decoder", "vae_encoder")
# the bar the tests hold the converted model to (see "floor_reason" in the report)
FLOOR_DB = 30.0
FLOOR_REASON = (
    "4-bit blocks of 16 random weights have a dequantisation step of (max - min) / 15, so each weight moves by "
    "up to 1/30 of its block's range and each converted graph's output by 4-10% of its largest value (graphs."
    "q4_fp16, rel_max); through three text encoders, 3-4 transformer steps and the VAE, the replica's images land "
    "at 34.6-40.9 dB of the fp32 ones. The floor is 30 dB, ~5 dB under the worst run. Conversions broken on "
    "purpose (sensitivity_psnr_db) land under it: nibbles high first at ~17 dB; zero points dropped (the "
    "symmetric default 8 instead) only just, at ~29 dB, since most zero points are 7-8; it is as far (~29 dB) "
    "from the correct 4-bit run, which the engine must match at 45 dB. The numbers say "
    "the converted graphs compute the replica's model within 4-bit rounding; they do not predict real SD3's "
    "4-bit image quality (a trained model, blocks of 32 along 1536-wide layers). The engine's own run on the "
    "converted folder is held to this script's onnxruntime-node run at >= 45 dB (the issue's bar for the same "
    "graphs) and to psnr_vs_pytorch_db minus 0.5 dB.")


class OrtGraph:
    """A converted graph called like the replica's PyTorch module (positional tensors in)."""

    def __init__(self, srv, path, inputs, outputs):
        self.srv, self.sid, _ = srv, *srv.load(path)
        self.inputs, self.outputs = inputs, outputs

    def __call__(self, *args):
        got = self.srv.run(self.sid, dict(zip(self.inputs, args)))
        outs = tuple(torch.from_numpy(got[n]) for n in self.outputs)
        return outs if len(outs) > 1 else outs[0]


def ort_replica(rep, srv, folder):
    """The replica with onnxruntime running `folder`'s graphs in place of its PyTorch modules."""
    r = copy.copy(rep)
    for name in GRAPHS:
        ins, outs = rep.io(name)[:2]
        setattr(r, name, OrtGraph(srv, os.path.join(folder, name, "model.onnx"), ins, outs))
    return r


def errors(a, b):
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    ref = np.abs(a.astype(np.float64))
    return {"max_abs": float(d.max()), "rel_max": float(d.max() / ref.max()),
            "rel_rms": float(np.sqrt((d ** 2).mean() / (ref ** 2).mean()))}


def graph_errors(rep, srv, folder):
    """{graph: {output: errors}} of folder's graphs against sd3-tiny's on the replica's check inputs."""
    res = {}
    for name in GRAPHS:
        ins, outs = rep.io(name)[:2]
        a_id, _ = srv.load(os.path.join(SRC, name, "model.onnx"))
        b_id, _ = srv.load(os.path.join(folder, name, "model.onnx"))
        worst = {}
        for args in rep.check_inputs(name):
            feed = dict(zip(ins, args))
            a, b = srv.run(a_id, feed), srv.run(b_id, feed)
            for o in outs:
                e = errors(a[o], b[o])
                worst[o] = {k: max(v, worst.get(o, {}).get(k, 0.0)) for k, v in e.items()}
        srv.close(a_id)
        srv.close(b_id)
        # the outputs the pipeline reads: text_embeds + the penultimate hidden state, T5's, the velocity, ...
        res[name] = {o: {k: float(f"{v:.4g}") for k, v in e.items()} for o, e in worst.items()}
    return res


def psnr(a, b):
    """dB, rounded; None (null in the JSON) for identical images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return None if mse == 0 else round(10 * math.log10(255.0 ** 2 / mse), 2)


def sensitivity(rep, srv, run, rgb_q4, tmp):
    """PSNR of the first golden run through conversions broken on purpose, against PyTorch and against
    the correct 4-bit run: the checks must separate them from the real one."""
    import onnx
    from webdit import nbits
    out = {}
    kw = dict(seed=run["seed"], steps=run["numInferenceSteps"], guidance_scale=run["guidanceScale"], width=run["width"],
              height=run["height"], use_t5=run["useT5"])
    rgb_pt = np.frombuffer(base64.b64decode(run["rgb"]["b64"]), np.uint8).reshape(run["rgb"]["dims"])
    pack = nbits.pack_nibbles
    for variant in ("nibbles_high_first", "zero_points_dropped"):
        folder = os.path.join(tmp, variant)
        if variant == "nibbles_high_first":
            nbits.pack_nibbles = lambda q: ((q[..., 0::2] << 4) | q[..., 1::2]).astype(np.uint8)
        try:
            convert_sd3.convert(SRC, folder, log=lambda *_: None, **SETTINGS)
        finally:
            nbits.pack_nibbles = pack
        if variant == "zero_points_dropped":   # MatMulNBits then assumes 8, the symmetric default
            for name in GRAPHS:
                path = os.path.join(folder, name, "model.onnx")
                m = onnx.load(path, load_external_data=False)
                for n in m.graph.node:
                    if n.op_type == "MatMulNBits":
                        del n.input[3:]
                kept = [t for t in m.graph.initializer if not t.name.endswith("_zero_points")]
                del m.graph.initializer[:]
                m.graph.initializer.extend(kept)
                with open(path, "wb") as f:
                    f.write(m.SerializeToString())
        rgb = sd3.generate(ort_replica(rep, srv, folder), run["prompt"], run["negativePrompt"], **kw)[1]
        out[variant] = {"vs_pytorch": psnr(rgb, rgb_pt), "vs_q4_onnx": psnr(rgb, rgb_q4)}
    return out


KERNEL_CASES = [  # (K, N, block_size, rows): as the converter writes them, a multiple of the block and padded ones
    (64, 48, 32, 5), (40, 24, 16, 3), (16, 16, 32, 2), (96, 80, 16, 7)]


def kernel_cases(tmp):
    """Single-MatMul graphs converted by convert_graph (MatMulNBits + a Cast of its fp16 scales), with
    an input and the output numpy computes from the stored 4-bit weights: for checking onnxruntime's
    kernels (onnxruntime-node here; the WASM and WebGPU builds in e2e/sd3q4.spec.ts) on their own."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from webdit import nbits
    from webdit.export import ort_run
    rng = np.random.default_rng(5)
    cases = []
    for k, n, bs, rows in KERNEL_CASES:
        src, dst = os.path.join(tmp, f"k{k}n{n}b{bs}.onnx"), os.path.join(tmp, f"k{k}n{n}b{bs}-q4.onnx")
        w = rng.standard_normal((k, n)).astype(np.float32)
        g = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"])], "matmul",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["rows", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", n])], [numpy_helper.from_array(w, "w")])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), src)
        nbits.convert_graph(src, dst, block_size=bs, min_size=16, external_min_bytes=1 << 30)
        m = onnx.load(dst)
        if [x.op_type for x in m.graph.node] != ["Cast", "MatMulNBits"]:
            raise RuntimeError(f"unexpected converted graph: {[x.op_type for x in m.graph.node]}")
        init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        wq = nbits.dequantize(init["w::q4"], init["w::q4_scales::fp16"], init["w::q4_zero_points"], k)
        a = rng.standard_normal((rows, k)).astype(np.float32)
        y = (a.astype(np.float64) @ wq.T.astype(np.float64)).astype(np.float32)
        got = ort_run(dst, {"a": a})["y"]
        if np.abs(got - y).max() > 1e-4 * np.abs(y).max():
            raise RuntimeError(f"onnxruntime-node's MatMulNBits differs from the numpy dequantisation for K={k} N={n} block {bs}")
        with open(dst, "rb") as f:
            model = base64.b64encode(f.read()).decode()
        cases.append({"K": k, "N": n, "block_size": bs, "model": model, "a": sd3.tensor(a), "y": sd3.tensor(y),
                      "y_fp32_weights": sd3.tensor(a @ w)})
    return cases


def build(out=OUT, report_path=REPORT, log=print):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    golden = read_json(os.path.join(DIR, "sd3-golden.json"))
    if os.path.isdir(out):
        shutil.rmtree(out)
    conv = convert_sd3.convert(SRC, out, model_id="webdit/sd3-tiny-q4", name="SD3 tiny replica, 4-bit (MatMulNBits)", log=log, **SETTINGS)
    rep = sd3.Replica()
    report = {"model": "sd3-tiny-q4", "generated_by": "training/replicas/sd3_q4.py (onnxruntime-node)",
              "converted_with": f"training/convert_sd3.py sd3-tiny --out sd3-tiny-q4 --block-size {SETTINGS['block_size']} "
                                f"--min-size {SETTINGS['min_size']} --shard-bytes {SETTINGS['shard_bytes']}",
              "model_files": {k: v["sha256"] for k, v in read_json(os.path.join(out, "manifest.json"))["files"].items()},
              "conversion": {g: {k: s[k] for k in ("matmuls", "quantized", "fp16_tensors", "fp32_tensors_kept", "params_quantized",
                                                   "bytes_in", "bytes_out", "shards")} for g, s in conv["graphs"].items()},
              "floor_db": FLOOR_DB, "floor_reason": FLOOR_REASON}
    with OrtServer() as srv, tempfile.TemporaryDirectory() as tmp:
        report["graphs"] = {"q4_fp16": graph_errors(rep, srv, out)}
        for variant, kw in (("q4_only", dict(fp16=False, shard_bytes=1 << 30)), ("fp16_only", dict(quantize=()))):
            folder = os.path.join(tmp, variant)
            convert_sd3.convert(SRC, folder, log=lambda *_: None, **{**SETTINGS, **kw})
            report["graphs"][variant] = graph_errors(rep, srv, folder)
        fp32, q4 = ort_replica(rep, srv, SRC), ort_replica(rep, srv, out)
        report["runs"] = []
        for r in golden["runs"]:
            if r["noT5Tokens"] == sd3.T5_LEN:   # the engine follows diffusers < 0.36 (77 zero tokens): sd3.test.ts
                continue
            kw = dict(seed=r["seed"], steps=r["numInferenceSteps"], guidance_scale=r["guidanceScale"], width=r["width"],
                      height=r["height"], use_t5=r["useT5"])
            lat_q, rgb_q, _, _ = sd3.generate(q4, r["prompt"], r["negativePrompt"], **kw)
            _, rgb_f, _, _ = sd3.generate(fp32, r["prompt"], r["negativePrompt"], **kw)
            rgb_pt = np.frombuffer(base64.b64decode(r["rgb"]["b64"]), np.uint8).reshape(r["rgb"]["dims"])
            entry = {"name": r["name"], "psnr_vs_pytorch_db": psnr(rgb_q, rgb_pt),
                     "psnr_vs_fp32_onnx_db": psnr(rgb_q, rgb_f),
                     "fp32_onnx_vs_pytorch_db": psnr(rgb_f, rgb_pt),
                     "latents": sd3.tensor(lat_q), "rgb": sd3.image(rgb_q)}
            report["runs"].append(entry)
            if len(report["runs"]) == 1:
                q4_rgb0 = rgb_q
            log(f"  {r['name']}: 4-bit image {entry['psnr_vs_pytorch_db']} dB vs PyTorch, {entry['psnr_vs_fp32_onnx_db']} dB vs fp32 onnx")
        report["matmulnbits_cases"] = kernel_cases(tmp)
        report["sensitivity_psnr_db"] = sensitivity(rep, srv, golden["runs"][0], q4_rgb0, tmp)
        log(f"  broken on purpose: {report['sensitivity_psnr_db']}")
        srv.close_all()
    worst = min(r["psnr_vs_pytorch_db"] for r in report["runs"])
    if worst < FLOOR_DB:
        raise RuntimeError(f"a 4-bit run is at {worst} dB against PyTorch, under the {FLOOR_DB} dB floor")
    write_json(report_path, report)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--report", default=REPORT)
    a = ap.parse_args(argv)
    build(a.out, a.report)
    print(f"wrote {a.out} and {a.report}")


if __name__ == "__main__":
    main()
