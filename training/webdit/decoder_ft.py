"""Fine-tune the VAE decoder alone, for sharper images, on the latents the DiT was trained on.

The DiT's samples are as sharp as the VAE's own reconstructions (Laplacian variance ~0.64 of the
references for both, webdit/quality.py's measure): the decoder, trained with MSE + 0.2 L1, is what
blurs. The encoder, the latent space and so the DiT stay as they are (as Stable Diffusion's
"ft-MSE"/"ft-EMA" decoders were fine-tuned); only decoder weights change, the graph keeps its shape.

Losses (LOSSES):
  rec   the VAE stage's MSE + 0.2 L1 (more of the same training)
  grad  rec + L1 between the image gradients (finite differences) of the reconstruction and the image
  lap   rec + LAP_WEIGHT x the squared log-ratio of each reconstruction's Laplacian variance (grey,
        4-neighbour, quality.py's measure) to its image's: it asks for the image's amount of fine
        detail, not its exact pixels, and the rec term decides where the detail goes
  lapm  rec + LAP_WEIGHT x the squared log of the batch's ratio of mean Laplacian variances (the form
        quality.py's sharpness takes over a set of images): the batch as a whole, not each image,
        matches the data's amount of detail
  gan   grad + a hinge adversarial loss from a small patch discriminator, weighted as taming-transformers'
        VQGAN does (the ratio of the two losses' gradient norms at the decoder's last layer) times ADV;
        the discriminator alone trains for the first DISC_WARMUP of the steps

Data: the run's latents.pt (posterior means of every image, unscaled) and data.pkl's images and
held-out mask; training draws from the training part; the report is on the held-out part: PSNR
(emoji, shapes) and the Laplacian-variance ratio of the reconstructions (emoji: quality.py's
sharpness is measured on emoji), plus the same for the starting decoder.

Checkpoints (run/<name>.pt: decoder, discriminator, both optimizers, step, total) every CKPT_EVERY
steps and at the end, so a stopped run continues where it stopped."""
import math
import os
import pickle
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data as D
from .config import TRAIN_SEED
from .quality import laplacian_variance
from .models import GroupNorm
from .pipeline import to_uint8
from .stages import autocast, log

LOSSES = ("rec", "grad", "gan", "lap", "lapm")
GRAD_WEIGHT = 1.0
LAP_WEIGHT = 0.05
ADV = 0.1
DISC_WARMUP = 0.1
CKPT_EVERY = 100
EVAL_N = 400  # held-out images per kind in the report


def rec_loss(rec, x):
    return F.mse_loss(rec, x) + 0.2 * F.l1_loss(rec, x)


def grad_loss(rec, x):
    """L1 between horizontal and vertical finite differences."""
    dx = lambda a: a[..., :, 1:] - a[..., :, :-1]
    dy = lambda a: a[..., 1:, :] - a[..., :-1, :]
    return F.l1_loss(dx(rec), dx(x)) + F.l1_loss(dy(rec), dy(x))


def lap_var(x):
    """Per image (B,3,H,W) in [-1,1]: variance of the 4-neighbour Laplacian of the grey image, in
    0-255 units as quality.laplacian_variance."""
    g = (x.float() + 1) * 127.5
    g = g.mean(1)
    lap = g[:, 1:-1, :-2] + g[:, 1:-1, 2:] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1] - 4 * g[:, 1:-1, 1:-1]
    return lap.flatten(1).var(1, unbiased=False)


def lap_loss(rec, x, eps=1.0):
    return ((torch.log(lap_var(rec) + eps) - torch.log(lap_var(x) + eps)) ** 2).mean()


def lap_mean_loss(rec, x):
    """Squared log of mean Laplacian variance of rec over that of x (over the batch)."""
    return (torch.log(lap_var(rec).mean()) - torch.log(lap_var(x).mean())) ** 2


class PatchDisc(nn.Module):
    """64x64 image -> 8x8 logits (receptive field ~34 pixels)."""

    def __init__(self, ch=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch, 2 * ch, 4, 2, 1), GroupNorm(8, 2 * ch), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * ch, 4 * ch, 4, 2, 1), GroupNorm(8, 4 * ch), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * ch, 1, 3, 1, 1))

    def forward(self, x):
        return self.net(x)


def last_layer(decoder):
    return decoder.net[-1].weight


