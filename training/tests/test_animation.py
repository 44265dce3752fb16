"""The reference pipeline's animations (pipeline.slerp / lerp / animation_inputs / generate_animation):
slerp's exact ends and its norm, the straight-line fallback, the end frames of both kinds equal the
single runs they interpolate between (a small random-weight model, no training), clear errors; and
the checked-in goldens (src/engine/__fixtures__/webdit-tiny-animation.json) belong to the shipped graphs."""
import base64
import json
import os

import numpy as np
import pytest
import torch

from webdit.config import DiTConfig, SchedulerConfig, TextConfig, VAEConfig
from webdit.fixtures import model_files
from webdit.models import DiT, VAE, TextEncoder
from webdit.pipeline import (Models, animation_inputs, animation_ts, generate, generate_animation, initial_latents, lerp,
                             slerp, SLERP_DOT_THRESHOLD)
from webdit.tokenizer import WordPieceTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "public", "models", "webdit-tiny")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    tok = WordPieceTokenizer.load(os.path.join(SHIPPED, "tokenizer"))
    text = TextConfig(vocab_size=len(tok.vocab), max_length=tok.max_length, width=32, layers=1, heads=2, proj_dim=32)
    vae = VAE(VAEConfig(block_out_channels=(8, 16, 16)))
    dit = DiT(DiTConfig(in_channels=8, sample_size=vae.cfg.latent_size, hidden=32, depth=1, heads=2, context_dim=32, pooled_dim=32))
    return Models(transformer=dit.eval(), vae=vae.eval(), text_encoder=TextEncoder(text).eval(), tokenizer=tok,
                  scheduler=SchedulerConfig(shift=3.0), scaling_factor=1.0, shift_factor=0.0)


def test_slerp_ends_are_exact_and_the_middle_keeps_the_norm():
    a = initial_latents(1, (1, 8, 16, 16))
    b = initial_latents(2, (1, 8, 16, 16))
    assert np.array_equal(slerp(a, b, 0.0), a) and np.array_equal(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert mid.shape == a.shape and mid.dtype == np.float32
    # independent Gaussians are nearly orthogonal: slerp keeps the norm, a straight line loses ~29%
    assert np.linalg.norm(mid) / np.linalg.norm(a) > 0.97
    assert np.linalg.norm((a + b) / 2) / np.linalg.norm(a) < 0.75


def test_slerp_of_nearly_parallel_vectors_is_the_straight_line():
    a, b = np.array([1.0, 0.0, 0.0], np.float32), np.array([1.0, 0.001, 0.0], np.float32)
    assert 1 / np.hypot(1, 0.001) > SLERP_DOT_THRESHOLD
    assert np.array_equal(slerp(a, b, 0.5), ((a.astype(np.float64) + b) / 2).astype(np.float32))


def test_lerp_and_frame_times():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    assert torch.equal(lerp(a, b, 0.25), torch.full((2, 3), 0.25))
    assert animation_ts(3) == [0.0, 0.5, 1.0] and animation_ts(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_seed_animation_ends_are_the_single_runs(models):
    lat, rgb = generate_animation(models, "seed", "a red apple", "", 5, 6, 3, 3, 3.0)
    a, rgb_a = generate(models, ["a red apple"], "", 5, 3, 3.0)
    b, rgb_b = generate(models, ["a red apple"], "", 6, 3, 3.0)
    assert lat.shape == (3, 8, 16, 16) and rgb.shape == (3, 64, 64, 3)
    assert np.abs(lat[0] - a[0]).max() < 1e-5 and np.abs(lat[2] - b[0]).max() < 1e-5
    assert np.abs(lat[1] - a[0]).max() > 1e-2 and np.abs(lat[1] - b[0]).max() > 1e-2


def test_prompt_animation_ends_are_the_two_prompts_from_one_seed(models):
    noise, (ctx, pooled) = animation_inputs(models, "prompt", "a red apple", 9, "a blue star", 4)
    assert np.array_equal(noise, np.concatenate([initial_latents(9, (1, 8, 16, 16))] * 4))
    assert ctx.shape == (4, 32, 32) and pooled.shape == (4, 32)
    lat, _ = generate_animation(models, "prompt", "a red apple", "blurry", 9, "a blue star", 4, 2, 4.0)
    a, _ = generate(models, ["a red apple"], "blurry", 9, 2, 4.0)
    b, _ = generate(models, ["a blue star"], "blurry", 9, 2, 4.0)
    assert np.abs(lat[0] - a[0]).max() < 1e-5 and np.abs(lat[3] - b[0]).max() < 1e-5


def test_bad_animations_say_what_is_wrong(models):
    with pytest.raises(ValueError, match="at least 2 frames, not 1"):
        animation_inputs(models, "seed", "x", 1, 2, 1)
    with pytest.raises(ValueError, match="'seed' or 'prompt', not 'zoom'"):
        animation_inputs(models, "zoom", "x", 1, 2, 3)


def test_the_checked_in_goldens_belong_to_the_shipped_graphs():
    with open(os.path.join(ROOT, "src", "engine", "__fixtures__", "webdit-tiny-animation.json"), encoding="utf-8") as f:
        fx = json.load(f)
    assert fx["model_files"] == model_files(SHIPPED), "re-run training/animation_fixtures.py (see its docstring)"
    kinds = [c["kind"] for c in fx["animations"]]
    assert kinds.count("seed") >= 2 and kinds.count("prompt") >= 2
    for c in fx["animations"]:
        assert c["latents"]["dims"][0] == c["rgb"]["dims"][0] == c["frames"]
        if c["kind"] == "seed":  # the stored slerp is the formula's, ends bit-exact
            noise = np.frombuffer(base64.b64decode(c["initial_latents"]["b64"]), np.float32).reshape(c["initial_latents"]["dims"])
            one = (1,) + tuple(noise.shape[1:])
            assert np.array_equal(noise[0], initial_latents(c["seed"], one)[0])
            assert np.array_equal(noise[-1], initial_latents(c["to"], one)[0])
            assert max(c["endpoints_max_abs_diff"].values()) < 1e-4
