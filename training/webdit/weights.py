"""A run folder's trained weights as one compact file (bf16, no optimizer state), split into parts
small enough to come back from the lent GPU machine (16 MiB a file there), and back into a run folder.

    pack(run, out_dir)           -> out_dir/weights.json + weights.pt.part00, .part01, ...
    restore(src, run, mode=...)  -> run/vae.pt, clip.pt, dit.pt (stages.py's format, fresh AdamW state)
                                    + run/tokenizer/, so train.py --run <run> exports or trains on

What goes in, in this order while it fits `max_bytes` (what did not fit is listed in weights.json):
the DiT's EMA (the model that is exported), the VAE, the text encoder (with the tokenizer and the
latent factors), the raw DiT, the CLIP image tower. restore() without the raw DiT starts it from the
EMA; without the image tower starts a fresh one (only evaluation's retrieval uses it).

A component is "trained" when its stage checkpoint has training seconds (from_onnx.seed_run writes
the frozen ones with none): restore(frozen_from=<model folder>) takes the frozen components exactly
from that folder's graphs (from_onnx) instead of their bf16 copies.
"""
import hashlib
import io
import json
import os
from dataclasses import asdict

import torch

FORMAT = "webdit-weights-1"
PART_BYTES = 15 << 20  # under the 16 MiB a returned file may have
ORDER = ("dit_ema", "vae", "text", "dit", "image")


def _stage(run, name):
    path = os.path.join(run, f"{name}.pt")
    return torch.load(path, map_location="cpu") if os.path.exists(path) else None


def _cast(sd, dtype):
    return {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}


def _nbytes(sd):
    return sum(v.numel() * v.element_size() for v in sd.values())


