"""The default-model issue's quality table, measured the same way for any weights (the shipped
graphs' recovered weights, or a run's EMA DiT), so runs can be compared and plotted against the
samples the DiT has seen (the learning curve in the model card).

  emoji_per_style  prompt "<CLDR name>, <style> style"; hit when the prompted emoji is among the 5
                   nearest references of THAT style (16x16-pixel L2 over every emoji image of it)
  emoji_natural    prompts people type, no style word: "a red apple", "the flag of Japan" (trained
                   template), "<name>" alone and "a picture of a red apple" (templates never trained
                   on); emoji without skin-tone / gender variants; hit when the prompted emoji (any
                   style) is among the 5 nearest of all references
  sharpness        Laplacian variance of the generated emoji over that of their references (mean
                   over images of each; 1.0 = as sharp as the data)
  shapes           the rule-based checker of evaluate.py on held-in and held-out colour x shape pairs

Every number comes with its n; the prompts are drawn with fixed seeds, so two models see the same ones.
"""
import random

import numpy as np
import torch

from . import data as D
from .config import EVAL_SEED
from .evaluate import ShapeChecker, generate_many, shapes_eval

STYLES = ("noto", "twemoji", "fluent")


def small16(a):
    """(N,64,64,3) uint8 -> (N,768) float32: 4x4 box-filtered to 16x16 pixels."""
    return a.reshape(len(a), 16, 4, 16, 4, 3).mean((2, 4)).reshape(len(a), -1).astype(np.float32)


def top5_hit_list(gen, refs, ref_keys, targets):
    """Per generated image: whether its target key is among the keys of its 5 nearest references."""
    nn = torch.cdist(torch.from_numpy(small16(gen)), torch.from_numpy(small16(refs))).topk(5, dim=1, largest=False).indices.numpy()
    return [t in set(ref_keys[row]) for t, row in zip(targets, nn)]


def top5_hits(gen, refs, ref_keys, targets):
    """Fraction of generated images whose target key is among the keys of their 5 nearest references."""
    return float(np.mean(top5_hit_list(gen, refs, ref_keys, targets)))


def laplacian_variance(imgs):
    """Per image: variance of the 4-neighbour Laplacian of the grey image (valid region)."""
    g = imgs.astype(np.float64).mean(-1)
    lap = g[:, 1:-1, :-2] + g[:, 1:-1, 2:] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1] - 4 * g[:, 1:-1, 1:-1]
    return lap.reshape(len(g), -1).var(1)


def style_prompts(meta, s, n, seed=11):
    """STYLES[s]'s references (indices into meta), the n picked and their prompts "<name>, <style> style"."""
    idx = [i for i, m in enumerate(meta) if m["style"] == STYLES[s]]
    pick = random.Random(seed + s).sample(idx, min(n, len(idx)))
    return idx, pick, [f"{meta[i]['label']}, {STYLES[s]} style" for i in pick]


def natural_picks(meta, n, seed=12):
    """n emoji (hex) without skin-tone or gender variants, and hex -> label."""
    bases = sorted({m["hex"] for m in meta if m["hex"] == m["base"]})
    return random.Random(seed).sample(bases, min(n, len(bases))), {m["hex"]: m["label"] for m in meta}


def emoji_per_style(models, imgs, meta, n, steps, guidance, seed=11):
    """Returns ({style: top5}, generated images, the reference index of each)."""
    out, gens, refs_of = {}, [], []
    for s, style in enumerate(STYLES):
        idx, pick, prompts = style_prompts(meta, s, n, seed)
        gen = generate_many(models, prompts, steps, guidance, seed0=EVAL_SEED + 10000 * s)
        keys = np.array([meta[i]["hex"] for i in idx])
        out[style] = {"n": len(pick), "top5": top5_hits(gen, imgs[idx], keys, [meta[i]["hex"] for i in pick])}
        gens.append(gen); refs_of += pick
    return out, np.concatenate(gens), refs_of


NATURAL_TEMPLATES = {  # name -> (template, trained on?)
    "article": (lambda name: D.with_article(name), True),
    "bare": (lambda name: name, False),
    "a_picture_of": (lambda name: "a picture of " + D.with_article(name), False),
}


