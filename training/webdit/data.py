"""The training set: emoji in three styles (built by data/build_emoji.mjs from npm packages) and
procedural shape scenes with exact captions. Everything is 64x64 RGB uint8."""
import json
import math
import os
import random

import numpy as np
from PIL import Image, ImageDraw

from .config import IMAGE_SIZE as SIZE

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_EMOJI = os.path.join(TRAINING, "data", "build_emoji.mjs")


def default_cache():
    """Where the rendered emoji live: $WEBDIT_DATA_CACHE, else training/data/cache (read when called)."""
    return os.environ.get("WEBDIT_DATA_CACHE") or os.path.join(TRAINING, "data", "cache")

COLOURS = {  # foreground colours: named, well apart so a rule-based checker can tell them apart
    "red": (220, 30, 30), "orange": (255, 140, 0), "yellow": (250, 220, 0), "green": (30, 160, 50),
    "blue": (30, 70, 220), "purple": (130, 50, 180), "pink": (255, 105, 180), "brown": (130, 80, 30),
    "black": (20, 20, 20), "white": (250, 250, 250), "gray": (128, 128, 128), "cyan": (0, 190, 210),
}
BACKGROUNDS = {
    "white": (255, 255, 255), "light gray": (215, 215, 215), "light blue": (190, 220, 250),
    "light green": (200, 240, 200), "light yellow": (255, 250, 200), "light pink": (255, 215, 225),
    "dark blue": (20, 30, 80), "dark green": (20, 60, 30), "black": (0, 0, 0),
}
SHAPES = ["circle", "square", "triangle", "star", "heart", "ring"]
SIZES = {"small": 6, "medium": 10, "large": 14}  # half-extent in pixels
POSITIONS = {  # phrase -> centre
    "at the top left": (14, 14), "at the top": (32, 14), "at the top right": (50, 14),
    "on the left": (14, 32), "in the center": (32, 32), "on the right": (50, 32),
    "at the bottom left": (14, 50), "at the bottom": (32, 50), "at the bottom right": (50, 50),
}
# Never trained on, alone or in pairs: they measure composition (colour x shape generalisation).
HELD_OUT = [("blue", "star"), ("green", "heart"), ("yellow", "triangle"),
            ("purple", "circle"), ("orange", "ring"), ("pink", "square")]


def to_tensor_images(u8):
    """(N,H,W,3) uint8 -> (N,3,H,W) float in [-1,1], the models' pixel range."""
    import torch
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1


def fg_choices(bg):
    b = np.array(BACKGROUNDS[bg])
    return [c for c, rgb in COLOURS.items() if np.abs(np.array(rgb) - b).sum() > 150]


def _polygon(shape, cx, cy, r):
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts
    if shape == "heart":
        pts = []
        for k in range(64):
            t = 2 * math.pi * k / 64
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((cx + r * x / 16.5, cy - r * (y + 2) / 16.5))
        return pts
    raise ValueError(shape)


def draw_shape(draw, shape, colour, bg, cx, cy, r, ss):
    cx, cy, r = cx * ss, cy * ss, r * ss
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        ri = r * 0.55
        draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=BACKGROUNDS[bg])
    elif shape == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=fill)


def render_scene(objs, bg, ss=4):
    """objs: list of (shape, colour, size, position). Drawn at ss x and box-filtered down."""
    img = Image.new("RGB", (SIZE * ss, SIZE * ss), BACKGROUNDS[bg])
    d = ImageDraw.Draw(img)
    for shape, colour, size, pos in objs:
        cx, cy = POSITIONS[pos]
        draw_shape(d, shape, colour, bg, cx, cy, SIZES[size], ss)
    return np.asarray(img.resize((SIZE, SIZE), Image.BOX), dtype=np.uint8)


def describe(obj):
    shape, colour, size, pos = obj
    return f"a {size} {colour} {shape} {pos}"


def scene_caption(objs, bg):
    return " and ".join(describe(o) for o in objs) + f" on a {bg} background"


