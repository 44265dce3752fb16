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
from . import dist
from .config import TRAIN_SEED, Preset, VAEConfig
from .models import CLIP, DiT, VAE
from .pipeline import Models
from .tokenizer import WordPieceTokenizer

ENCODE_BATCH = 512  # images or captions per forward when caching latents / text embeddings


def log(run, msg):
    if not dist.is_main():  # under DDP rank 0 alone writes (dist.py)
        return
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
    if not dist.is_main():
        return
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


STAGE_ORDER = ("vae", "clip", "dit")


class Budget:
    """A wall-clock limit for the training stages (train.py --minutes), counted from its creation.
    A stage that starts gets a share of what is left: its weight over the weights of itself and the
    later stages not finished yet (a warm start with the VAE and text encoder frozen gives the DiT all
    of it). Within its share train_loop fits the stage's schedule (LR warm-up and cosine) to the
    steps that fit, from the measured step time, and when the share runs out it saves a checkpoint
    and stops (not finished: a later run resumes it). Every started stage does at least one step."""
    WEIGHTS = {"vae": 0.2, "clip": 0.1, "dit": 0.7}

    def __init__(self, seconds, run=None):
        self.seconds, self.run, self.end = float(seconds), run, time.time() + float(seconds)

    def _finished(self, name):
        path = os.path.join(self.run, f"{name}.pt") if self.run else None
        return bool(path and os.path.exists(path) and torch.load(path, map_location="cpu").get("done"))

    def deadline(self, name):
        now = time.time()
        if name not in self.WEIGHTS:  # another train_loop (e.g. distill): all that is left
            return self.end
        later = [s for s in STAGE_ORDER[STAGE_ORDER.index(name) + 1:] if not self._finished(s)]
        share = self.WEIGHTS[name] / (self.WEIGHTS[name] + sum(self.WEIGHTS[s] for s in later))
        return now + max(0.0, self.end - now) * share


class _Loss(torch.nn.Module):
    """The loss as a module's forward, so DDP sees every parameter the loss uses (CLIP's loss calls
    the text and image towers directly)."""

    def __init__(self, model, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, b):
        return self.loss_fn(self.model, b)


def _batches(batch_fn, rngs, device):
    """Each step's batch: one per rank stream, concatenated (one stream: batch_fn's own). On CUDA a
    thread draws them ahead (same streams, same order, so the same numbers)."""
    def draw():
        bs = [batch_fn(r) for r in rngs]
        return bs[0] if len(bs) == 1 else dist.cat_batches(bs), bs  # the per-rank parts, for their digests

    if device != "cuda":
        while True:
            yield draw()
    import queue
    import threading
    q, stop, cur = queue.Queue(maxsize=3), threading.Event(), torch.cuda.current_device()

    def work():
        torch.cuda.set_device(cur)  # the current device is per thread
        while not stop.is_set():
            try:
                item = draw()
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                item = e
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.5)
                    break
                except queue.Full:
                    pass
            if isinstance(item, BaseException):
                return

    threading.Thread(target=work, daemon=True).start()
    try:
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


FIT_STEPS = (5, 25)  # with a budget, the step time is measured between these steps of an invocation
CKPT_SECONDS = 120  # with a budget, checkpoints go by time (a fast GPU makes 250 steps in seconds)