def emoji_natural(models, imgs, meta, n, steps, guidance, seed=12):
    """{template: top5} over n emoji (no skin-tone or gender variants), references of every style."""
    pick, label = natural_picks(meta, n, seed)
    keys = np.array([m["hex"] for m in meta])
    res = {}
    for k, (name, (template, trained)) in enumerate(NATURAL_TEMPLATES.items()):
        prompts = [template(D.natural_name(label[h])) for h in pick]
        gen = generate_many(models, prompts, steps, guidance, seed0=EVAL_SEED + 50000 + 1000 * k)
        res[name] = {"n": len(pick), "top5": top5_hits(gen, imgs, keys, pick), "trained_template": trained,
                     "examples": prompts[:3]}
    res["mean_top5"] = float(np.mean([res[t]["top5"] for t in NATURAL_TEMPLATES]))
    return res


@torch.no_grad()
def measure(models, steps, guidance, n_style=100, n_natural=100, n_shapes=60, cache=None):
    """The whole table at one sampling setting (the manifest's defaults)."""
    imgs, _, meta = D.load_emoji(cache or D.default_cache())
    per_style, gen, refs_of = emoji_per_style(models, imgs, meta, n_style, steps, guidance)
    natural = emoji_natural(models, imgs, meta, n_natural, steps, guidance)
    sharp = float(laplacian_variance(gen).mean() / laplacian_variance(imgs[refs_of]).mean())
    shapes = shapes_eval(models, n_shapes, steps, guidance, ShapeChecker())
    shapes.pop("_samples")
    return {"settings": {"num_inference_steps": steps, "guidance_scale": guidance, "shift": models.scheduler.shift},
            "emoji_per_style_top5": per_style, "emoji_natural_top5": natural,
            "sharpness_laplacian_ratio": {"n": len(gen), "ratio": sharp}, "shapes": shapes}


@torch.no_grad()
def samples_grid(models, steps, guidance, path, cols=8, cache=None):
    """The model card's picture: the first `cols` prompts of each of measure()'s sets, with the seeds
    measure() gives them, so the grid shows what the table counts. Rows: held-in shape scenes,
    held-out colour x shape pairs; per style, its emoji prompts above their references (a green frame:
    the prompted emoji is among the 5 nearest references, what emoji top-5 counts); natural prompts
    (the trained "a red apple" template) above the noto reference. Returns the cells
    [(caption, uint8 image, hit or None)] in reading order."""
    from .evaluate import grid_png, shape_prompts
    imgs, _, meta = D.load_emoji(cache or D.default_cache())
    cells = []
    for held in (False, True):  # shapes_eval's prompts and seeds
        ps = shape_prompts(cols, held, seed=1 if held else 2)
        gen = generate_many(models, [p[0] for p in ps], steps, guidance)
        cells += [(p[0], g, None) for p, g in zip(ps, gen)]
    for s in range(len(STYLES)):
        idx, pick, prompts = style_prompts(meta, s, 100)
        pick, prompts = pick[:cols], prompts[:cols]
        gen = generate_many(models, prompts, steps, guidance, seed0=EVAL_SEED + 10000 * s)
        hits = top5_hit_list(gen, imgs[idx], np.array([meta[i]["hex"] for i in idx]), [meta[i]["hex"] for i in pick])
        cells += [(p, g, h) for p, g, h in zip(prompts, gen, hits)]
        cells += [("reference", imgs[i], None) for i in pick]
    pick, label = natural_picks(meta, 100)
    pick = pick[:cols]
    prompts = [NATURAL_TEMPLATES["article"][0](D.natural_name(label[h])) for h in pick]
    gen = generate_many(models, prompts, steps, guidance, seed0=EVAL_SEED + 50000)
    hits = top5_hit_list(gen, imgs, np.array([m["hex"] for m in meta]), pick)
    cells += [(p, g, h) for p, g, h in zip(prompts, gen, hits)]
    noto = {m["hex"]: i for i, m in enumerate(meta) if m["style"] == "noto"}
    cells += [("reference (noto)", imgs[noto[h]] if h in noto else np.zeros_like(imgs[0]), None) for h in pick]
    grid_png([(c, im) for c, im, _ in cells], path, cols=cols, frames=[h for _, _, h in cells])
    return cells


