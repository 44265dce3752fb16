"""Measure compressed variants of a model folder against its fp32 graphs (webdit/compress.py):

  - bytes per graph before / after, and the whole folder's download (manifest files + manifest);
  - image PSNR and final-latents max abs diff of the full pipeline (pipeline.generate with the
    graphs in onnxruntime-node: same noise, sigmas, CFG batching, decoding) vs the fp32 graphs, on
    the golden fixtures' runs (text-to-image and image-to-image) and on extra prompts at the defaults;
  - ms per transformer forward at batch 2, onnxruntime-node and onnxruntime-web's WASM build, 1
    thread, median of several repeats, measured in interleaved rounds with the fp32 graph so that a
    busy machine slows both alike; session creation time (constant folding happens there).

The variant chosen is the smallest folder within the size budget whose worst image PSNR is at least
the floor and whose transformer is not slower than fp32 (beyond noise)."""
import base64
import json
import os
import shutil
import time

import numpy as np
import torch

from . import data as D
from .compress import VARIANTS, compress_folder, download_bytes
from .export import read_json, write_json
from .fixtures import INIT_SCENES, PROMPTS
from .ort_pipeline import OrtServer, ort_models
from .pipeline import generate, initial_latents

EXTRA_PROMPTS = [
    "a large red heart in the center on a white background", "grinning face with big eyes, noto style",
    "cat face, twemoji style", "a small green triangle at the bottom right on a black background",
    "a medium yellow star on the left on a light blue background", "red apple, noto style",
    "dog face, twemoji style", "a large purple square in the center on a white background",
]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def fixture_runs(fixtures):
    """[(label, kwargs for generate)] from the fixtures' runs and img2img runs."""
    fx = read_json(fixtures)
    out = []
    for i, r in enumerate(fx["runs"]):
        out.append((f"runs[{i}]", dict(prompt=r["prompt"], negative_prompt=r["negativePrompt"], seed=r["seed"],
                                       num_inference_steps=r["numInferenceSteps"], guidance_scale=r["guidanceScale"]), r["shift"]))
    for i, r in enumerate(fx.get("img2img", [])):
        img = np.frombuffer(base64.b64decode(r["init_image"]["b64"]), np.uint8).reshape(r["init_image"]["dims"]).copy()
        out.append((f"img2img[{i}]", dict(prompt=r["prompt"], negative_prompt=r["negativePrompt"], seed=r["seed"],
                                          num_inference_steps=r["numInferenceSteps"], guidance_scale=r["guidanceScale"],
                                          image=img, strength=r["strength"]), r["shift"]))
    return out


def extra_runs(defaults, n):
    return [(f"extra[{i}]", dict(prompt=EXTRA_PROMPTS[i % len(EXTRA_PROMPTS)], negative_prompt="", seed=1000 + i,
                                 num_inference_steps=defaults["num_inference_steps"],
                                 guidance_scale=defaults["guidance_scale"]), None) for i in range(n)]


def sample_all(models, runs):
    out = {}
    for label, kw, shift in runs:
        m = models.with_shift(shift) if shift is not None else models
        out[label] = generate(m, **kw)
    return out


def transformer_inputs(folder, batch=2, seed=0):
    t = read_json(os.path.join(folder, "transformer", "config.json"))
    g = torch.Generator().manual_seed(seed)
    h = t["sample_size"]
    return {"hidden_states": torch.from_numpy(initial_latents(seed, (batch, t["in_channels"], h, h))),
            "encoder_hidden_states": torch.randn(batch, t["max_text_length"], t["joint_attention_dim"], generator=g),
            "pooled_projections": torch.randn(batch, t["pooled_projection_dim"], generator=g),
            "timestep": torch.tensor([1000.0, 345.5][:batch])}


def time_transformers(srv, folders, runtime, rounds, repeats, threads=1):
    """{variant: {median_ms, min_ms, load_ms, ms, same_graph_as}}: each distinct transformer graph (by
    sha256; variants that differ only elsewhere share one) opened once, then timed in `rounds`
    interleaved rounds of `repeats` runs (after a warm-up), so load on a shared machine spreads over
    all of them alike."""
    from .export import sha256
    inputs = transformer_inputs(next(iter(folders.values())))
    first = {}
    for name, folder in folders.items():
        first.setdefault(sha256(os.path.join(folder, "transformer", "model.onnx")), name)
    sess, res = {}, {}
    for h, name in first.items():
        sid, ms = srv.load(os.path.join(folders[name], "transformer", "model.onnx"), runtime, threads)
        sess[name] = sid
        res[name] = {"load_ms": round(ms, 1), "ms": []}
        srv.time(sid, inputs, warmup=2, repeats=1)
    for _ in range(rounds):
        for name, sid in sess.items():
            res[name]["ms"] += srv.time(sid, inputs, warmup=0, repeats=repeats)
    for name, sid in sess.items():
        srv.close(sid)
        res[name]["median_ms"] = round(float(np.median(res[name]["ms"])), 2)
        res[name]["min_ms"] = round(float(np.min(res[name]["ms"])), 2)
        res[name]["ms"] = [round(x, 2) for x in res[name]["ms"]]
    out = {}
    for name, folder in folders.items():
        owner = first[sha256(os.path.join(folder, "transformer", "model.onnx"))]
        out[name] = {**res[owner], "same_graph_as": owner} if owner != name else res[name]
    return out