def pack(run, out_dir, preset, dtype=torch.bfloat16, max_bytes=56 << 20, note=None):
    """Write run's weights to out_dir (weights.json + parts). Returns the json's dict."""
    from .config import PRESETS
    from .stages import dit_config, text_config
    from .tokenizer import WordPieceTokenizer
    P = PRESETS[preset]
    st = {n: _stage(run, n) for n in ("vae", "clip", "dit")}
    if any(v is None for v in st.values()):
        raise FileNotFoundError(f"{run}: needs vae.pt, clip.pt and dit.pt")
    clip = st["clip"]["model"]
    comps = {"dit_ema": st["dit"]["ema"], "vae": st["vae"]["model"],
             "text": {k[5:]: v for k, v in clip.items() if k.startswith("text.")},
             "dit": st["dit"]["model"],
             "image": {k: v for k, v in clip.items() if not k.startswith("text.")}}
    state, dropped, used = {}, [], 0
    for name in ORDER:
        sd = _cast(comps[name], dtype)
        if used + _nbytes(sd) > max_bytes:
            dropped.append(name)
            continue
        state[name], used = sd, used + _nbytes(sd)
    tok_dir = os.path.join(run, "tokenizer")
    lat = torch.load(os.path.join(run, "latents.pt"))
    stage_info = {n: {"step": int(s["step"]), "done": bool(s["done"]), "total": s.get("total"),
                      "seconds": round(float(s.get("seconds", 0.0)), 1), "trained": float(s.get("seconds", 0.0)) > 0}
                  for n, s in st.items()}
    text_cfg = text_config(P, WordPieceTokenizer.load(tok_dir))
    ck = {"format": FORMAT, "dtype": str(dtype).replace("torch.", ""), "preset": preset, "note": note,
          "configs": {"vae": asdict(P.vae), "text": asdict(text_cfg), "dit": asdict(dit_config(P))},
          "stages": stage_info, "latents": {"shift_factor": float(lat["shift_factor"]), "scaling_factor": float(lat["scaling_factor"])},
          "tokenizer": {f: open(os.path.join(tok_dir, f)).read() for f in sorted(os.listdir(tok_dir))},
          "state": state, "dropped": dropped}
    buf = io.BytesIO()
    torch.save(ck, buf)
    blob = buf.getvalue()
    os.makedirs(out_dir, exist_ok=True)
    parts = []
    for k in range(0, len(blob), PART_BYTES):
        name = f"weights.pt.part{k // PART_BYTES:02d}"
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(blob[k:k + PART_BYTES])
        parts.append({"file": name, "bytes": len(blob[k:k + PART_BYTES])})
    meta = {"format": FORMAT, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(), "parts": parts,
            "components": {n: _nbytes(sd) for n, sd in state.items()}, "dropped": dropped, "stages": stage_info,
            "dtype": ck["dtype"], "note": note,
            "join": "cat weights.pt.part* > weights.pt  (or: training/gpu/restore.py <this folder> --run <run>)"}
    with open(os.path.join(out_dir, "weights.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def load(src):
    """The checkpoint dict from a folder with weights.json + parts, or a joined weights.pt."""
    if os.path.isdir(src):
        meta = json.load(open(os.path.join(src, "weights.json")))
        blob = b"".join(open(os.path.join(src, p["file"]), "rb").read() for p in meta["parts"])
        if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
            raise RuntimeError(f"{src}: the parts do not join to the sha256 in weights.json")
        return torch.load(io.BytesIO(blob), map_location="cpu")
    return torch.load(src, map_location="cpu")


def modules(ck):
    """(VAE, CLIP, DiT raw, DiT EMA) as float32 modules from a checkpoint (see the module doc for
    what a checkpoint without some component gives)."""
    from .config import DiTConfig, TextConfig, VAEConfig
    from .models import CLIP, DiT, VAE
    c = ck["configs"]
    vae = VAE(VAEConfig(**{**c["vae"], "block_out_channels": tuple(c["vae"]["block_out_channels"])}))
    text = TextConfig(**{**c["text"], "image_tower_channels": tuple(c["text"]["image_tower_channels"])})
    clip = CLIP(text, vae.cfg.sample_size)
    ema, dit = DiT(DiTConfig(**c["dit"])), DiT(DiTConfig(**c["dit"]))
    s = ck["state"]
    f32 = lambda sd: {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}  # noqa: E731
    if "vae" in s:
        vae.load_state_dict(f32(s["vae"]))
    if "text" in s:
        clip.text.load_state_dict(f32(s["text"]))
    if "image" in s:
        missing = clip.load_state_dict(f32(s["image"]), strict=False).missing_keys
        assert all(k.startswith("text.") for k in missing), missing
    ema.load_state_dict(f32(s["dit_ema"]))
    dit.load_state_dict(f32(s.get("dit", s["dit_ema"])))
    return vae, clip, dit, ema


def restore(src, run, mode="export", train=("transformer",), frozen_from=None, preset="cpu"):
    """Write run's stage checkpoints from a packed checkpoint (src: folder or weights.pt).
    mode "export": every stage finished at its recorded step (train.py then only exports/evaluates).
    mode "warm": the components in `train` (vae, text_encoder, transformer) restart at step 0 from
    these weights, model and EMA both from the EMA (as from_onnx.seed_run), the others finished.
    frozen_from: a model folder whose graphs give the components this checkpoint did not train."""
    from .from_onnx import _stage_state
    ck = load(src) if isinstance(src, str) else src
    if ck.get("format") != FORMAT:
        raise ValueError(f"{src}: not a {FORMAT} checkpoint")
    need = {"vae": "vae", "text": "text_encoder", "dit_ema": "transformer"}
    missing = [n for n in need if n not in ck["state"]]
    vae, clip, dit, ema = modules(ck)
    os.makedirs(os.path.join(run, "tokenizer"), exist_ok=True)
    for f, text in ck["tokenizer"].items():
        with open(os.path.join(run, "tokenizer", f), "w") as fh:
            fh.write(text)
    st = ck["stages"]
    frozen = [n for n, s in (("vae", st["vae"]), ("text_encoder", st["clip"])) if not s["trained"]]
    if frozen_from:
        from .from_onnx import checkpoint, models_from_checkpoint, recover
        mods, info = recover(frozen_from, preset, check=False)
        fv, fd, ft = models_from_checkpoint(checkpoint(mods, info, frozen_from))
        if "vae" in frozen or "vae" in missing:
            vae = fv
        if "text_encoder" in frozen or "text" in missing:
            clip.text.load_state_dict(ft.state_dict())
    elif any(n in missing for n in ("vae", "text")):
        raise ValueError(f"{src}: {missing} not in the checkpoint: pass frozen_from=<the model folder it started from>")
    if mode == "warm":
        unknown = set(train) - {"vae", "text_encoder", "transformer"}
        if unknown:
            raise ValueError(f"unknown components: {sorted(unknown)}")
        ema_src = ema
        states = {"vae": _stage_state(vae, 0 if "vae" in train else st["vae"]["step"], "vae" not in train),
                  "clip": _stage_state(clip, 0 if "text_encoder" in train else st["clip"]["step"], "text_encoder" not in train),
                  "dit": _stage_state(ema_src, 0 if "transformer" in train else st["dit"]["step"], "transformer" not in train,
                                      ema=ema_src)}
    elif mode == "export":
        states = {"vae": _stage_state(vae, st["vae"]["step"], True), "clip": _stage_state(clip, st["clip"]["step"], True),
                  "dit": _stage_state(dit, st["dit"]["step"], True, ema=ema)}
    else:
        raise ValueError(mode)
    for n, s in states.items():
        s["seconds"] = st[n]["seconds"] if (mode == "export" or s["done"]) else 0.0
        torch.save(s, os.path.join(run, f"{n}.pt"))
    return {"run": run, "mode": mode, "stages": {n: {"step": s["step"], "done": s["done"]} for n, s in states.items()},
            "from_checkpoint_bf16": [n for n in ("vae", "text", "dit_ema") if n in ck["state"]],
            "frozen_from": frozen_from}
