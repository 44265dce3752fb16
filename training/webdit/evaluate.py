"""Evaluation: one JSON with every number the model card reports, plus a sample grid PNG.

  vae        reconstruction PSNR on held-out images
  retrieval  text<->image top-1/top-5 of the CLIP-style encoders on held-out images
  shapes     rule-based checker on generated pixels: colour and shape accuracy, held-in and
             held-out colour x shape combinations (the checker's own accuracy on real renders too)
  emoji      prompted emoji among the 5 nearest dataset images (CLIP image space and 16x16
             pixels), next to the same number for shuffled prompts (chance)
  sweep      the sampling settings tried; the defaults are the best of them
"""
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from . import data as D
from .config import EVAL_SEED
from .pipeline import generate, to_uint8
from .stages import pipeline_models

EVAL_BATCH = 128  # images or prompts per forward


# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def vae_psnr(vae, imgs):
    ps = []
    for i in range(0, len(imgs), EVAL_BATCH):
        x = D.to_tensor_images(imgs[i:i + EVAL_BATCH])
        rec = to_uint8(vae.decoder(vae.encoder(x)[0])).astype(np.float64)
        mse = ((rec - imgs[i:i + EVAL_BATCH].astype(np.float64)) ** 2).reshape(len(rec), -1).mean(1)
        ps += list(10 * np.log10(255 ** 2 / np.maximum(mse, 1e-10)))
    return float(np.mean(ps))


@torch.no_grad()
def image_embeds(clip, imgs):
    out = [F.normalize(clip.image(D.to_tensor_images(imgs[i:i + EVAL_BATCH])), dim=-1) for i in range(0, len(imgs), EVAL_BATCH)]
    return torch.cat(out)


@torch.no_grad()
def text_embeds(clip, tok, texts):
    out = []
    for i in range(0, len(texts), EVAL_BATCH):
        ids = torch.tensor([tok.encode(t) for t in texts[i:i + EVAL_BATCH]])
        out.append(F.normalize(clip.text(ids)[1], dim=-1))
    return torch.cat(out)


def topk_acc(sim, k):
    # sim (N,N): row i's correct column is i
    top = sim.topk(k, dim=1).indices
    return float((top == torch.arange(len(sim))[:, None]).any(1).float().mean())


def retrieval(clip, tok, imgs, caps):
    ie, te = image_embeds(clip, imgs), text_embeds(clip, tok, caps)
    sim = te @ ie.T
    return {"n": len(caps), "text_to_image_top1": topk_acc(sim, 1), "text_to_image_top5": topk_acc(sim, 5),
            "image_to_text_top1": topk_acc(sim.T, 1), "image_to_text_top5": topk_acc(sim.T, 5)}


