"""Add the image-to-image fixtures (`vae_encoder`, `img2img`, and the encoder's hash in
`model_files`) to an existing fixtures JSON, for a model whose other golden values came from
weights that are gone (webdit-tiny: its original PyTorch weights; the new parts are computed by the
modules recovered from its graphs, webdit/from_onnx.py, and the distilled encoder). Every field
already in the file is kept byte for byte; write_fixtures' serialisation and field order are kept."""
import base64
import json
import os

import numpy as np
import torch

from .export import read_json
from .fixtures import encoder_fixture, img2img_fixture, model_files
from .pipeline import encode_prompt, generate

ORDER = ["model", "generated_by", "model_files", "max_length", "tokens", "text", "sigmas", "noise", "transformer",
         "vae", "vae_encoder", "runs", "img2img"]  # write_fixtures' order
NEW = ("vae_encoder", "img2img")


def _dump(obj):
    return json.dumps(obj, ensure_ascii=False)


def extend_fixtures(path, models, model_dir):
    """Returns {"added": [...], "kept_byte_identical": [...]}; raises if a kept field would change."""
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    old = json.loads(raw)
    if _dump(old) != raw:
        raise ValueError(f"{path} was not written by json.dump(ensure_ascii=False): cannot keep its bytes")
    manifest = read_json(os.path.join(model_dir, "manifest.json"))
    if "vae_encoder/model.onnx" not in manifest["files"]:
        raise ValueError(f"{model_dir} has no vae_encoder graph in its manifest")
    files = model_files(model_dir)
    changed = {p for p, h in old.get("model_files", {}).items() if files.get(p) != h}
    if changed:
        raise ValueError(f"graphs changed since the fixtures were written: {sorted(changed)}")
    new = {"model_files": files, "vae_encoder": encoder_fixture(models), "img2img": img2img_fixture(models, manifest["defaults"])}
    keys = [k for k in ORDER if k in old or k in new] + [k for k in old if k not in ORDER]
    fx = {k: new[k] if k in new else old[k] for k in keys}
    out = _dump(fx)
    kept = [k for k in old if k not in new]
    for k in kept:  # each kept field serialises to the same bytes, and those bytes are in the new file
        if _dump(fx[k]) != _dump(old[k]) or _dump(old[k]) not in out:
            raise RuntimeError(f"field {k} would change")
    with open(path, "w", encoding="utf-8") as f:
        f.write(out)
    return {"added": [k for k in new if k not in old], "replaced": [k for k in new if k in old], "kept_byte_identical": kept}


def _f32(t):
    return np.frombuffer(base64.b64decode(t["b64"]), np.float32).reshape(t["dims"])


def _u8(t):
    return np.frombuffer(base64.b64decode(t["b64"]), np.uint8).reshape(t["dims"])


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return "identical" if mse == 0 else round(float(10 * np.log10(255 ** 2 / mse)), 2)


@torch.no_grad()
def reproduce(models, fx):
    """How closely the given (recovered) models reproduce the fixtures' existing golden values,
    which the original weights computed: max abs diffs, and latents diff / image PSNR per run."""
    res = {}
    t = fx["transformer"]["inputs"]
    out = models.transformer(*(torch.from_numpy(_f32(t[k]).copy()) for k in
                               ("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep")))
    res["transformer"] = float(np.abs(out.numpy() - _f32(fx["transformer"]["out_hidden_states"])).max())
    z = torch.from_numpy(_f32(fx["vae"]["latent_sample"]).copy())
    res["vae"] = float(np.abs(models.vae.decoder(z).numpy() - _f32(fx["vae"]["sample"])).max())
    h, p = encode_prompt(models, [e["prompt"] for e in fx["text"]])
    res["text"] = max(max(float(np.abs(h[i:i + 1].numpy() - _f32(e["last_hidden_state"])).max()),
                          float(np.abs(p[i:i + 1].numpy() - _f32(e["text_embeds"])).max())) for i, e in enumerate(fx["text"]))
    res["runs"] = []
    for r in fx["runs"]:
        lat, rgb = generate(models.with_shift(r["shift"]), r["prompt"], r["negativePrompt"], r["seed"], r["numInferenceSteps"],
                            r["guidanceScale"])
        res["runs"].append({"latents_max_abs_diff": float(np.abs(lat - _f32(r["latents"])).max()),
                            "rgb_psnr_db": _psnr(rgb, _u8(r["rgb"]))})
    return res