# ---- the model card's section: the table against the targets, and the curve -------------
TARGETS = [  # (row, value of a point, target text, met?)
    ("emoji top-5 per style (noto / twemoji / fluent)",
     lambda p: " / ".join(f"{p['emoji_per_style_top5'][s]['top5']:.2f}" for s in STYLES), ">= 0.50 each",
     lambda p: all(p["emoji_per_style_top5"][s]["top5"] >= 0.5 for s in STYLES)),
    ("emoji top-5, natural prompts (mean of 3 templates)",
     lambda p: f"{p['emoji_natural_top5']['mean_top5']:.2f}", ">= 0.30", lambda p: p["emoji_natural_top5"]["mean_top5"] >= 0.3),
    ("shapes: shape accuracy held-in / held-out",
     lambda p: f"{p['shapes']['held_in']['shape']:.2f} / {p['shapes']['held_out']['shape']:.2f}", ">= 0.90 / 0.70",
     lambda p: p["shapes"]["held_in"]["shape"] >= 0.9 and p["shapes"]["held_out"]["shape"] >= 0.7),
    ("shapes: colour held-in / held-out",
     lambda p: f"{p['shapes']['held_in']['colour']:.2f} / {p['shapes']['held_out']['colour']:.2f}", ">= 0.95",
     lambda p: min(p["shapes"]["held_in"]["colour"], p["shapes"]["held_out"]["colour"]) >= 0.95),
    ("sharpness (Laplacian variance vs references)",
     lambda p: f"{p['sharpness_laplacian_ratio']['ratio']:.3f}", ">= 0.90", lambda p: p["sharpness_laplacian_ratio"]["ratio"] >= 0.9),
]
SERIES = [  # (legend, value, colour) for the chart
    ("emoji top-5 per style (mean)", lambda p: float(np.mean([p["emoji_per_style_top5"][s]["top5"] for s in STYLES])), "#d62728"),
    ("emoji top-5 natural prompts", lambda p: p["emoji_natural_top5"]["mean_top5"], "#ff7f0e"),
    ("shape accuracy held-in", lambda p: p["shapes"]["held_in"]["shape"], "#1f77b4"),
    ("shape accuracy held-out", lambda p: p["shapes"]["held_out"]["shape"], "#17becf"),
    ("sharpness ratio", lambda p: min(1.0, p["sharpness_laplacian_ratio"]["ratio"]), "#2ca02c"),
]


def curve_svg(points, width=640, height=300):
    """Metrics (0..1) against DiT samples seen, one polyline per SERIES, as SVG text."""
    L, R, T, B = 50, 230, 15, 35
    xs = [p["samples_seen"] for p in points]
    x0, x1 = 0, max(xs) * 1.05 if xs else 1
    X = lambda v: L + (width - L - R) * (v - x0) / (x1 - x0)  # noqa: E731
    Y = lambda v: T + (height - T - B) * (1 - v)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{L}" y1="{Y(v):.1f}" x2="{width - R}" y2="{Y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for k in range(5):
        v = x1 * k / 4
        out.append(f'<text x="{X(v):.1f}" y="{height - B + 15}" text-anchor="middle">{v / 1e3:.0f}k</text>')
    out.append(f'<text x="{(L + width - R) / 2:.0f}" y="{height - 5}" text-anchor="middle">DiT training samples seen</text>')
    for k, (name, f, colour) in enumerate(SERIES):
        pts = " ".join(f"{X(p['samples_seen']):.1f},{Y(f(p)):.1f}" for p in points)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{X(p["samples_seen"]):.1f}" cy="{Y(f(p)):.1f}" r="3" fill="{colour}"/>' for p in points]
        out.append(f'<rect x="{width - R + 12}" y="{T + 18 * k}" width="12" height="3" fill="{colour}"/>'
                   f'<text x="{width - R + 30}" y="{T + 18 * k + 5}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out)


def card_section(points, shipped_label):
    """Markdown: the issue's table (targets, every point of the curve as a column) and the chart."""
    head = "| metric | " + " | ".join(f"{p['label']}<br>{p['samples_seen'] / 1e3:.0f}k samples" for p in points) + " | target |"
    rows = [head, "|---|" + "---|" * len(points) + "---|"]
    for name, value, target, met in TARGETS:
        rows.append(f"| {name} | " + " | ".join(value(p) + (" (met)" if met(p) else "") for p in points) + f" | {target} |")
    s = points[-1]
    return "\n".join([
        f"Measured by `training/quality.py` (`webdit/quality.py`) at the manifest's defaults "
        f"({s['settings']['num_inference_steps']} steps, CFG {s['settings']['guidance_scale']}, shift {s['settings']['shift']}); "
        f"n per cell: {s['emoji_per_style_top5']['noto']['n']} emoji per style, {s['emoji_natural_top5']['article']['n']} emoji x 3 "
        f"natural templates, {s['shapes']['held_in']['n']} shape prompts each way. Points are in `training/learning_curve.json`; "
        f"the shipped weights are **{shipped_label}**.", "", *rows, "",
        "![learning curve](learning_curve.svg)", ""])
