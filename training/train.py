"""The whole recipe, one command: data -> VAE -> latents -> text encoder -> text cache -> DiT ->
export -> fixtures -> evaluation. Each stage checkpoints into the run folder and is skipped when
its output exists, so a stopped run resumes where it stopped.

    /usr/bin/python3 training/train.py --preset cpu          # the shipped model (~2 h on 2 cores)
    /usr/bin/python3 training/train.py --preset toy --run /tmp/toy   # smoke size (tests)
"""
import argparse
import json
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass, field, asdict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import model as M  # noqa: E402
from tokenizer import WordPieceTokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@dataclass
class Preset:
    n_shapes: int
    emoji_limit: int | None
    vae_steps: int
    vae_batch: int
    clip_steps: int
    clip_batch: int
    dit_steps: int
    dit_batch: int
    vae: M.VAEConfig = field(default_factory=M.VAEConfig)
    text: M.TextConfig = field(default_factory=M.TextConfig)
    dit: M.DiTConfig = field(default_factory=M.DiTConfig)
    lr_vae: float = 4e-4
    lr_clip: float = 5e-4
    lr_dit: float = 4e-4
    # sampling defaults written to the manifest (chosen by evaluation, see README)
    steps: int = 20
    guidance: float = 4.0
    shift: float = 1.0
    eval_emoji: int = 300
    eval_shapes: int = 120


PRESETS = {
    # a few steps of everything: proves the recipe end to end in a couple of minutes
    "toy": Preset(n_shapes=256, emoji_limit=256, vae_steps=6, vae_batch=8, clip_steps=6, clip_batch=32,
                  dit_steps=6, dit_batch=16, vae=M.VAEConfig(channels=(8, 16, 16)),
                  text=M.TextConfig(width=32, layers=1, heads=2, proj_dim=32),
                  dit=M.DiTConfig(hidden=32, depth=1, heads=2, context_dim=32, pooled_dim=32),
                  steps=4, eval_emoji=8, eval_shapes=8),
    # the shipped model on a 2-core CPU with bf16 autocast
    "cpu": Preset(n_shapes=16000, emoji_limit=None, vae_steps=2000, vae_batch=32, clip_steps=400,
                  clip_batch=128, dit_steps=4000, dit_batch=64),
    # same code, bigger, for a CUDA GPU
    "cuda": Preset(n_shapes=60000, emoji_limit=None, vae_steps=20000, vae_batch=64, clip_steps=8000,
                   clip_batch=512, dit_steps=60000, dit_batch=256,
                   dit=M.DiTConfig(hidden=384, depth=8, heads=6)),
}


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


