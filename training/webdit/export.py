"""Export to a model folder in format 2 (docs/model-folder.md): diffusers layout, one folder per
component with its config.json, graphs as <component>/model.onnx (opset 17, fp32, dynamic batch),
plus WebDiT's manifest.json (every downloaded file with bytes + sha256, and the sampling defaults).
Every graph is checked with onnx.checker and against PyTorch with onnxruntime."""
import base64
import json
import os
import subprocess

import numpy as np
import onnx
import torch

from . import data as D
from .fileio import sha256  # noqa: F401 (re-exported: from_onnx, fixtures and tests import it from here)
from .models import PosteriorMean

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TRAINING)
OPSET = 17
MAX_ABS_DIFF = 1e-4  # ONNX (onnxruntime) vs PyTorch, per graph
FORMAT, VERSION, FAMILY = "webdit-model", 2, "webdit"
GRAPHS = ("transformer", "vae_decoder", "vae_encoder", "text_encoder")


# ---- files ------------------------------------------------------------------------------------
def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ort_run(model_path, inputs):
    """Run a graph in onnxruntime (the node binding from the project's npm packages)."""
    req = {"model": os.path.abspath(model_path), "inputs": {}}
    for k, v in inputs.items():
        v = np.ascontiguousarray(v)
        typ = "int64" if v.dtype == np.int64 else "float32"
        req["inputs"][k] = {"type": typ, "dims": list(v.shape), "b64": base64.b64encode(v.astype(typ).tobytes()).decode()}
    p = subprocess.run(["node", os.path.join(TRAINING, "ort_run.mjs")], input=json.dumps(req).encode(),
                       capture_output=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"onnxruntime failed on {model_path}: {p.stderr.decode()[-2000:]}\n"
                           "Is `npm install` done? (onnxruntime-node comes with @huggingface/transformers)")
    outs = json.loads(p.stdout)["outputs"]
    return {k: np.frombuffer(base64.b64decode(o["b64"]), np.float32).reshape(o["dims"]) for k, o in outs.items()}


# ---- configs (also used by relayout_v1.py for a folder without PyTorch weights) ---------------
def model_index(has_vae_encoder):
    index = {"_class_name": "WebDiTPipeline", "_diffusers_version": "0.31.0",
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
             "tokenizer": ["transformers", "BertTokenizer"],
             "transformer": ["webdit", "WebDiTTransformer2DModel"],
             "vae_decoder": ["diffusers", "AutoencoderKL"]}
    if has_vae_encoder:
        index["vae_encoder"] = ["diffusers", "AutoencoderKL"]
    return index


def scheduler_config(sched):
    return {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": sched.num_train_timesteps,
            "shift": float(sched.shift)}


def transformer_config(dit_cfg, max_text_length):
    return {"_class_name": "WebDiTTransformer2DModel", "sample_size": dit_cfg.sample_size,
            "patch_size": dit_cfg.patch_size, "in_channels": dit_cfg.in_channels, "out_channels": dit_cfg.in_channels,
            "hidden_size": dit_cfg.hidden, "num_layers": dit_cfg.depth, "num_attention_heads": dit_cfg.heads,
            "joint_attention_dim": dit_cfg.context_dim, "pooled_projection_dim": dit_cfg.pooled_dim,
            "max_text_length": max_text_length}


def vae_config(vae_cfg, scaling_factor, shift_factor):
    return {"_class_name": "AutoencoderKL", "in_channels": vae_cfg.in_channels, "out_channels": vae_cfg.in_channels,
            "latent_channels": vae_cfg.latent_channels, "block_out_channels": list(vae_cfg.block_out_channels),
            "sample_size": vae_cfg.sample_size, "scaling_factor": round(scaling_factor, 6),
            "shift_factor": round(shift_factor, 6)}


def text_encoder_config(text_cfg, tok):
    return {"model_type": "clip_text_model", "architectures": ["CLIPTextModelWithProjection"],
            "vocab_size": text_cfg.vocab_size, "hidden_size": text_cfg.width, "num_hidden_layers": text_cfg.layers,
            "num_attention_heads": text_cfg.heads, "projection_dim": text_cfg.proj_dim,
            "max_position_embeddings": text_cfg.max_length, "pad_token_id": tok.pad_id,
            "bos_token_id": tok.cls_id, "eos_token_id": tok.sep_id}


def vae_scale_factor(vae_config_json):
    """As diffusers' pipelines derive it from the VAE config."""
    return 2 ** (len(vae_config_json["block_out_channels"]) - 1)


# ---- manifest ---------------------------------------------------------------------------------
def manifest_files(folder):
    """Every file the engine downloads: model_index.json and everything inside the components it
    names. The model card and extras at the top level (README.md, samples.png, ...) are not listed."""
    index = read_json(os.path.join(folder, "model_index.json"))
    rels = ["model_index.json"]
    for comp in sorted(k for k in index if not k.startswith("_")):
        if not os.path.isdir(os.path.join(folder, comp)):
            raise FileNotFoundError(f"model_index.json names '{comp}' but {folder}/{comp}/ is missing")
        for base, _, names in os.walk(os.path.join(folder, comp)):
            rels += [os.path.relpath(os.path.join(base, n), folder).replace(os.sep, "/") for n in names]
    return {rel: {"bytes": os.path.getsize(os.path.join(folder, rel)), "sha256": sha256(os.path.join(folder, rel))}
            for rel in sorted(rels)}