def adaptive_weight(rec_l, adv_l, layer):
    """taming-transformers' VQGAN: ||d rec / d layer|| / ||d adv / d layer||, clamped."""
    g_rec = torch.autograd.grad(rec_l, layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_l, layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()


def load_run(run):
    with open(os.path.join(run, "data.pkl"), "rb") as f:
        ds = pickle.load(f)
    lat = torch.load(os.path.join(run, "latents.pt"), map_location="cpu")
    return ds["imgs"], np.asarray(ds["val"]), np.array([m["kind"] == "emoji" for m in ds["meta"]]), lat["latents"]


@torch.no_grad()
def report(decoder, imgs, val, emoji, latents, n=EVAL_N, seed=0):
    """Held-out PSNR (emoji / shapes) and Laplacian-variance ratio of the reconstructions vs the images."""
    rng = np.random.RandomState(seed)
    out = {}
    for kind, mask in (("emoji", emoji), ("shapes", ~emoji)):
        idx = np.where(val & mask)[0]
        idx = np.sort(rng.choice(idx, min(n, len(idx)), replace=False))
        recs = np.concatenate([to_uint8(decoder(latents[idx[i:i + 100]]).float()) for i in range(0, len(idx), 100)])
        ref = imgs[idx]
        mse = ((recs.astype(np.float64) - ref) ** 2).reshape(len(idx), -1).mean(1)
        out[kind] = {"n": int(len(idx)), "psnr_db": float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10)))),
                     "laplacian_ratio": float(laplacian_variance(recs).mean() / laplacian_variance(ref).mean())}
    return out


def finetune_decoder(run, name, decoder, loss="grad", minutes=10.0, steps=None, batch=32, lr=1e-4, adv=ADV,
                     grad_weight=GRAD_WEIGHT, seed=TRAIN_SEED, data_run=None, disc_lr=None, lap_weight=LAP_WEIGHT):
    """Trains decoder in place; returns {"before": report, "after": report, ...}, or None when it ran
    out of time (run again to continue). data_run (default run) holds data.pkl and latents.pt (a
    training run's folder); checkpoints and the log go into run."""
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: expected one of {LOSSES}")
    imgs, val, emoji, latents = load_run(data_run or run)
    train_idx = np.where(~val)[0]
    path = os.path.join(run, f"{name}.pt")
    disc = PatchDisc() if loss == "gan" else None
    opt = torch.optim.AdamW(decoder.parameters(), lr=lr, weight_decay=0.0, betas=(0.5, 0.9) if disc else (0.9, 0.99))
    disc_lr = disc_lr or lr
    opt_d = torch.optim.AdamW(disc.parameters(), lr=disc_lr, weight_decay=0.0, betas=(0.5, 0.9)) if disc else None
    step, total, before = 0, steps, None
    if os.path.exists(path):
        st = torch.load(path, map_location="cpu")
        decoder.load_state_dict(st["decoder"]); opt.load_state_dict(st["opt"])
        if disc is not None:
            disc.load_state_dict(st["disc"]); opt_d.load_state_dict(st["opt_d"])
        step, total, before = st["step"], st["total"], st["before"]
        log(run, f"{name}: resuming at step {step}/{total}")
    if before is None:
        before = report(decoder.eval(), imgs, val, emoji, latents)
        log(run, f"{name}: before {before}")
    decoder.train()

    def save(done=False):
        st = {"decoder": decoder.state_dict(), "opt": opt.state_dict(), "step": step, "total": total,
              "before": before, "loss": loss, "done": done}
        if disc is not None:
            st.update(disc=disc.state_dict(), opt_d=opt_d.state_dict())
        torch.save(st, path + ".tmp")
        os.replace(path + ".tmp", path)

    rng = np.random.RandomState(seed + step)
    t0, begin, deadline = time.time(), step, time.time() + minutes * 60
    while total is None or step < total:
        idx = rng.choice(train_idx, batch)
        z, x = latents[idx], D.to_tensor_images(imgs[idx])
        frac = step / total if total else 0.0
        scale = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr * scale
        for g in (opt_d.param_groups if opt_d else []):
            g["lr"] = disc_lr * scale
        with autocast("cpu"):
            rec = decoder(z).float()
        l_rec = rec_loss(rec, x)
        l = l_rec + (grad_weight * grad_loss(rec, x) if loss in ("grad", "gan") else 0.0)
        if loss == "lap":
            l = l + lap_weight * lap_loss(rec, x)
        elif loss == "lapm":
            l = l + lap_weight * lap_mean_loss(rec, x)
        warm = disc is not None and step < DISC_WARMUP * (total or 1)
        if disc is not None and not warm:
            with autocast("cpu"):
                g_adv = -disc(rec).float().mean()
            l = l + adv * adaptive_weight(l, g_adv, last_layer(decoder)) * g_adv
        if not warm:
            opt.zero_grad(set_to_none=True)
            l.backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
            opt.step()
        if disc is not None:
            with autocast("cpu"):
                d_real, d_fake = disc(x).float(), disc(rec.detach()).float()
            l_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            opt_d.step()
        step += 1
        if total is None and step == begin + 5:  # fit the schedule to the time budget
            total = max(step + 1, int((minutes * 60) / ((time.time() - t0) / 5)))
            log(run, f"{name}: {(time.time() - t0) / 5 * 1000:.0f} ms/step: {total} steps in {minutes} min")
        if step % 50 == 0:
            log(run, f"{name}: step {step}/{total} rec {l_rec.item():.4f} total {l.item():.4f}"
                     + (f" disc {l_d.item():.3f}" if disc is not None else ""))
        if step % CKPT_EVERY == 0:
            save()
        if time.time() > deadline + 60 and step < total:  # far over budget: stop cleanly, resumable
            log(run, f"{name}: out of time at step {step}/{total}: saved, run again to continue")
            save()
            return None
    save(done=True)
    after = report(decoder.eval(), imgs, val, emoji, latents)
    log(run, f"{name}: after {after}")
    return {"loss": loss, "steps": step, "batch": batch, "lr": lr, "adv": adv if disc else None,
            "grad_weight": grad_weight if loss in ("grad", "gan") else None,
            "disc_lr": disc_lr if disc else None, "lap_weight": lap_weight if loss in ("lap", "lapm") else None, "seconds": round(time.time() - t0, 1),
            "before": before, "after": after}