def folded(srv, folder, fp32_folder, tmp):
    """Per graph: the graph onnxruntime-node runs after its optimisations ('all', as the engine) vs
    the fp32 graph's: {same_ops: same node types in the same order, decoders_left: Cast/Mul/
    DequantizeLinear nodes still reading a stored tensor, non_float_initializers}."""
    import onnx
    from .compress import SUFFIX
    out = {}
    for g in ("transformer", "text_encoder", "vae_decoder", "vae_encoder"):
        ops = []
        for k, f in enumerate((folder, fp32_folder)):
            path = os.path.join(tmp, f"{g}.{k}.opt.onnx")
            sid, _ = srv.load(os.path.join(f, g, "model.onnx"), "node", 1, optimized=path)
            srv.close(sid)
            m = onnx.load(path)
            os.remove(path)
            ops.append([n.op_type for n in m.graph.node])
            if k == 0:
                left = sum(1 for n in m.graph.node if any(i.endswith(tuple(SUFFIX.values())) for i in n.input))
                nonfloat = sum(1 for t in m.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8))
        out[g] = {"same_ops": ops[0] == ops[1], "decoders_left": left, "non_float_initializers": nonfloat}
    return out


def build_variants(fp32, out, names=None):
    """out/<slug>/ per variant (fp32 copied as is, the others compressed). Returns {name: (folder, sizes)}."""
    built = {"fp32": (os.path.join(out, "fp32"), {})}
    if os.path.abspath(fp32) != os.path.abspath(built["fp32"][0]):
        shutil.rmtree(built["fp32"][0], ignore_errors=True)
        compress_folder(fp32, built["fp32"][0], {})
    for name in names or VARIANTS:
        folder = os.path.join(out, slug(name))
        shutil.rmtree(folder, ignore_errors=True)
        sizes, _ = compress_folder(fp32, folder, VARIANTS[name])
        built[name] = (folder, sizes)
    return built


def slug(name):
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-").replace("--", "-")


def evaluate_variants(fp32, out, fixtures, names=None, extra=24, rounds=30, repeats=1, wasm_rounds=12, wasm_repeats=1,
                      max_bytes=30_000_000, min_psnr=40.0, max_slowdown=1.10, log=print):
    """Build every variant under out/, measure it, choose one; writes out/report.json and returns it."""
    t0 = time.time()
    built = build_variants(fp32, out, names)
    folders = {k: v[0] for k, v in built.items()}
    defaults = read_json(os.path.join(fp32, "manifest.json"))["defaults"]
    runs = fixture_runs(fixtures) + extra_runs(defaults, extra)
    report = {"fp32": os.path.abspath(fp32), "fixtures": os.path.abspath(fixtures),
              "criteria": {"max_download_bytes": max_bytes, "min_psnr_db": min_psnr, "max_transformer_slowdown": max_slowdown},
              "load_average_start": os.getloadavg(), "variants": {}}
    with OrtServer() as srv:
        ref = None
        for name, folder in folders.items():
            models = ort_models(srv, folder)
            res = sample_all(models, runs)
            srv.close_all()
            if ref is None:
                ref = res
            v = {"folder": os.path.relpath(folder, out), "download_bytes": download_bytes(folder),
                 "optimized_graph": folded(srv, folder, folders["fp32"], out),
                 "graph_bytes": {g: os.path.getsize(os.path.join(folder, g, "model.onnx")) for g in
                                 ("transformer", "text_encoder", "vae_decoder", "vae_encoder")},
                 "storage": built[name][1], "runs": {}}
            for label, (lat, rgb) in res.items():
                p = psnr(rgb, ref[label][1])
                v["runs"][label] = {"psnr_db": round(p, 2) if np.isfinite(p) else "identical",
                                    "latents_max_abs_diff": float(np.abs(lat - ref[label][0]).max())}
            ps = [r["psnr_db"] for r in v["runs"].values() if r["psnr_db"] != "identical"]
            fx_ps = [r["psnr_db"] for k, r in v["runs"].items() if not k.startswith("extra") and r["psnr_db"] != "identical"]
            v["psnr_min_db"] = min(ps) if ps else "identical"
            v["psnr_fixture_min_db"] = min(fx_ps) if fx_ps else "identical"
            v["psnr_median_db"] = round(float(np.median(ps)), 2) if ps else "identical"
            report["variants"][name] = v
            log(json.dumps({"variant": name, "download_bytes": v["download_bytes"], "psnr_min_db": v["psnr_min_db"],
                            "psnr_median_db": v["psnr_median_db"], "s": round(time.time() - t0)}))
        for runtime, (nr, rp) in (("node", (rounds, repeats)), ("wasm", (wasm_rounds, wasm_repeats))):
            if nr <= 0:
                continue
            times = time_transformers(srv, folders, runtime, nr, rp)
            base = times["fp32"]["median_ms"]
            for name, t in times.items():
                report["variants"][name][f"transformer_{runtime}"] = {**t, "vs_fp32": round(t["median_ms"] / base, 3),
                                                                     "min_vs_fp32": round(t["min_ms"] / times["fp32"]["min_ms"], 3)}
            log(json.dumps({runtime: {k: (t["median_ms"], t["min_ms"], t["load_ms"]) for k, t in times.items()}, "s": round(time.time() - t0)}))
    report["chosen"] = choose(report)
    if report["chosen"]:
        chosen = folders[report["chosen"]]
        fx_runs = fixture_runs(fixtures)
        report["chosen_checks"] = {"wasm_vs_fp32_wasm": wasm_psnr(folders["fp32"], chosen, fx_runs),
                                   "pytorch_vs_onnxruntime": pytorch_vs_ort(chosen, fx_runs)}
        log(json.dumps(report["chosen_checks"]))
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = round(time.time() - t0)
    write_json(os.path.join(out, "report.json"), report)
    return report