# ---------------------------------------------------------------------------------------------
class ShapeChecker:
    """Reads colour and shape off pixels: background = most common colour, foreground = pixels far
    from it, colour = nearest named colour of the foreground median, shape = best IoU among
    template masks rendered with the dataset's own drawing code at every size and position."""

    def __init__(self):
        self.templates = []
        for shape in D.SHAPES:
            for size in D.SIZES:
                for pos in D.POSITIONS:
                    img = D.render_scene([(shape, "black", size, pos)], "white")
                    self.templates.append((shape, size, pos, img.sum(-1) < 382))
        self.masks = np.stack([t[3] for t in self.templates]).reshape(len(self.templates), -1)

    def __call__(self, img):
        q = (img // 16).reshape(-1, 3)
        keys, counts = np.unique(q, axis=0, return_counts=True)
        bg_key = keys[counts.argmax()]
        bg = img.reshape(-1, 3)[(q == bg_key).all(1)].mean(0)
        dist = np.abs(img.reshape(-1, 3).astype(float) - bg).sum(1)
        mask = dist > 90
        if mask.sum() < 6:
            return None, None
        fg = np.median(img.reshape(-1, 3)[mask], axis=0)
        names = list(D.COLOURS)
        colour = names[int(np.argmin([np.abs(fg - np.array(D.COLOURS[c])).sum() for c in names]))]
        inter = (self.masks & mask[None]).sum(1)
        union = (self.masks | mask[None]).sum(1)
        best = int(np.argmax(inter / np.maximum(union, 1)))
        return colour, self.templates[best][0]


def shape_prompts(n, held_out, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        bg = rng.choice(list(D.BACKGROUNDS))
        colour, shape = rng.choice(D.fg_choices(bg)), rng.choice(D.SHAPES)
        if ((colour, shape) in D.HELD_OUT) != held_out:
            continue
        if held_out and colour not in D.fg_choices(bg):
            continue
        obj = (shape, colour, rng.choice(list(D.SIZES)), rng.choice(list(D.POSITIONS)))
        out.append((D.scene_caption([obj], bg), colour, shape))
    return out


def generate_many(models, prompts, steps, guidance, seed0=EVAL_SEED, bs=64):
    """uint8 (N,H,W,3); prompt n uses seed seed0 + n and the negative prompt ""."""
    return np.concatenate([generate(models, prompts[i:i + bs], "", seed0 + i, steps, guidance)[1]
                           for i in range(0, len(prompts), bs)])


def shapes_eval(models, n, steps, guidance, checker):
    res = {}
    for name, held in (("held_in", False), ("held_out", True)):
        ps = shape_prompts(n, held, seed=1 if held else 2)
        imgs = generate_many(models, [p[0] for p in ps], steps, guidance)
        got = [checker(im) for im in imgs]
        res[name] = {"n": n, "colour": float(np.mean([g[0] == p[1] for g, p in zip(got, ps)])),
                     "shape": float(np.mean([g[1] == p[2] for g, p in zip(got, ps)]))}
        res.setdefault("_samples", []).extend(zip([p[0] for p in ps[:16]], imgs[:16]))
    return res


def emoji_eval(models, clip, n, steps, guidance, ds, ds_embeds, seed=3):
    meta = ds["meta"]
    emoji_idx = [i for i, m in enumerate(meta) if m["kind"] == "emoji"]
    rng = random.Random(seed)
    pick = rng.sample(emoji_idx, n)
    prompts = [f"{meta[i]['label']}, {meta[i]['style']} style" for i in pick]
    imgs = generate_many(models, prompts, steps, guidance)
    e_imgs = ds["imgs"][emoji_idx]
    hexes = np.array([meta[i]["hex"] for i in emoji_idx])
    target = np.array([meta[i]["hex"] for i in pick])
    shuffled = np.roll(target, n // 2)  # a derangement: each image judged against another prompt's emoji
    with torch.no_grad():
        g = image_embeds(clip, imgs)
    sim = g @ ds_embeds.T
    nn_clip = sim.topk(5, dim=1).indices.numpy()
    small = lambda a: a.reshape(len(a), 16, 4, 16, 4, 3).mean((2, 4)).reshape(len(a), -1).astype(np.float32)
    gs, es = torch.from_numpy(small(imgs)), torch.from_numpy(small(e_imgs))
    nn_pix = torch.cdist(gs, es).topk(5, dim=1, largest=False).indices.numpy()
    hit = lambda nn, t: float(np.mean([t[k] in set(hexes[nn[k]]) for k in range(n)]))
    return {"n": n, "top5_clip": hit(nn_clip, target), "top5_clip_shuffled": hit(nn_clip, shuffled),
            "top5_pixels16": hit(nn_pix, target), "top5_pixels16_shuffled": hit(nn_pix, shuffled),
            "_samples": list(zip(prompts[:32], imgs[:32]))}


QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def grid_png(samples, path, cols=8, frames=None):
    """samples: [(caption, uint8 64x64 image)], drawn 128 px wide; frames (optional, per sample):
    True draws a green frame inside the cell."""
    cell, text_h = 128, 30
    rows = (len(samples) + cols - 1) // cols
    canvas = Image.new("RGB", (cols * cell, rows * (cell + text_h)), (24, 24, 28))
    d = ImageDraw.Draw(canvas)
    for k, (prompt, img) in enumerate(samples):
        x, y = (k % cols) * cell, (k // cols) * (cell + text_h)
        canvas.paste(Image.fromarray(img).resize((cell, cell), Image.NEAREST), (x, y))
        if frames is not None and frames[k]:
            d.rectangle((x + 1, y + 1, x + cell - 2, y + cell - 2), outline=(40, 200, 80), width=3)
        words, lines, cur = prompt.split(), [], ""
        for w in words:
            if len(cur) + len(w) + 1 > 20:
                lines.append(cur); cur = w
            else:
                cur = (cur + " " + w).strip()
        lines.append(cur)
        for j, line in enumerate(lines[:2]):  # PIL's default font is latin-1 only
            line = line.translate(QUOTES).encode("latin-1", "replace").decode("latin-1")[:21]
            d.text((x + 3, y + cell + 2 + 13 * j), line, fill=(220, 220, 220))
    canvas.save(path)


@torch.no_grad()
def evaluate(trained, P, out, json_path=None):
    """trained: stages.load_all(); writes <out>/samples.png and evaluation.json (or json_path).
    res["defaults"] (num_inference_steps, guidance_scale, shift) is the best of the sweep."""
    t0 = time.time()
    models = pipeline_models(trained, P)
    clip, ds = trained["clip"].float().cpu().eval(), trained["ds"]
    val = np.where(ds["val"])[0]
    res = {"vae_psnr_db": vae_psnr(models.vae, ds["imgs"][val]), "vae_psnr_n": len(val)}
    res["retrieval"] = retrieval(clip, models.tokenizer, ds["imgs"][val], [ds["caps"][i][0] for i in val])
    checker = ShapeChecker()
    shape_idx = [i for i, m in enumerate(ds["meta"]) if m["kind"] == "shape" and len(m["objs"]) == 1][:300]
    truth = [(ds["meta"][i]["objs"][0][1], ds["meta"][i]["objs"][0][0]) for i in shape_idx]
    read = [checker(ds["imgs"][i]) for i in shape_idx]
    res["shape_checker_on_real_renders"] = {"n": len(shape_idx), "colour": float(np.mean([r[0] == t[0] for r, t in zip(read, truth)])),
                                            "shape": float(np.mean([r[1] == t[1] for r, t in zip(read, truth)]))}
    emoji_idx = [i for i, m in enumerate(ds["meta"]) if m["kind"] == "emoji"]
    ds_embeds = image_embeds(clip, ds["imgs"][emoji_idx])

    # pick the sampling defaults: a small sweep on a subset, scored by shapes + emoji
    sweep = []
    n_small = max(4, P.eval_shapes // 3)
    steps = P.sampling.num_inference_steps
    for shift in (1.0, 2.0):
        for guidance in (2.0, 3.5, 5.0):
            m = models.with_shift(shift)
            sh = shapes_eval(m, n_small, steps, guidance, checker)
            em = emoji_eval(m, clip, n_small, steps, guidance, ds, ds_embeds, seed=9)
            score = (sh["held_in"]["colour"] + sh["held_in"]["shape"] + sh["held_out"]["colour"] + sh["held_out"]["shape"]) / 4 + em["top5_clip"]
            sweep.append({"num_inference_steps": steps, "guidance_scale": guidance, "shift": shift, "score": round(score, 4),
                          "shapes_held_in": sh["held_in"], "shapes_held_out": sh["held_out"], "emoji_top5_clip": em["top5_clip"]})
    best = max(sweep, key=lambda r: r["score"])
    res["sweep"] = sweep
    res["defaults"] = {k: best[k] for k in ("num_inference_steps", "guidance_scale", "shift")}

    m = models.with_shift(best["shift"])
    sh = shapes_eval(m, P.eval_shapes, best["num_inference_steps"], best["guidance_scale"], checker)
    em = emoji_eval(m, clip, P.eval_emoji, best["num_inference_steps"], best["guidance_scale"], ds, ds_embeds)
    grid = sh.pop("_samples")[:32] + em.pop("_samples")[:32]
    res["shapes"], res["emoji"] = sh, em
    res["eval_seconds"] = round(time.time() - t0, 1)
    os.makedirs(out, exist_ok=True)
    grid_png(grid, os.path.join(out, "samples.png"))
    with open(json_path or os.path.join(out, "evaluation.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))
    return res
