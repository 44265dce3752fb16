"""training/ablate.py's parts on the toy run: run folders that share the base's stages by hard link,
the fixed-set loss and its caption gap on models whose answers are known, the model card block."""
import json
import os

import numpy as np
import torch

import ablate


def test_variants_parse_into_name_and_preset_overrides():
    assert ablate.parse_variant("baseline") == ("baseline", [])
    assert ablate.parse_variant("e:lr_dit=0.0002,dit_emoji_frac=0.7") == ("e", ["lr_dit=0.0002", "dit_emoji_frac=0.7"])


def test_a_variant_folder_shares_the_base_stages_and_starts_from_the_seed(toy, tmp_path):
    base = os.path.join(toy[0], "run")
    seed = tmp_path / "seed_dit.pt"
    torch.save({"marker": 1}, seed)
    run = tmp_path / "v"
    ablate.link_run(base, str(seed), str(run))
    for f in ablate.SHARED:  # the same inode: nothing copied, nothing recomputed
        assert os.stat(run / f).st_ino == os.stat(os.path.join(base, f)).st_ino
    assert os.stat(run / "dit.pt").st_ino == os.stat(seed).st_ino
    assert sorted(os.listdir(run / "tokenizer")) == sorted(os.listdir(os.path.join(base, "tokenizer")))


def test_fixed_loss_is_the_mean_squared_velocity_error_and_the_gap_is_zero_without_text(toy):
    fixed = ablate.FixedLoss(os.path.join(toy[0], "run"), n=8)
    zero = lambda xt, ctx, pooled, t: torch.zeros_like(xt)  # noqa: E731
    got = fixed(zero)
    for name, s in fixed.sets.items():
        # by hand: loss of v = 0 is the mean of (eps - x0)^2 over the t grid (the captions do not matter)
        want = float(np.mean([((s["eps"][j] - s["x0"]).numpy().astype(np.float64) ** 2).mean() for j in range(len(ablate.T_GRID))]))
        assert abs(got[name]["own"] - want) < 1e-5 * want
        assert got[name]["gap"] == 0.0
    # a model that reads its captions: shuffling them changes the loss
    reads = lambda xt, ctx, pooled, t: xt * 0 + pooled.mean(1)[:, None, None, None]  # noqa: E731
    assert any(abs(v["gap"]) > 0 for v in fixed(reads).values())


def test_the_card_block_is_replaced_not_repeated(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("# m\n\n## Limits\n\nnone\n")
    res = {"common": {"samples": 32, "threads": 1, "n_style": 2, "n_natural": 2, "n_shapes": 2, "start": "x"}, "variants": {}}
    ablate.write_card(str(tmp_path), res, "| t |", "first")
    ablate.write_card(str(tmp_path), res, "| t |", "second")
    text = card.read_text()
    assert text.count(ablate.BEGIN) == 1 and "second" in text and "first" not in text
    assert text.index(ablate.BEGIN) < text.index("## Limits")
    json.dumps(res)