def wasm_psnr(fp32, folder, runs):
    """The fixture runs in onnxruntime-web's WASM build (what the studio runs): compressed vs fp32."""
    with OrtServer() as srv:
        ref = sample_all(ort_models(srv, fp32, runtime="wasm"), runs)
        srv.close_all()
        got = sample_all(ort_models(srv, folder, runtime="wasm"), runs)
    return {k: {"psnr_db": round(psnr(got[k][1], ref[k][1]), 2),
                "latents_max_abs_diff": float(np.abs(got[k][0] - ref[k][0]).max())} for k in ref}


def pytorch_vs_ort(folder, runs):
    """The PyTorch modules rebuilt from the compressed graphs (from_onnx.recover, which reads the
    stored weights back exactly and checks every module against its graph) vs onnxruntime-node on
    the fixture runs: what the golden fixtures will assert."""
    from .from_onnx import checkpoint, pipeline_models_from_checkpoint, recover
    modules, info = recover(folder)
    pt = sample_all(pipeline_models_from_checkpoint(checkpoint(modules, info, folder), folder), runs)
    with OrtServer() as srv:
        ort = sample_all(ort_models(srv, folder), runs)
    res = {"graph_vs_module_max_abs_diff": info["max_abs_diff"]}
    for k in pt:
        p = psnr(pt[k][1], ort[k][1])
        res[k] = {"psnr_db": round(p, 2) if np.isfinite(p) else "identical",
                  "latents_max_abs_diff": float(np.abs(pt[k][0] - ort[k][0]).max())}
    return res


def _ok(v, c):
    p = v["psnr_min_db"]
    slow = v.get("transformer_node", {}).get("min_vs_fp32", 1.0)  # min: least disturbed by other work on the cores
    same = all(g["same_ops"] and not g["decoders_left"] for g in v["optimized_graph"].values())
    return v["download_bytes"] <= c["max_download_bytes"] and (p == "identical" or p >= c["min_psnr_db"]) \
        and slow <= c["max_transformer_slowdown"] and same


def choose(report):
    """Among the variants meeting every criterion, the one with the best worst-case PSNR (then the
    smallest); None when none does."""
    c = report["criteria"]
    ok = [(k, v) for k, v in report["variants"].items() if k != "fp32" and _ok(v, c)]
    if not ok:
        return None
    return max(ok, key=lambda kv: (kv[1]["psnr_min_db"], -kv[1]["download_bytes"]))[0]


def table(report):
    """The report as a markdown table (the model card's)."""
    rows = ["| variant | transformer | text_encoder | vae_decoder | vae_encoder | download | image PSNR vs fp32: fixture runs min / all min / median | ms per transformer forward, batch 2, 1 thread, median (x fp32) and min: onnxruntime-node / WASM |",
            "|---|---|---|---|---|---|---|---|"]
    mb = lambda b: f"{b / 1e6:.2f} MB"  # noqa: E731
    for name, v in report["variants"].items():
        g = v["graph_bytes"]
        fmt = lambda p: "=" if p == "identical" else f"{p:.1f}"  # noqa: E731
        tn, tw = v.get("transformer_node", {}), v.get("transformer_wasm", {})
        timing = " / ".join(f"{t['median_ms']:.1f} ({t['vs_fp32']:.2f}x), min {t['min_ms']:.1f}" for t in (tn, tw) if t)
        if tn.get("same_graph_as"):
            timing += f" (same graph as {tn['same_graph_as']})"
        mark = " **(shipped)**" if name == report.get("chosen") else ""
        if not all(x["same_ops"] and not x["decoders_left"] for x in v["optimized_graph"].values()):
            mark += " (not folded: decodes at every run)"
        rows.append(f"| {name}{mark} | {mb(g['transformer'])} | {mb(g['text_encoder'])} | {mb(g['vae_decoder'])} | "
                    f"{mb(g['vae_encoder'])} | {mb(v['download_bytes'])} | {fmt(v['psnr_fixture_min_db'])} / "
                    f"{fmt(v['psnr_min_db'])} / {fmt(v['psnr_median_db'])} dB | {timing} |")
    return "\n".join(rows)
