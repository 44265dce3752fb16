"""Export the trained models to ONNX (opset 17, fp32, dynamic batch) in the layout the studio
loads: public/models/<id>/{manifest.json, transformer.onnx, vae_decoder.onnx, text_encoder/...,
README.md}. Every graph is checked with onnx.checker and against PyTorch with onnxruntime."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL_ID = "webdit-tiny"
OPSET = 17


def ort_run(model_path, inputs):
    """Run a graph in onnxruntime (node binding from the project's npm packages)."""
    req = {"model": os.path.abspath(model_path), "inputs": {}}
    for k, v in inputs.items():
        v = np.ascontiguousarray(v)
        typ = "int64" if v.dtype == np.int64 else "float32"
        req["inputs"][k] = {"type": typ, "dims": list(v.shape), "b64": base64.b64encode(v.astype(typ).tobytes()).decode()}
    p = subprocess.run(["node", os.path.join(HERE, "ort_run.mjs")], input=json.dumps(req).encode(),
                       capture_output=True, cwd=ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"onnxruntime failed on {model_path}: {p.stderr.decode()[-2000:]}\n"
                           "Is `npm install` done? (onnxruntime-node comes with @huggingface/transformers)")
    outs = json.loads(p.stdout)["outputs"]
    return {k: np.frombuffer(base64.b64decode(o["b64"]), np.float32).reshape(o["dims"]) for k, o in outs.items()}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _TextWrapper(torch.nn.Module):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def forward(self, input_ids):
        return self.text(input_ids)


def _export(module, args, path, inputs, outputs, dynamic):
    torch.onnx.export(module, args, path, input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                      opset_version=OPSET, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


@torch.no_grad()
def export_all(run, P, models, out, preset="cpu"):
    os.makedirs(out, exist_ok=True)
    vae, clip, dit, tok, lat = models["vae"], models["clip"], models["dit"], models["tok"], models["lat"]
    vae, clip, dit = vae.float().cpu().eval(), clip.float().cpu().eval(), dit.float().cpu().eval()
    C, S = P.vae.latent_channels, dit.cfg.sample_size
    L, D, Pd = tok.max_length, P.text.width, P.text.proj_dim
    diffs = {}
    g = torch.Generator().manual_seed(0)

    # 1. transformer (DiT)
    path = os.path.join(out, "transformer.onnx")
    args = (torch.randn(2, C, S, S, generator=g), torch.randn(2, L, D, generator=g),
            torch.randn(2, Pd, generator=g), torch.tensor([1000.0, 250.0]))
    names = ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"]
    _export(dit, args, path, names, ["out_hidden_states"],
            {"hidden_states": {0: "batch"}, "encoder_hidden_states": {0: "batch"},
             "pooled_projections": {0: "batch"}, "timestep": {0: "batch"}, "out_hidden_states": {0: "batch"}})
    ref = dit(*args).numpy()
    got = ort_run(path, dict(zip(names, [a.numpy() for a in args])))["out_hidden_states"]
    diffs["transformer"] = float(np.abs(ref - got).max())

    # 2. VAE decoder
    path = os.path.join(out, "vae_decoder.onnx")
    z = torch.randn(2, C, S, S, generator=g)
    _export(vae.decoder, (z,), path, ["latent_sample"], ["sample"], {"latent_sample": {0: "batch"}, "sample": {0: "batch"}})
    diffs["vae_decoder"] = float(np.abs(vae.decoder(z).numpy() - ort_run(path, {"latent_sample": z.numpy()})["sample"]).max())

    # 3. text encoder folder, loadable by transformers.js from_pretrained
    tdir = os.path.join(out, "text_encoder")
    os.makedirs(os.path.join(tdir, "onnx"), exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(run, "text_encoder", f), os.path.join(tdir, f))
    tcfg = clip.text.cfg
    config = {"model_type": "clip_text_model", "architectures": ["CLIPTextModelWithProjection"],
              "vocab_size": tcfg.vocab_size, "hidden_size": tcfg.width, "num_hidden_layers": tcfg.layers,
              "num_attention_heads": tcfg.heads, "projection_dim": tcfg.proj_dim,
              "max_position_embeddings": tcfg.max_length, "pad_token_id": tok.pad_id,
              "bos_token_id": tok.cls_id, "eos_token_id": tok.sep_id}
    with open(os.path.join(tdir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    path = os.path.join(tdir, "onnx", "text_model.onnx")
    ids = torch.tensor([tok.encode("a small red star at the top left on a white background"), tok.encode("")])
    _export(_TextWrapper(clip.text), (ids,), path, ["input_ids"], ["last_hidden_state", "text_embeds"],
            {"input_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"},
             "text_embeds": {0: "batch"}})
    h, p = clip.text(ids)
    o = ort_run(path, {"input_ids": ids.numpy()})
    diffs["text_encoder"] = float(max(np.abs(h.numpy() - o["last_hidden_state"]).max(), np.abs(p.numpy() - o["text_embeds"]).max()))

    # 4. manifest
    files = {}
    for rel in ["transformer.onnx", "vae_decoder.onnx", "text_encoder/config.json", "text_encoder/tokenizer.json",
                "text_encoder/tokenizer_config.json", "text_encoder/onnx/text_model.onnx"]:
        fp = os.path.join(out, rel)
        files[rel] = {"bytes": os.path.getsize(fp), "sha256": sha256(fp)}
    manifest = {
        "id": MODEL_ID,
        "name": "WebDiT tiny (emoji + shapes, 64x64)",
        "family": "webdit",
        "version": 1,
        "image_size": S * 4,
        "latent_channels": C,
        "latent_size": S,
        "vae_scale_factor": 4,
        "patch_size": dit.cfg.patch_size,
        "scaling_factor": round(lat["scaling_factor"], 6),
        "shift_factor": round(lat["shift_factor"], 6),
        "text_max_length": L,
        "text_hidden_size": D,
        "pooled_dim": Pd,
        "scheduler": {"type": "FlowMatchEulerDiscreteScheduler", "shift": P.shift, "num_train_timesteps": 1000},
        "defaults": {"steps": P.steps, "guidance_scale": P.guidance, "negative_prompt": ""},
        "graphs": {"transformer": "transformer.onnx", "vae_decoder": "vae_decoder.onnx", "text_encoder": "text_encoder"},
        "files": files,
        "preset": preset,
        "params": {"transformer": sum(x.numel() for x in dit.parameters()),
                   "vae_decoder": sum(x.numel() for x in vae.decoder.parameters()),
                   "text_encoder": sum(x.numel() for x in clip.text.parameters())},
        "dit": asdict(dit.cfg),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    # the image tower is not shipped; evaluation and fixtures use it from the run folder
    total = sum(v["bytes"] for v in files.values())
    print(json.dumps({"onnx_vs_torch_max_abs_diff": diffs, "total_bytes": total}))
    for k, v in diffs.items():
        if v > 1e-3:
            raise RuntimeError(f"ONNX and PyTorch disagree on {k}: max abs diff {v}")
    return manifest, diffs


def set_defaults(out, steps, guidance, shift):
    """Write the sampling defaults chosen by evaluation into the manifest (hashes are unaffected)."""
    path = os.path.join(out, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    m["defaults"]["steps"], m["defaults"]["guidance_scale"] = int(steps), float(guidance)
    m["scheduler"]["shift"] = float(shift)
    with open(path, "w") as f:
        json.dump(m, f, indent=1)