# ---- the model card's section: the variants side by side -----------------------------------------
BEGIN, END = "<!-- decoder:begin (training/finetune_decoder.py --card) -->", "<!-- decoder:end -->"


def card_block(reports, chosen=None):
    """reports: {name: report.json of a run}. A table of held-out PSNR and Laplacian ratio before/after."""
    first = next(iter(reports.values()))["before"]
    rows = [f"| start (the decoder before this fine-tune) | | | {first['emoji']['psnr_db']:.2f} / {first['shapes']['psnr_db']:.2f} | "
            f"{first['emoji']['laplacian_ratio']:.3f} / {first['shapes']['laplacian_ratio']:.3f} |"]
    for name, r in reports.items():
        a = r["after"]
        how = r["loss"] + (f", adversarial weight {r['adv']}" if r.get("adv") else "") + \
            (f", discriminator lr {r['disc_lr']:g}" if r.get("disc_lr") and r.get("disc_lr") != r.get("lr") else "") + \
            (f", weight {r['lap_weight']:g}" if r.get("lap_weight") else "") + \
            (f", lr {r['lr']:g}" if r.get("lr") != 1e-4 else "") + \
            (f", continued from {os.path.basename(os.path.dirname(r['init']))}" if r.get("init") else "")
        rows.append(f"| {'**' + name + '** (shipped)' if name == chosen else name} | {how} | {r['steps']} x {r['batch']} "
                    f"({r['seconds'] / 60:.1f} min) | {a['emoji']['psnr_db']:.2f} / {a['shapes']['psnr_db']:.2f} | "
                    f"{a['emoji']['laplacian_ratio']:.3f} / {a['shapes']['laplacian_ratio']:.3f} |")
    n = first["emoji"]["n"], first["shapes"]["n"]
    return (f"{BEGIN}\n## Sharper images: the VAE decoder fine-tuned alone (training/finetune_decoder.py)\n\n"
            "The DiT's samples were as sharp as the VAE's reconstructions (Laplacian variance ratio ~0.64 for both; "
            "other sampling settings did not close the gap: `training/sharpness_probe.py`, below), so the decoder was "
            "fine-tuned alone on the latents the DiT was trained on: the encoder, the latent space and the DiT are "
            "unchanged. Each variant starts from the decoder shipped before (v1-v4; or from the variant its row names), trains on "
            f"1 CPU thread, and is measured on held-out "
            f"images ({n[0]} emoji / {n[1]} shape scenes): reconstruction PSNR and the Laplacian variance of the "
            "reconstructions over the images' (1.0 = as sharp as the data).\n\n"
            "| variant | loss | steps x batch | PSNR emoji / shapes (dB) | Laplacian ratio emoji / shapes |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) + f"\n{END}\n")