def write_manifest(folder, model_id=None, name=None, defaults=None):
    """(Re)write manifest.json from the folder's files; fields not given keep their current value."""
    path = os.path.join(folder, "manifest.json")
    old = read_json(path) if os.path.exists(path) and read_json(path).get("version") == VERSION else {}
    manifest = {"format": FORMAT, "version": VERSION, "id": model_id or old["id"], "name": name or old["name"],
                "family": FAMILY, "defaults": defaults or old["defaults"], "files": manifest_files(folder)}
    write_json(path, manifest)
    return manifest


def set_defaults(folder, num_inference_steps, guidance_scale, shift):
    """Evaluation's choice: defaults into the manifest, shift into scheduler_config.json, hashes redone."""
    path = os.path.join(folder, "scheduler", "scheduler_config.json")
    sched = read_json(path)
    sched["shift"] = float(shift)
    write_json(path, sched)
    defaults = {**read_json(os.path.join(folder, "manifest.json"))["defaults"],
                "num_inference_steps": int(num_inference_steps), "guidance_scale": float(guidance_scale)}
    return write_manifest(folder, defaults=defaults)


# ---- graphs -----------------------------------------------------------------------------------
def export_graph(module, args, path, inputs, outputs, dynamic=None):
    """torch.onnx.export with a dynamic batch on every input and output (more axes in `dynamic`),
    then onnx.checker. Returns the max abs difference of onnxruntime's outputs from PyTorch's."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    dynamic = {n: {0: "batch", **(dynamic or {}).get(n, {})} for n in inputs + outputs}
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                      opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    with torch.no_grad():
        ref = module(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = ort_run(path, {n: a.numpy() for n, a in zip(inputs, args)})
    diff = max(float(np.abs(r.numpy() - got[n]).max()) for n, r in zip(outputs, ref))
    if diff > MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX and PyTorch disagree on {path}: max abs diff {diff} > {MAX_ABS_DIFF}")
    return diff


def graph_inputs(models, generator):
    """Example inputs per graph (a batch of 2); the export traces them and the smoke test reuses them."""
    dit, vae, tok = models.transformer.cfg, models.vae.cfg, models.tokenizer
    tcfg, T, g = models.text_encoder.cfg, models.scheduler.num_train_timesteps, generator
    h = dit.sample_size
    return {
        "transformer": (torch.randn(2, dit.in_channels, h, h, generator=g), torch.randn(2, tok.max_length, tcfg.width, generator=g),
                        torch.randn(2, tcfg.proj_dim, generator=g), T * torch.tensor([1.0, 0.25])),
        "vae_decoder": (torch.randn(2, vae.latent_channels, h, h, generator=g),),
        # a shape scene (large flat areas are where fp32 statistics go wrong) and uniform noise
        "vae_encoder": (torch.cat([D.to_tensor_images(D.render_scene([("star", "red", "large", "in the center")], "white")[None]),
                                   torch.rand(1, vae.in_channels, vae.sample_size, vae.sample_size, generator=g) * 2 - 1]),),
        "text_encoder": (torch.tensor([tok.encode("a small red star at the top left on a white background"), tok.encode("")]),),
    }


def graph_modules(models):
    return {"transformer": models.transformer, "vae_decoder": models.vae.decoder,
            "vae_encoder": PosteriorMean(models.vae.encoder), "text_encoder": models.text_encoder}


GRAPH_NAMES = {  # graph -> (inputs, outputs), the contract in docs/model-folder.md
    "transformer": (["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"], ["out_hidden_states"]),
    "vae_decoder": (["latent_sample"], ["sample"]),
    "vae_encoder": (["sample"], ["latent_sample"]),
    "text_encoder": (["input_ids"], ["last_hidden_state", "text_embeds"]),
}
DYNAMIC = {"text_encoder": {"input_ids": {1: "sequence"}, "last_hidden_state": {1: "sequence"}}}


@torch.no_grad()
def export_all(models, out, model_id, name, defaults):
    """models: pipeline.Models; defaults: config.SamplingDefaults. Returns (manifest, diffs)."""
    os.makedirs(out, exist_ok=True)
    # 1. graphs, each checked against PyTorch
    modules, inputs = graph_modules(models), graph_inputs(models, torch.Generator().manual_seed(0))
    diffs = {}
    for graph in GRAPHS:
        names_in, names_out = GRAPH_NAMES[graph]
        diffs[graph] = export_graph(modules[graph], inputs[graph], os.path.join(out, graph, "model.onnx"),
                                    names_in, names_out, DYNAMIC.get(graph))
    # 2. configs and tokenizer
    vae = vae_config(models.vae.cfg, models.scaling_factor, models.shift_factor)
    write_json(os.path.join(out, "model_index.json"), model_index(has_vae_encoder=True))
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), scheduler_config(models.scheduler))
    write_json(os.path.join(out, "transformer", "config.json"), transformer_config(models.transformer.cfg, models.tokenizer.max_length))
    write_json(os.path.join(out, "vae_decoder", "config.json"), vae)
    write_json(os.path.join(out, "vae_encoder", "config.json"), vae)
    write_json(os.path.join(out, "text_encoder", "config.json"), text_encoder_config(models.text_encoder.cfg, models.tokenizer))
    os.makedirs(os.path.join(out, "tokenizer"), exist_ok=True)
    models.tokenizer.save(os.path.join(out, "tokenizer"))
    # 3. manifest
    manifest = write_manifest(out, model_id, name, {"num_inference_steps": defaults.num_inference_steps,
                                                     "guidance_scale": float(defaults.guidance_scale), "negative_prompt": ""})
    total = sum(v["bytes"] for v in manifest["files"].values())
    print(json.dumps({"onnx_vs_torch_max_abs_diff": diffs, "total_bytes": total}))
    return manifest, diffs