def train_loop(run, name, model, steps, lr, batch_fn, loss_fn, device, ema=None, ckpt_every=200, budget=None, seed=TRAIN_SEED):
    """AdamW, cosine LR with warm-up, gradient clipping, optional EMA; checkpoints run/<name>.pt.
    Under torchrun: DDP, one batch stream per rank, rank 0 saves (dist.py). budget: a Budget (stop
    cleanly in time, schedule fitted to it) or None (the preset's step count, no time limit)."""
    path = os.path.join(run, f"{name}.pt")
    dist.barrier()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    step, seconds, total = 0, 0.0, steps
    if os.path.exists(path):
        st = torch.load(path, map_location=device)
        model.load_state_dict(st["model"]); opt.load_state_dict(st["opt"]); step = st["step"]
        seconds = st.get("seconds", 0.0)
        total = st.get("total", steps)  # a schedule fitted to an earlier budget is kept
        if ema is not None:
            ema.load_state_dict(st["ema"])
        if st.get("done"):
            return
        log(run, f"{name}: resuming at step {step}")
    W, r = dist.world(), dist.rank()
    if W > 1 and dist.virtual_ranks > 1:
        raise ValueError("virtual ranks are for one process, not under torchrun")
    ranks = [r] if W > 1 else list(range(dist.virtual_ranks))
    net = dist.wrap(_Loss(model, loss_fn), device) if W > 1 else (lambda b: loss_fn(model, b))
    batches = _batches(batch_fn, [dist.rank_rng(seed + step, k) for k in ranks], device)
    deadline = budget.deadline(name) if budget is not None else None
    fit = budget is not None and total == steps and step == 0  # fit once, on a fresh schedule
    t0, seen, losses, begin = time.time(), 0, [], step
    last, fit_t = t0, None
    while step < total:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, lr)
        b, parts = next(batches)
        if step == begin and max(W, len(ranks)) > 1:
            digests = dist.gather_objects(dist.digest(parts[0])) if W > 1 else [dist.digest(p) for p in parts]
            log(run, f"{name}: {len(digests)} ranks x batch {len(next(iter(b.values()))) // len(ranks)}, "
                     f"first batch per rank {digests}")
        with autocast(device):
            loss = net(b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema is not None:
            d = ema_decay(step)
            with torch.no_grad():
                if device == "cuda":  # one kernel per op, not one per tensor
                    ep, mp = list(ema.parameters()), [p.detach() for p in model.parameters()]
                    torch._foreach_mul_(ep, d)
                    torch._foreach_add_(ep, mp, alpha=1 - d)
                else:
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        step += 1
        seen += len(next(iter(b.values()))) * W
        losses = losses[-49:] + [loss.detach()]
        stop = save_now = False
        if deadline is not None:
            if fit and step - begin in FIT_STEPS:
                if device == "cuda":
                    torch.cuda.synchronize()
                if step - begin == FIT_STEPS[0]:
                    fit_t = time.time()
                else:
                    per_step = (time.time() - fit_t) / (FIT_STEPS[1] - FIT_STEPS[0])
                    fitted = min(steps, step + max(1, int(0.97 * (deadline - time.time()) / per_step)))
                    total = dist.broadcast_int(fitted)
                    log(run, f"{name}: {per_step * 1e3:.1f} ms/step, {deadline - time.time():.0f} s left: "
                             f"schedule fitted to {total} steps (preset {steps})")
            now = time.time()  # rank 0 decides for all: stop (bit 0), checkpoint now (bit 1)
            sig = dist.broadcast_int(int(now >= deadline) | int(now - last >= CKPT_SECONDS) << 1)
            stop, save_now = bool(sig & 1) and step < total, bool(sig & 2)
        if step % 50 == 0 or step == total or stop:
            dt = time.time() - t0
            mean = dist.mean_over_ranks(np.mean([x.item() for x in losses]))
            log(run, f"{name}: step {step}/{total} loss {mean:.4f} {seen / dt:.1f} samples/s")
        if (save_now if deadline is not None else step % ckpt_every == 0) or step == total or stop:
            now = time.time()
            seconds += now - last
            last = now
            extra = {"total": total} if total != steps else {}
            save_ckpt(path, model=model.state_dict(), opt=opt.state_dict(), step=step, done=step == total, seconds=seconds,
                      ema=ema.state_dict() if ema is not None else None, **extra)
        if stop:
            log(run, f"{name}: time budget reached at step {step}/{total} after {time.time() - t0:.0f} s; "
                     "checkpoint saved (a later run resumes it)")
            break
    batches.close()
    dist.barrier()  # the others read what rank 0 saved


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


def train_vae(run, name, cfg: VAEConfig, steps, batch, lr, imgs, train_idx, device, budget=None):
    """The VAE stage; vae_ablation.py calls it too, so the ablation trains exactly the shipped recipe."""
    vae = VAE(cfg).to(device)

    def batch_fn(rng):
        idx = rng.choice(train_idx, batch)
        x = D.to_tensor_images(imgs[idx])
        flip = torch.from_numpy(rng.rand(len(idx)) < 0.5)  # emoji and shapes are both fine mirrored
        x[flip] = x[flip].flip(-1)
        return {"x": x.to(device)}

    train_loop(run, name, vae, steps, lr, batch_fn, vae_loss, device, budget=budget)
    vae.load_state_dict(torch.load(os.path.join(run, f"{name}.pt"), map_location=device)["model"])
    return vae.eval()


def stage_vae(run, P: Preset, ds, device, budget=None):
    return train_vae(run, "vae", P.vae, P.vae_steps, P.vae_batch, P.lr_vae, ds["imgs"], np.where(~ds["val"])[0], device,
                     budget)


def _stage_step(run, name):
    """The step of run/<name>.pt: a cache computed from that model records it, so a model trained on
    after a budget stop (stages.Budget) gets its cache recomputed."""
    path = os.path.join(run, f"{name}.pt")
    return int(torch.load(path, map_location="cpu")["step"]) if os.path.exists(path) else None


def _fresh_cache(run, cache, model):
    """run/<cache>.pt when it was computed from run/<model>.pt at its current step, else None
    (and a log line when it is stale). Returns (cache or None, the model's step)."""
    path, step = os.path.join(run, f"{cache}.pt"), _stage_step(run, model)
    if not os.path.exists(path):
        return None, step
    out = torch.load(path)
    key = f"{model}_step"
    if out.get(key, step) == step:
        return out, step
    log(run, f"{cache}: cached from {model} at step {out[key]}, now at {step}: recomputed")
    return None, step


@torch.no_grad()
def stage_latents(run, P: Preset, ds, vae, device):
    """Posterior means of every image, and the shift/scaling factors that make the training set's
    latents zero-mean, unit-variance (SD3's shift_factor / scaling_factor, measured here)."""
    cached, vae_step = _fresh_cache(run, "latents", "vae")
    if cached is not None:
        return cached
    path = os.path.join(run, "latents.pt")
    means = []
    for i in range(0, len(ds["imgs"]), ENCODE_BATCH):
        x = D.to_tensor_images(ds["imgs"][i:i + ENCODE_BATCH]).to(device)
        means.append(vae.encoder(x)[0].float().cpu())
    lat = torch.cat(means)  # (N,C,h,w)
    train = torch.from_numpy(~ds["val"])
    shift = lat[train].mean().item()
    scale = 1.0 / (lat[train] - shift).std().item()
    out = {"latents": lat, "shift_factor": shift, "scaling_factor": scale, "vae_step": vae_step}
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


def stage_clip(run, P: Preset, ds, tok, device, budget=None):
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
        t, i = dist.all_gather_cat(t), dist.all_gather_cat(i)  # DDP: negatives from the global batch
        logits = m.logit_scale.exp().clamp(max=100) * i @ t.T
        target = torch.arange(len(t), device=t.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    train_loop(run, "clip", clip, P.clip_steps, P.lr_clip, batch, loss, device, budget=budget)
    clip.load_state_dict(torch.load(os.path.join(run, "clip.pt"), map_location=device)["model"])
    return clip.eval()


@torch.no_grad()
def stage_textcache(run, P: Preset, ds, clip, tok, device):
    """Every distinct caption (and "") encoded once, stored fp16: the DiT stage reads only this."""
    cached, clip_step = _fresh_cache(run, "textcache", "clip")
    if cached is not None:
        return cached
    path = os.path.join(run, "textcache.pt")
    uniq = sorted({c for cs in ds["caps"] for c in cs} | {""})
    index = {c: i for i, c in enumerate(uniq)}
    hs, ps = [], []
    for i in range(0, len(uniq), ENCODE_BATCH):
        ids = torch.tensor([tok.encode(t) for t in uniq[i:i + ENCODE_BATCH]], device=device)
        with autocast(device):
            h, p = clip.text(ids)
        hs.append(h.float().half().cpu()); ps.append(p.float().half().cpu())
    h, p = torch.cat(hs), torch.cat(ps)
    out = {"ctx": h, "pooled": p, "caption_ids": [[index[c] for c in cs] for cs in ds["caps"]], "empty": index[""],
           "clip_step": clip_step}
    torch.save(out, path)
    log(run, f"textcache: {len(uniq)} captions -> {tuple(h.shape)} fp16")
    return out


def dit_config(P: Preset):
    """The DiT's input sizes follow the VAE and the text encoder."""
    return replace(P.dit, in_channels=P.vae.latent_channels, sample_size=P.vae.latent_size,
                   context_dim=P.text.width, pooled_dim=P.text.proj_dim)


def stage_dit(run, P: Preset, ds, lat, tc, device, budget=None):
    dit = DiT(dit_config(P)).to(device)
    ema = DiT(dit.cfg).to(device)
    ema.load_state_dict(dit.state_dict())
    ema.requires_grad_(False)
    latents = (lat["latents"] - lat["shift_factor"]) * lat["scaling_factor"]
    ctx, pooled, cap_ids, empty = tc["ctx"], tc["pooled"], tc["caption_ids"], tc["empty"]
    if device == "cuda":  # gathered there, no copy per step (same values)
        latents, ctx, pooled = latents.to(device), ctx.to(device), pooled.to(device)
    train_idx = np.where(~ds["val"])[0]
    is_emoji = np.array([m["kind"] == "emoji" for m in ds["meta"]])
    emoji_idx, other_idx = train_idx[is_emoji[train_idx]], train_idx[~is_emoji[train_idx]]
    T = P.scheduler.num_train_timesteps

    def batch(rng):
        if P.dit_emoji_frac > 0:  # class-balanced: a fixed share of emoji per batch
            k = int(round(P.dit_emoji_frac * P.dit_batch))
            idx = np.concatenate([rng.choice(emoji_idx, k), rng.choice(other_idx, P.dit_batch - k)])
        else:
            idx = rng.choice(train_idx, P.dit_batch)
        cid = np.array([cap_ids[i][rng.randint(len(cap_ids[i]))] for i in idx])
        cid[rng.rand(len(idx)) < P.dit_cond_dropout] = empty  # condition dropout for CFG
        x0 = latents[idx]  # no mirroring: captions name left and right
        if P.dit_t_logit_std > 0:  # logit-normal
            t = torch.sigmoid(P.dit_t_logit_std * torch.from_numpy(rng.randn(len(idx))).float())
        else:
            t = torch.from_numpy(rng.rand(len(idx))).float()
        if device == "cuda":  # numpy's normals would bound a GPU's step: drawn there, seeded from the stream
            g = torch.Generator(device=x0.device)
            g.manual_seed(int(rng.randint(2 ** 31)))
            eps = torch.randn(x0.shape, generator=g, device=x0.device)
        else:
            eps = torch.from_numpy(rng.randn(*x0.shape)).float()
        return {"x0": x0.to(device), "eps": eps.to(device), "t": t.to(device),  # fp16 -> fp32 after the copy: same values
                "ctx": ctx[cid].to(device).float(), "pooled": pooled[cid].to(device).float()}

    def loss(m, b):
        t = b["t"][:, None, None, None]
        xt = (1 - t) * b["x0"] + t * b["eps"]
        v = m(xt, b["ctx"], b["pooled"], b["t"] * T)
        return F.mse_loss(v.float(), b["eps"] - b["x0"])

    train_loop(run, "dit", dit, P.dit_steps, P.lr_dit, batch, loss, device, ema=ema, ckpt_every=250, budget=budget,
               seed=TRAIN_SEED + P.dit_seed_offset)
    st = torch.load(os.path.join(run, "dit.pt"), map_location=device)
    ema.load_state_dict(st["ema"])
    return ema.eval()


def load_all(run, P: Preset, device="cpu", cache=None, budget=None):
    """Train what is missing and rebuild every model from the run folder (export, fixtures and
    evaluation use this). cache: the emoji folder for the data stage (data.default_cache() when None).
    budget: a Budget (train.py --minutes) or None. Under torchrun every rank runs this; the stages
    without training are computed and written by rank 0, then read by the others (dist.once)."""
    ds = dist.once(lambda: stage_data(run, P, cache))
    vae = stage_vae(run, P, ds, device, budget)
    lat = dist.once(lambda: stage_latents(run, P, ds, vae, device))
    tok = dist.once(lambda: stage_tokenizer(run, P, ds))
    clip = stage_clip(run, P, ds, tok, device, budget)
    tc = dist.once(lambda: stage_textcache(run, P, ds, clip, tok, device))
    dit = stage_dit(run, P, ds, lat, tc, device, budget)
    return dict(ds=ds, vae=vae, lat=lat, tok=tok, clip=clip, tc=tc, dit=dit)


def pipeline_models(trained, P: Preset, shift=None):
    """The reference pipeline's view of a run: float32, CPU, eval mode (as the graphs are exported)."""
    cpu = lambda m: m.float().cpu().eval()  # noqa: E731
    scheduler = P.scheduler if shift is None else replace(P.scheduler, shift=float(shift))
    return Models(transformer=cpu(trained["dit"]), vae=cpu(trained["vae"]), text_encoder=cpu(trained["clip"]).text,
                  tokenizer=trained["tok"], scheduler=scheduler, scaling_factor=float(trained["lat"]["scaling_factor"]),
                  shift_factor=float(trained["lat"]["shift_factor"]))