# ---------------------------------------------------------------------------------------------
def stage_data(run, P):
    path = os.path.join(run, "data.pkl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    imgs, caps, meta, val = D.build(P.n_shapes, P.emoji_limit)
    ds = {"imgs": imgs, "caps": caps, "meta": meta, "val": val}
    with open(path, "wb") as f:
        pickle.dump(ds, f, protocol=4)
    log(run, f"data: {len(imgs)} images ({sum(m['kind'] == 'emoji' for m in meta)} emoji), {int(val.sum())} held out")
    return ds


def train_loop(run, name, model, steps, lr, batch_fn, loss_fn, device, ema=None, ckpt_every=200):
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
    rng = np.random.RandomState(1000 + step)
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


def stage_vae(run, P, ds, device):
    vae = M.VAE(P.vae).to(device)
    imgs, train_idx = ds["imgs"], np.where(~ds["val"])[0]

    def batch(rng):
        idx = rng.choice(train_idx, P.vae_batch)
        x = D.to_tensor_images(imgs[idx])
        flip = torch.from_numpy(rng.rand(len(idx)) < 0.5)  # emoji and shapes are both fine mirrored
        x[flip] = x[flip].flip(-1)
        return {"x": x.to(device)}

    def loss(m, b):
        rec, kl = m(b["x"])
        rec = rec.float()
        return F.mse_loss(rec, b["x"]) + 0.2 * F.l1_loss(rec, b["x"]) + 1e-6 * kl.float()

    train_loop(run, "vae", vae, P.vae_steps, P.lr_vae, batch, loss, device)
    vae.load_state_dict(torch.load(os.path.join(run, "vae.pt"), map_location=device)["model"])
    return vae.eval()


@torch.no_grad()
def stage_latents(run, P, ds, vae, device):
    path = os.path.join(run, "latents.pt")
    if os.path.exists(path):
        return torch.load(path)
    means = []
    for i in range(0, len(ds["imgs"]), 256):
        x = D.to_tensor_images(ds["imgs"][i:i + 256]).to(device)
        means.append(vae.encoder(x)[0].float().cpu())
    lat = torch.cat(means)  # (N,C,16,16), posterior means
    train = torch.from_numpy(~ds["val"])
    shift = lat[train].mean().item()
    scale = 1.0 / (lat[train] - shift).std().item()
    out = {"latents": lat, "shift_factor": shift, "scaling_factor": scale}
    torch.save(out, path)
    log(run, f"latents: {tuple(lat.shape)} shift_factor {shift:.4f} scaling_factor {scale:.4f}")
    return out


def stage_tokenizer(run, P, ds):
    folder = os.path.join(run, "text_encoder")
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        tok = WordPieceTokenizer.build([c for cs in ds["caps"] for c in cs], P.text.max_length)
        tok.save(folder)
        log(run, f"tokenizer: {len(tok.vocab)} tokens, max_length {tok.max_length}")
    return WordPieceTokenizer.load(folder)


def stage_clip(run, P, ds, tok, device):
    tcfg = M.TextConfig(**{**asdict(P.text), "vocab_size": len(tok.vocab), "pad_id": tok.pad_id})
    clip = M.CLIP(tcfg).to(device)
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
def encode_texts(clip, tok, texts, device, bs=512):
    hs, ps = [], []
    for i in range(0, len(texts), bs):
        ids = torch.tensor([tok.encode(t) for t in texts[i:i + bs]], device=device)
        with autocast(device):
            h, p = clip.text(ids)
        hs.append(h.float().half().cpu()); ps.append(p.float().half().cpu())
    return torch.cat(hs), torch.cat(ps)


def stage_textcache(run, P, ds, clip, tok, device):
    path = os.path.join(run, "textcache.pt")
    if os.path.exists(path):
        return torch.load(path)
    uniq = sorted({c for cs in ds["caps"] for c in cs} | {""})
    index = {c: i for i, c in enumerate(uniq)}
    h, p = encode_texts(clip, tok, uniq, device)
    out = {"ctx": h, "pooled": p, "caption_ids": [[index[c] for c in cs] for cs in ds["caps"]], "empty": index[""]}
    torch.save(out, path)
    log(run, f"textcache: {len(uniq)} captions -> {tuple(h.shape)} fp16")
    return out


def stage_dit(run, P, ds, lat, tc, device):
    dit = M.DiT(M.DiTConfig(**{**asdict(P.dit), "in_channels": P.vae.latent_channels,
                               "context_dim": P.text.width, "pooled_dim": P.text.proj_dim})).to(device)
    ema = M.DiT(dit.cfg).to(device)
    ema.load_state_dict(dit.state_dict())
    ema.requires_grad_(False)
    latents = (lat["latents"] - lat["shift_factor"]) * lat["scaling_factor"]
    ctx, pooled, cap_ids, empty = tc["ctx"], tc["pooled"], tc["caption_ids"], tc["empty"]
    train_idx = np.where(~ds["val"])[0]

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
        v = m(xt, b["ctx"], b["pooled"], b["t"] * 1000)
        return F.mse_loss(v.float(), b["eps"] - b["x0"])

    train_loop(run, "dit", dit, P.dit_steps, P.lr_dit, batch, loss, device, ema=ema, ckpt_every=250)
    st = torch.load(os.path.join(run, "dit.pt"), map_location=device)
    ema.load_state_dict(st["ema"])
    return ema.eval()


def load_all(run, P, device="cpu"):
    """Rebuild every trained model from a finished run (export, fixtures and evaluation use this)."""
    ds = stage_data(run, P)
    vae = stage_vae(run, P, ds, device)
    lat = stage_latents(run, P, ds, vae, device)
    tok = stage_tokenizer(run, P, ds)
    clip = stage_clip(run, P, ds, tok, device)
    tc = stage_textcache(run, P, ds, clip, tok, device)
    dit = stage_dit(run, P, ds, lat, tc, device)
    return dict(ds=ds, vae=vae, lat=lat, tok=tok, clip=clip, tc=tc, dit=dit)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--run", default=None, help="run folder (checkpoints); default training/runs/<preset>")
    ap.add_argument("--out", default=None, help="model folder to write; default public/models/webdit-tiny")
    ap.add_argument("--fixtures", default=None, help="fixtures folder; default src/engine/__fixtures__ for the shipped model, <out>/fixtures otherwise")
    ap.add_argument("--until", default="all", choices=["train", "export", "all"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args(argv)
    P = PRESETS[a.preset]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    run = a.run or os.path.join(HERE, "runs", a.preset)
    os.makedirs(run, exist_ok=True)
    t0 = time.time()
    models = load_all(run, P, device)
    log(run, f"training done in {time.time() - t0:.0f} s (this invocation)")
    if a.until == "train":
        return
    import export, fixtures, evaluate, modelcard  # noqa: E401 (heavy imports only when needed)
    out = a.out or os.path.join(ROOT, "public", "models", "webdit-tiny")
    export.export_all(run, P, models, out, preset=a.preset)
    if a.until == "export":
        return
    res = evaluate.evaluate(models, P, out)
    export.set_defaults(out, **res["defaults"])
    fixtures.write_fixtures(models, P, out, a.fixtures or (None if a.out is None else os.path.join(out, "fixtures")))
    modelcard.write(run, P, out, res)
    log(run, f"all done in {time.time() - t0:.0f} s (this invocation)")

if __name__ == "__main__":
    main()
