"""The training stages: data -> VAE -> latents -> tokenizer -> CLIP -> text cache -> DiT. Each one
checkpoints into the run folder and is skipped when its output exists, so a stopped run resumes
where it stopped; load_all() rebuilds every trained model from a finished run."""
import math
import os
import pickle
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from . import data as D
from .config import TRAIN_SEED, Preset, VAEConfig
from .models import CLIP, DiT, VAE
from .pipeline import Models
from .tokenizer import WordPieceTokenizer

ENCODE_BATCH = 512  # images or captions per forward when caching latents / text embeddings


def log(run, msg):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    with open(os.path.join(run, "log.txt"), "a") as f:
        f.write(line + "\n")


def autocast(device):
    use = device == "cuda" or open("/proc/cpuinfo").read().count("avx512_bf16") > 0
    return torch.autocast(device, dtype=torch.bfloat16, enabled=use)


def lr_at(step, total, base, warmup=100):
    warm = min(1.0, (step + 1) / min(warmup, max(1, total // 10)))
    return base * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(1, total))))


def ema_decay(step):
    return min(0.9999, (1 + step) / (10 + step))


def save_ckpt(path, **state):
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def train_loop(run, name, model, steps, lr, batch_fn, loss_fn, device, ema=None, ckpt_every=200):
    """AdamW, cosine LR with warm-up, gradient clipping, optional EMA; checkpoints run/<name>.pt."""
    path = os.path.join(run, f"{name}.pt")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    step, seconds = 0, 0.0
    if os.path.exists(path):
        st = torch.load(path, map_location=device)
        model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"]); step = st["step"]
        seconds = st.get("seconds", 0.0)
        if ema is not None:
            ema.load_state_dict(st["ema"])
        if st.get("done"):
            return
        log(run, f"{name}: resuming at step {step}")
    rng = np.random.RandomState(TRAIN_SEED + step)
    t0, seen, losses = time.time(), 0, []
    last = t0
    while step < steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        b = batch_fn(rng)
        with autocast(device):
            loss = loss_fn(model, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema is not None:
            d = ema_decay(step)
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        seen += len(next(iter(b.values())))
        losses.append(loss.item())
        if step % 50 == 0 or step == steps:
            dt = time.time() - t0
            log(run, f"{name}: step {step}/{steps} loss {np.mean(losses[-50:]):.4f} {seen / dt:.1f} samples/s")
        if step % ckpt_every == 0 or step == steps:
            now = time.time()
            seconds += now - last
            last = now
            save_ckpt(path, model=model.state_dict(), opt=opt.state_dict(), step=step, done=step == steps, seconds=seconds,
                      ema=ema.state_dict() if ema is not None else None)


# ---------------------------------------------------------------------------------------------
def stage_data(run, P: Preset, cache=None):
    path = os.path.join(run, "data.pkl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    imgs, caps, meta, val = D.build(P.n_shapes, P.emoji_limit, cache=cache)
    ds = {"imgs": imgs, "caps": caps, "meta": meta, "val": val}
    with open(path, "wb") as f:
        pickle.dump(ds, f, protocol=4)
    log(run, f"data: {len(imgs)} images ({sum(m['kind'] == 'emoji' for m in meta)} emoji), {int(val.sum())} held out")
    return ds


def vae_loss(m, b):
    rec, kl = m(b["x"])
    rec = rec.float()
    return F.mse_loss(rec, b["x"]) + 0.2 * F.l1_loss(rec, b["x"]) + 1e-6 * kl.float()


def train_vae(run, name, cfg: VAEConfig, steps, batch, lr, imgs, train_idx, device):
    """The VAE stage; vae_ablation.py calls it too, so the ablation trains exactly the shipped recipe."""
    vae = VAE(cfg).to(device)

    def batch_fn(rng):
        idx = rng.choice(train_idx, batch)
        x = D.to_tensor_images(imgs[idx])
        flip = torch.from_numpy(rng.rand(len(idx)) < 0.5)  # emoji and shapes are both fine mirrored
        x[flip] = x[flip].flip(-1)
        return {"x": x.to(device)}

    train_loop(run, name, vae, steps, lr, batch_fn, vae_loss, device)
    vae.load_state_dict(torch.load(os.path.join(run, f"{name}.pt"), map_location=device)["model"])
    return vae.eval()


def stage_vae(run, P: Preset, ds, device):
    return train_vae(run, "vae", P.vae, P.vae_steps, P.vae_batch, P.lr_vae, ds["imgs"], np.where(~ds["val"])[0], device)


@torch.no_grad()
def stage_latents(run, P: Preset, ds, vae, device):
    """Posterior means of every image, and the shift/scaling factors that make the training set's
    latents zero-mean, unit-variance (SD3's shift_factor / scaling_factor, measured here)."""
    path = os.path.join(run, "latents.pt")
    if os.path.exists(path):
        return torch.load(path)
    means = []
    for i in range(0, len(ds["imgs"]), ENCODE_BATCH):
        x = D.to_tensor_images(ds["imgs"][i:i + ENCODE_BATCH]).to(device)
        means.append(vae.encoder(x)[0].float().cpu())
    lat = torch.cat(means)  # (N,C,h,w)
    train = torch.from_numpy(~ds["val"])
    shift = lat[train].mean().item()
    scale = 1.0 / (lat[train] - shift).std().item()
    out = {"latents": lat, "shift_factor": shift, "scaling_factor": scale}
    torch.save(out, path)
    log(run, f"latents: {tuple(lat.shape)} shift_factor {shift:.4f} scaling_factor {scale:.4f}")
    return out


def stage_tokenizer(run, P: Preset, ds):
    folder = os.path.join(run, "tokenizer")
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        tok = WordPieceTokenizer.build([c for cs in ds["caps"] for c in cs], P.text.max_length)
        tok.save(folder)
        log(run, f"tokenizer: {len(tok.vocab)} tokens, max_length {tok.max_length}")
    return WordPieceTokenizer.load(folder)


def text_config(P: Preset, tok):
    return replace(P.text, vocab_size=len(tok.vocab), pad_id=tok.pad_id)


def stage_clip(run, P: Preset, ds, tok, device):
    clip = CLIP(text_config(P, tok), P.vae.sample_size).to(device)
    imgs, caps, train_idx = ds["imgs"], ds["caps"], np.where(~ds["val"])[0]
    ids_cache = {}

    def ids(c):
        if c not in ids_cache:
            ids_cache[c] = tok.encode(c)
        return ids_cache[c]

    def batch(rng):
        idx = rng.choice(train_idx, P.clip_batch, replace=False)
        texts = [caps[i][rng.randint(len(caps[i]))] for i in idx]
        return {"x": D.to_tensor_images(imgs[idx]).to(device), "ids": torch.tensor([ids(t) for t in texts], device=device)}

    def loss(m, b):
        _, t = m.text(b["ids"])
        i = m.image(b["x"])
        t, i = F.normalize(t.float(), dim=-1), F.normalize(i.float(), dim=-1)
        logits = m.logit_scale.exp().clamp(max=100) * i @ t.T
        target = torch.arange(len(t), device=t.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    train_loop(run, "clip", clip, P.clip_steps, P.lr_clip, batch, loss, device)
    clip.load_state_dict(torch.load(os.path.join(run, "clip.pt"), map_location=device)["model"])
    return clip.eval()


@torch.no_grad()
def stage_textcache(run, P: Preset, ds, clip, tok, device):
    """Every distinct caption (and "") encoded once, stored fp16: the DiT stage reads only this."""
    path = os.path.join(run, "textcache.pt")
    if os.path.exists(path):
        return torch.load(path)
    uniq = sorted({c for cs in ds["caps"] for c in cs} | {""})
    index = {c: i for i, c in enumerate(uniq)}
    hs, ps = [], []
    for i in range(0, len(uniq), ENCODE_BATCH):
        ids = torch.tensor([tok.encode(t) for t in uniq[i:i + ENCODE_BATCH]], device=device)
        with autocast(device):
            h, p = clip.text(ids)
        hs.append(h.float().half().cpu()); ps.append(p.float().half().cpu())
    h, p = torch.cat(hs), torch.cat(ps)
    out = {"ctx": h, "pooled": p, "caption_ids": [[index[c] for c in cs] for cs in ds["caps"]], "empty": index[""]}
    torch.save(out, path)
    log(run, f"textcache: {len(uniq)} captions -> {tuple(h.shape)} fp16")
    return out


def dit_config(P: Preset):
    """The DiT's input sizes follow the VAE and the text encoder."""
    return replace(P.dit, in_channels=P.vae.latent_channels, sample_size=P.vae.latent_size,
                   context_dim=P.text.width, pooled_dim=P.text.proj_dim)


def stage_dit(run, P: Preset, ds, lat, tc, device):
    dit = DiT(dit_config(P)).to(device)
    ema = DiT(dit.cfg).to(device)
    ema.load_state_dict(dit.state_dict())
    ema.requires_grad_(False)
    latents = (lat["latents"] - lat["shift_factor"]) * lat["scaling_factor"]
    ctx, pooled, cap_ids, empty = tc["ctx"], tc["pooled"], tc["caption_ids"], tc["empty"]
    train_idx = np.where(~ds["val"])[0]
    T = P.scheduler.num_train_timesteps

    def batch(rng):
        idx = rng.choice(train_idx, P.dit_batch)
        cid = np.array([cap_ids[i][rng.randint(len(cap_ids[i]))] for i in idx])
        cid[rng.rand(len(idx)) < 0.1] = empty  # condition dropout for CFG
        x0 = latents[idx]  # no mirroring: captions name left and right
        t = torch.sigmoid(torch.from_numpy(rng.randn(len(idx))).float())  # logit-normal
        eps = torch.from_numpy(rng.randn(*x0.shape)).float()
        return {"x0": x0.to(device), "eps": eps.to(device), "t": t.to(device),
                "ctx": ctx[cid].float().to(device), "pooled": pooled[cid].float().to(device)}

    def loss(m, b):
        t = b["t"][:, None, None, None]
        xt = (1 - t) * b["x0"] + t * b["eps"]
        v = m(xt, b["ctx"], b["pooled"], b["t"] * T)
        return F.mse_loss(v.float(), b["eps"] - b["x0"])

    train_loop(run, "dit", dit, P.dit_steps, P.lr_dit, batch, loss, device, ema=ema, ckpt_every=250)
    st = torch.load(os.path.join(run, "dit.pt"), map_location=device)
    ema.load_state_dict(st["ema"])
    return ema.eval()


def load_all(run, P: Preset, device="cpu", cache=None):
    """Train what is missing and rebuild every model from the run folder (export, fixtures and
    evaluation use this). cache: the emoji folder for the data stage (data.default_cache() when None)."""
    ds = stage_data(run, P, cache)
    vae = stage_vae(run, P, ds, device)
    lat = stage_latents(run, P, ds, vae, device)
    tok = stage_tokenizer(run, P, ds)
    clip = stage_clip(run, P, ds, tok, device)
    tc = stage_textcache(run, P, ds, clip, tok, device)
    dit = stage_dit(run, P, ds, lat, tc, device)
    return dict(ds=ds, vae=vae, lat=lat, tok=tok, clip=clip, tc=tc, dit=dit)


def pipeline_models(trained, P: Preset, shift=None):
    """The reference pipeline's view of a run: float32, CPU, eval mode (as the graphs are exported)."""
    cpu = lambda m: m.float().cpu().eval()  # noqa: E731
    scheduler = P.scheduler if shift is None else replace(P.scheduler, shift=float(shift))
    return Models(transformer=cpu(trained["dit"]), vae=cpu(trained["vae"]), text_encoder=cpu(trained["clip"]).text,
                  tokenizer=trained["tok"], scheduler=scheduler, scaling_factor=float(trained["lat"]["scaling_factor"]),
                  shift_factor=float(trained["lat"]["shift_factor"]))
