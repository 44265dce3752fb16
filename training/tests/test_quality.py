"""The quality table's measures (webdit/quality.py) on inputs whose answers are known by
construction, the caption templates, and the model card section that training/quality.py rewrites."""
import os

import numpy as np

import quality as Q
from webdit import data as D
from webdit.quality import laplacian_variance, top5_hits


def test_laplacian_variance_of_flat_and_checkerboard_images():
    flat = np.full((1, 64, 64, 3), 77, np.uint8)
    board = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    board = np.repeat(board[None, :, :, None], 3, axis=3)
    # every interior pixel's 4 neighbours hold the other value: Laplacian = +-4 x 255, mean 0
    assert laplacian_variance(flat)[0] == 0
    assert np.isclose(laplacian_variance(board)[0], (4 * 255) ** 2)


def test_top5_hits_finds_an_image_among_its_references_and_not_a_stranger():
    rng = np.random.RandomState(0)
    refs = rng.randint(0, 256, (40, 64, 64, 3)).astype(np.uint8)
    keys = np.array([f"k{i}" for i in range(40)])
    assert top5_hits(refs[:10], refs, keys, list(keys[:10])) == 1.0
    # the first 5 references are the 5 nearest of image 0 only when the others are far: make them
    far = refs.copy()
    far[5:] = 255 - (refs[0] // 8)
    far[:5] = refs[0] // 2 + rng.randint(0, 3, (5, 64, 64, 3)).astype(np.uint8)
    assert top5_hits(refs[:1], far, keys, ["k39"]) == 0.0
    assert top5_hits(refs[:1], far, keys, ["k2"]) == 1.0


def test_natural_captions_name_the_style_in_half_of_them():
    item = {"label": "flag: Japan", "style": "noto", "tags": ["flag"], "emoji": "\U0001F1EF\U0001F1F5"}
    caps = D.emoji_captions(item)
    assert "the flag of Japan" in caps and "flag of Japan emoji" in caps
    assert sum("noto style" in c for c in caps) == 3
    apple = D.emoji_captions({"label": "red apple", "style": "fluent", "tags": [], "emoji": "x"})
    assert "a red apple" in apple and "a red apple, fluent style" in apple
    assert D.with_article("apple") == "an apple" and D.with_article("the moon") == "the moon"


def test_card_is_rewritten_in_place(tmp_path):
    point = lambda label, seen, v: {  # noqa: E731
        "label": label, "samples_seen": seen, "settings": {"num_inference_steps": 20, "guidance_scale": 5.0, "shift": 2.0},
        "emoji_per_style_top5": {s: {"n": 3, "top5": v} for s in ("noto", "twemoji", "fluent")},
        "emoji_natural_top5": {"article": {"n": 3, "top5": v}, "mean_top5": v},
        "sharpness_laplacian_ratio": {"n": 9, "ratio": 0.95},
        "shapes": {"held_in": {"n": 2, "colour": 1.0, "shape": v}, "held_out": {"n": 2, "colour": 1.0, "shape": v}}}
    (tmp_path / "README.md").write_text("# card\n\n## Limits\n\n- small\n")
    pts = [point("a", 1000, 0.1), point("b", 2000, 0.6)]
    Q.write_card(str(tmp_path), pts, "b")
    Q.write_card(str(tmp_path), pts, "b")
    text = (tmp_path / "README.md").read_text()
    assert text.count(Q.BEGIN) == 1 and text.count("## Limits") == 1 and text.index(Q.END) < text.index("## Limits")
    assert "| emoji top-5 per style (noto / twemoji / fluent) | 0.10 / 0.10 / 0.10 | 0.60 / 0.60 / 0.60 (met) | >= 0.50 each |" in text
    svg = (tmp_path / "learning_curve.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 5


def test_samples_grid_shows_measures_prompts_with_their_seeds_and_frames_the_top5_hits(toy, models, tmp_path):
    from PIL import Image

    from webdit.config import EVAL_SEED
    from webdit.pipeline import generate
    from webdit.quality import STYLES, samples_grid, style_prompts

    base, _ = toy
    cache = os.path.join(base, "data")
    path = str(tmp_path / "samples.png")
    cells = samples_grid(models, 4, 3.0, path, cols=4, cache=cache)
    assert len(cells) == 4 * (2 + 2 * len(STYLES) + 2)
    png = np.asarray(Image.open(path).convert("RGB"))
    assert png.shape == (10 * (128 + 30), 4 * 128, 3)
    imgs, _, meta = D.load_emoji(cache)
    for s in range(len(STYLES)):
        _, pick, prompts = style_prompts(meta, s, 100)
        row = 8 + 8 * s  # after two rows of shapes; each style: 4 generated, then their 4 references
        for k in range(4):
            cap, img, hit = cells[row + k]
            assert cap == prompts[k] and hit in (True, False)
            # the studio's image for that prompt, with the seed quality.measure gives it
            single = generate(models, prompts[k], "", EVAL_SEED + 10000 * s + k, 4, 3.0)[1]
            assert np.abs(single.astype(int) - img).max() <= 1
            assert cells[row + 4 + k][0] == "reference" and np.array_equal(cells[row + 4 + k][1], imgs[pick[k]])
    for k, (_, _, hit) in enumerate(cells):  # a green frame exactly on the hits
        y, x = (k // 4) * 158 + 2, (k % 4) * 128 + 64
        assert (tuple(png[y, x]) == (40, 200, 80)) == bool(hit)


def test_grid_png_frames_only_the_cells_asked_for(tmp_path):
    from PIL import Image

    from webdit.evaluate import grid_png
    grey = np.full((64, 64, 3), 128, np.uint8)
    # captions outside latin-1 (CLDR names have curly quotes and more) are drawn, not refused
    grid_png([("framed \u201cquoted\u201d", grey), ("plain \u2603", grey)], str(tmp_path / "g.png"), cols=2, frames=[True, False])
    png = np.asarray(Image.open(tmp_path / "g.png").convert("RGB"))
    assert tuple(png[2, 64]) == (40, 200, 80) and tuple(png[64, 2]) == (40, 200, 80)  # top and left edge
    assert tuple(png[2, 128 + 64]) == (128, 128, 128) and tuple(png[64, 64]) == (128, 128, 128)