def random_scene(rng):
    bg = rng.choice(list(BACKGROUNDS))
    n = 1 if rng.random() < 0.6 else 2
    positions = rng.sample(list(POSITIONS), n)
    objs = []
    for pos in positions:
        while True:
            colour, shape = rng.choice(fg_choices(bg)), rng.choice(SHAPES)
            if (colour, shape) not in HELD_OUT:
                break
        size = rng.choice(list(SIZES)) if n == 1 else rng.choice(["small", "medium"])
        objs.append((shape, colour, size, pos))
    return objs, bg


def shape_dataset(n, seed=0):
    rng = random.Random(seed)
    imgs, caps, meta = np.zeros((n, SIZE, SIZE, 3), np.uint8), [], []
    for i in range(n):
        objs, bg = random_scene(rng)
        imgs[i] = render_scene(objs, bg)
        full = scene_caption(objs, bg)
        short = " and ".join(f"a {c} {s}" for s, c, _, _ in objs) + f" on a {bg} background"
        caps.append([full, full, short])
        meta.append({"kind": "shape", "objs": objs, "bg": bg})
    return imgs, caps, meta


def natural_name(label):
    """The CLDR name as people write it: "flag: Japan" -> "the flag of Japan", "waving hand: medium
    skin tone" -> "waving hand, medium skin tone"; anything else unchanged."""
    if label.startswith("flag: "):
        return f"the flag of {label[len('flag: '):]}"
    return label.replace(": ", ", ")


def with_article(name):
    """"red apple" -> "a red apple", "apple" -> "an apple"; names that start with "the" keep it."""
    if name.startswith("the "):
        return name
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def emoji_captions(item):
    """Six captions per image: three name the style (noto / twemoji / fluent), three do not, so a
    prompt without a style word ("a red apple", "apple emoji") gets any style and one with it gets
    that style. Names are CLDR's, written the way people type them (natural_name)."""
    label, style = item["label"], item["style"]
    name = natural_name(label)
    tags = ", ".join(item["tags"][:3])
    bare = name[len("the "):] if name.startswith("the ") else name
    return [f"{label}, {style} style", f"{with_article(name)}, {style} style", f"{item['emoji']} {style} style",
            with_article(name), f"{bare} emoji", f"{name}" + (f", {tags}" if tags else "")]


def build_emoji_cache(cache, limit=None):
    """Render the emoji images from the npm packages (node; needs `npm install` first)."""
    import subprocess
    args = ["node", BUILD_EMOJI, cache] + ([str(limit)] if limit else [])
    p = subprocess.run(args, cwd=os.path.dirname(TRAINING), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"building the emoji images failed:\n{p.stderr[-2000:]}\n"
                           "Run `npm install` first: the emoji packages are devDependencies.")
    print(p.stdout.strip())


def load_emoji(cache, limit=None):
    path = os.path.join(cache, "emoji.json")
    if not os.path.exists(path):
        build_emoji_cache(cache)
    with open(path) as f:
        meta = json.load(f)["items"]
    imgs = np.fromfile(os.path.join(cache, "emoji.u8"), np.uint8).reshape(-1, SIZE, SIZE, 3)
    if limit:
        imgs, meta = imgs[:limit], meta[:limit]
    caps = [emoji_captions(m) for m in meta]
    for m in meta:
        m["kind"] = "emoji"
    return imgs, caps, meta


def build(n_shapes, emoji_limit=None, seed=0, cache=None):
    """Returns images (N,64,64,3) uint8, captions (list of lists), meta, and a boolean val mask.
    cache: the emoji folder (default_cache() when None)."""
    e_imgs, e_caps, e_meta = load_emoji(cache or default_cache(), emoji_limit)
    s_imgs, s_caps, s_meta = shape_dataset(n_shapes, seed)
    imgs = np.concatenate([e_imgs, s_imgs])
    caps, meta = e_caps + s_caps, e_meta + s_meta
    rng = np.random.RandomState(seed)
    val = rng.rand(len(imgs)) < 0.03
    return imgs, caps, meta, val
