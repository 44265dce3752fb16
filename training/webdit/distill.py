"""A VAE encoder for a model that shipped without one: models.Encoder trained against the FROZEN
decoder recovered from the graph (from_onnx.py), so decoder(encoder_mean(x)) reconstructs x and the
latents land where the DiT was trained, (mean - shift_factor) * scaling_factor ~ zero mean, unit
variance (the folder's factors, measured on the original encoder's latents).

Loss: MSE + 0.2 L1 on decoder(mean) (the recipe's VAE loss, on the posterior mean that the
vae_encoder graph exports) + a small KL of the batch's normalised latent statistics toward N(0, 1).
The log-variance half of the encoder is not trained (the graph never uses it): after training it
is set to a constant small variance (LOGVAR), so the checkpoint is a usable VAE for a warm start.

Data: the recipe's (data.build: emoji + shape scenes, same held-out mask); training uses the
training part only, PSNR is reported on the held-out part, shapes and emoji separately."""
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import data as D
from .config import TRAIN_SEED
from .evaluate import vae_psnr
from .models import Encoder
from .stages import log, train_loop

KL_WEIGHT = 1e-3
LOGVAR = -10.0  # the posterior's log-variance after training (std ~ 0.007 in raw latent units)
FLIP = True  # emoji and shapes are both fine mirrored (as the VAE stage)


def latent_stat_kl(mean, shift, scale):
    """KL(N(m, v) || N(0, 1)) of the batch's normalised latents (one mean and variance over all values)."""
    u = (mean.float() - shift) * scale
    m, v = u.mean(), u.var()
    return 0.5 * (m * m + v - 1 - torch.log(v + 1e-8))


class Distill(torch.nn.Module):
    """The trainable encoder plus the frozen decoder (not a submodule: not in state_dict, not optimised)."""

    def __init__(self, encoder, decoder, shift, scale):
        super().__init__()
        self.encoder = encoder
        self.frozen = [decoder.eval().requires_grad_(False)]
        self.shift, self.scale = shift, scale

    def forward(self, x):
        mean = self.encoder(x)[0]
        rec = self.frozen[0](mean).float()
        loss = F.mse_loss(rec, x) + 0.2 * F.l1_loss(rec, x)
        return loss + KL_WEIGHT * latent_stat_kl(mean, self.shift, self.scale)


def load_data(run, n_shapes, cache, emoji_limit=None):
    path = os.path.join(run, "data.npz")
    if not os.path.exists(path):
        imgs, _, meta, val = D.build(n_shapes, emoji_limit, cache=cache)
        kind = np.array([m["kind"] == "emoji" for m in meta])
        np.savez(path, imgs=imgs, val=val, emoji=kind)
    d = np.load(path)
    return d["imgs"], d["val"], d["emoji"]


@torch.no_grad()
def latent_stats(encoder, imgs, shift, scale, batch=128):
    us = [((encoder(D.to_tensor_images(imgs[i:i + batch]))[0] - shift) * scale) for i in range(0, len(imgs), batch)]
    u = torch.cat(us)
    return {"mean": float(u.mean()), "std": float(u.std()), "n": len(u),
            "per_channel_mean": [round(float(a), 3) for a in u.mean((0, 2, 3))],
            "per_channel_std": [round(float(a), 3) for a in u.std((0, 2, 3))]}


def distill_encoder(run, decoder, vae_cfg, shift, scale, cache, minutes=20.0, batch=16, lr=1e-3, n_shapes=16000,
                    steps=None, n_eval=400, device="cpu"):
    """Train (or resume) run/vae_encoder.pt within about `minutes` (the step count is fixed on the
    first call from a timing probe and kept in run/distill.json, so a resumed run has the same LR
    schedule). Returns (encoder, report)."""
    os.makedirs(run, exist_ok=True)
    imgs, val, emoji = load_data(run, n_shapes, cache)
    train_idx = np.where(~val)[0]
    torch.manual_seed(0)
    enc = Encoder(vae_cfg).to(device)
    model = Distill(enc, decoder.to(device), shift, scale)

    def batch_fn(rng):
        idx = rng.choice(train_idx, batch)
        x = D.to_tensor_images(imgs[idx])
        if FLIP:
            flip = torch.from_numpy(rng.rand(len(idx)) < 0.5)
            x[flip] = x[flip].flip(-1)
        return {"x": x.to(device)}

    meta_path = os.path.join(run, "distill.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    if "steps" not in meta:
        if steps is None:  # timing probe on a throwaway copy
            probe = Distill(Encoder(vae_cfg).to(device), decoder, shift, scale)
            opt = torch.optim.AdamW(probe.parameters())
            rng, times = np.random.RandomState(TRAIN_SEED), []
            for _ in range(6):
                t0 = time.time()
                loss = probe(batch_fn(rng)["x"]); opt.zero_grad(); loss.backward(); opt.step()
                times.append(time.time() - t0)
            per_step = float(np.median(times[1:]))
            steps = max(50, int(minutes * 60 / per_step))
            log(run, f"distill: {per_step:.2f} s/step at batch {batch} -> {steps} steps for {minutes} min")
        meta = {"steps": int(steps), "batch": batch, "lr": lr, "minutes": minutes, "kl_weight": KL_WEIGHT,
                "n_shapes": n_shapes}
        json.dump(meta, open(meta_path, "w"))
    t0 = time.time()
    train_loop(run, "vae_encoder", model, meta["steps"], meta["lr"], batch_fn, lambda m, b: m(b["x"]), device,
               ckpt_every=100)
    st = torch.load(os.path.join(run, "vae_encoder.pt"), map_location=device)
    model.load_state_dict(st["model"])
    enc = model.encoder.eval()
    with torch.no_grad():  # the unused log-variance half: a constant small variance
        C = vae_cfg.latent_channels
        enc.net[-1].weight[C:] = 0
        enc.net[-1].bias[C:] = LOGVAR
    # held-out reconstruction and latent statistics (shapes and emoji separately)
    rng = np.random.RandomState(0)
    report = {"steps": meta["steps"], "batch": meta["batch"], "train_seconds": round(float(st.get("seconds", 0.0)), 1)}
    for kind, mask in (("shapes", ~emoji), ("emoji", emoji)):
        held = np.where(val & mask)[0]
        held = np.sort(rng.choice(held, min(n_eval, len(held)), replace=False))
        vae = torch.nn.Module(); vae.encoder, vae.decoder = enc, decoder
        report[f"psnr_held_out_{kind}_db"] = round(vae_psnr(vae, imgs[held]), 2)
        report[f"n_held_out_{kind}"] = len(held)
        report[f"latents_held_out_{kind}"] = latent_stats(enc, imgs[held], shift, scale)
    tr = np.sort(rng.choice(train_idx, 2000, replace=False))
    report["latents_train_2000"] = latent_stats(enc, imgs[tr], shift, scale)
    log(run, f"distill: {json.dumps(report)} (evaluated in {time.time() - t0:.0f} s incl. training)")
    with open(os.path.join(run, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return enc, report
