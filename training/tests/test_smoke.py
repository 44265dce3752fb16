"""The whole recipe at toy size (data -> VAE -> text encoder -> DiT -> export -> evaluation ->
fixtures -> model card) into $WEBDIT_TOY_DIR (default: a pytest tmp dir): the model folder at
<dir>/model, the fixtures at <dir>/fixtures.json (fixtures `toy` and `models` in conftest.py, shared
with test_from_onnx.py). Then checks on what it wrote, with values."""
import base64
import hashlib
import os

import numpy as np
import onnx
import pytest
import torch

from webdit import data as D
from webdit.config import PRESETS
from webdit.export import ort_run, read_json, vae_scale_factor
from webdit.pipeline import generate, get_sigmas, get_timesteps, img2img_start, initial_latents
from webdit.tokenizer import WordPieceTokenizer

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TRAINING)
P = PRESETS["toy"]
CONTRACT = {  # docs/model-folder.md, "Graph contracts"
    "transformer": (["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"], ["out_hidden_states"]),
    "vae_decoder": (["latent_sample"], ["sample"]),
    "vae_encoder": (["sample"], ["latent_sample"]),
    "text_encoder": (["input_ids"], ["last_hidden_state", "text_embeds"]),
}


def b64(t, dtype=np.float32):
    return np.frombuffer(base64.b64decode(t["b64"]), dtype).reshape(t["dims"])


def test_dataset_has_three_emoji_styles(toy):
    base, _ = toy
    items = read_json(os.path.join(base, "data", "emoji.json"))["items"]
    assert {"noto", "twemoji", "fluent"} <= {i["style"] for i in items}


def test_graphs_pass_the_onnx_checker_with_the_contract_names(toy):
    _, out = toy
    found = sorted(os.path.relpath(os.path.join(b, n), out) for b, _, ns in os.walk(out) for n in ns if n.endswith(".onnx"))
    assert found == sorted(f"{g}/model.onnx" for g in CONTRACT)
    for graph, (inputs, outputs) in CONTRACT.items():
        m = onnx.load(os.path.join(out, graph, "model.onnx"))
        onnx.checker.check_model(m)
        assert [i.name for i in m.graph.input] == inputs, graph
        assert [o.name for o in m.graph.output] == outputs, graph
        assert m.opset_import[0].version == 17


def test_onnx_matches_pytorch_in_onnxruntime(toy, models):
    """Batch 3 (the export traced batch 2): the batch axis really is dynamic."""
    _, out = toy
    g = torch.Generator().manual_seed(123)
    dit, T = models.transformer.cfg, models.scheduler.num_train_timesteps
    prompts = ["a small red star at the top left on a light blue background", "", "cat face, noto style"]
    ids = torch.tensor([models.tokenizer.encode(p) for p in prompts])
    ctx, pooled = models.text_encoder(ids)
    latents = torch.randn(3, dit.in_channels, dit.sample_size, dit.sample_size, generator=g)
    images = D.to_tensor_images(np.stack([D.render_scene([(s, "red", "large", "in the center")], "white")
                                          for s in ("circle", "star", "ring")]))
    t = torch.tensor([1.0, 0.5, 0.01]) * T
    cases = {
        "transformer": ({"hidden_states": latents, "encoder_hidden_states": ctx, "pooled_projections": pooled, "timestep": t},
                        {"out_hidden_states": models.transformer(latents, ctx, pooled, t)}),
        "vae_decoder": ({"latent_sample": latents}, {"sample": models.vae.decoder(latents)}),
        "vae_encoder": ({"sample": images}, {"latent_sample": models.vae.encoder(images)[0]}),
        "text_encoder": ({"input_ids": ids}, {"last_hidden_state": ctx, "text_embeds": pooled}),
    }
    diffs = {}
    for graph, (feeds, ref) in cases.items():
        got = ort_run(os.path.join(out, graph, "model.onnx"), {k: v.detach().numpy() for k, v in feeds.items()})
        assert set(got) == set(ref), graph
        diffs[graph] = max(float(np.abs(got[k] - ref[k].detach().numpy()).max()) for k in ref)
    assert all(d < 1e-4 for d in diffs.values()), diffs


def test_manifest_lists_every_downloaded_file_with_its_hash(toy):
    base, out = toy
    m = read_json(os.path.join(out, "manifest.json"))
    assert (m["format"], m["version"], m["id"], m["family"]) == ("webdit-model", 2, "webdit-toy", "webdit")
    for name, f in m["files"].items():
        data = open(os.path.join(out, name), "rb").read()
        assert len(data) == f["bytes"], name
        assert hashlib.sha256(data).hexdigest() == f["sha256"], name
    on_disk = {os.path.relpath(os.path.join(b, n), out) for b, _, ns in os.walk(out) for n in ns}
    extras = {"manifest.json", "README.md", "samples.png", "evaluation.json"}
    assert set(m["files"]) == on_disk - extras
    # evaluation's choice: defaults in the manifest, shift in scheduler_config.json (whose hash was redone above)
    ev = read_json(os.path.join(out, "evaluation.json"))["defaults"]
    sched = read_json(os.path.join(out, "scheduler", "scheduler_config.json"))
    assert m["defaults"] == {"num_inference_steps": ev["num_inference_steps"], "guidance_scale": ev["guidance_scale"],
                             "negative_prompt": ""}
    assert sched == {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": ev["shift"]}


def test_model_index_components_each_have_a_folder_with_a_config(toy):
    _, out = toy
    index = read_json(os.path.join(out, "model_index.json"))
    assert index["_class_name"] == "WebDiTPipeline"
    components = {k for k in index if not k.startswith("_")}
    assert components == {"scheduler", "text_encoder", "tokenizer", "transformer", "vae_decoder", "vae_encoder"}
    config_name = {"scheduler": "scheduler_config.json", "tokenizer": "tokenizer_config.json"}
    for c in components:
        assert os.path.isfile(os.path.join(out, c, config_name.get(c, "config.json"))), c
    assert read_json(os.path.join(out, "tokenizer", "tokenizer_config.json"))["model_max_length"] == P.text.max_length
    assert read_json(os.path.join(out, "vae_encoder", "config.json")) == read_json(os.path.join(out, "vae_decoder", "config.json"))


def test_vae_scale_factor_is_image_size_over_latent_size(toy):
    _, out = toy
    vae = read_json(os.path.join(out, "vae_decoder", "config.json"))
    tr = read_json(os.path.join(out, "transformer", "config.json"))
    assert vae_scale_factor(vae) == vae["sample_size"] // tr["sample_size"] == 64 // 16
    assert vae["latent_channels"] == tr["in_channels"] == tr["out_channels"]
    assert P.vae.vae_scale_factor == 4 and P.vae.latent_size == 16


def test_sigmas_are_the_design_check_values():
    s = get_sigmas(28, 3.0, 1000)
    assert len(s) == 29
    np.testing.assert_allclose(s[:4], [1.0, 0.98738, 0.97411, 0.96013], atol=1e-5)
    np.testing.assert_allclose(s[-4:], [0.19983, 0.11091, 0.0089286, 0.0], atol=1e-5)
    np.testing.assert_allclose(get_timesteps(s, 1000)[[0, -1]], [1000.0, 8.9286], atol=1e-2)


@pytest.mark.parametrize("n, strength, k", [(20, 0.6, 8), (10, 0.35, 6), (4, 0.3, 2), (3, 0.1, 2),
                                            (28, 1.0, 0), (28, 1.5, 0), (20, 0.0, 20)])
def test_img2img_start_step(n, strength, k):
    assert img2img_start(n, strength) == k


def test_img2img_with_no_step_left_is_an_error(models):
    image = D.render_scene([("circle", "red", "large", "in the center")], "white")
    with pytest.raises(ValueError, match="no denoising step"):
        generate(models, "a red circle", "", 0, 20, 1.0, image=image, strength=0.0)


def test_initial_latents_are_bit_identical_to_the_shipped_fixtures():
    """Those noise tensors were written by the previous sampler (sample.py) and pass the TS tests."""
    fx = read_json(os.path.join(ROOT, "src", "engine", "__fixtures__", "webdit-tiny.json"))
    for n in fx["noise"]:
        assert np.array_equal(initial_latents(n["seed"], tuple(n["shape"])), b64(n["latents"])), n["seed"]


def test_tokenizer_ids_for_a_prompt():
    tok = WordPieceTokenizer.load(os.path.join(ROOT, "public", "models", "webdit-tiny", "tokenizer"))
    assert tok.encode("a small red star at the top left on a light blue background") == \
        [2, 28, 5506, 5290, 5582, 3132, 5692, 5735, 4699, 5038, 28, 4727, 3343, 3171, 3] + [0] * 17
    assert tok.encode("zxqv 👋🏽") == [2, 53, 1525, 1518, 1523, 6423, 3] + [0] * 25
    assert tok.encode("") == [2, 3] + [0] * 30


def test_tokenizer_handles_any_text(toy):
    _, out = toy
    tok = WordPieceTokenizer.load(os.path.join(out, "tokenizer"))
    for text in ["", "x" * 10000, "👋🏽 مرحبا café \u200b\x00\t", "[PAD] [SEP]"]:
        ids = tok.encode(text)
        assert len(ids) == tok.max_length and ids[0] == tok.cls_id and tok.sep_id in ids


def test_fixtures(toy):
    base, out = toy
    fx = read_json(os.path.join(base, "fixtures.json"))
    m = read_json(os.path.join(out, "manifest.json"))
    assert list(fx) == ["model", "generated_by", "model_files", "max_length", "tokens", "text", "sigmas", "noise",
                        "transformer", "vae", "vae_encoder", "runs", "img2img"]
    assert fx["model"] == "webdit-toy"
    graphs = [f"{g}/model.onnx" for g in CONTRACT]
    assert fx["model_files"] == {p: m["files"][p]["sha256"] for p in graphs}
    assert max(len(t["prompt"]) for t in fx["tokens"]) == 10000
    d, shift = m["defaults"], read_json(os.path.join(out, "scheduler", "scheduler_config.json"))["shift"]
    r0 = fx["runs"][0]
    assert (r0["numInferenceSteps"], r0["guidanceScale"], r0["shift"]) == (d["num_inference_steps"], d["guidance_scale"], shift)
    assert [(r["strength"], r["init_image"]["dims"]) for r in fx["img2img"]] == [(0.6, [64, 64, 3]), (0.35, [64, 64, 3])]
    for r in fx["img2img"]:
        assert b64(r["init_image"], np.uint8).dtype == np.uint8 and b64(r["rgb"], np.uint8).shape == (64, 64, 3)
        assert b64(r["latents"]).shape == (1, 8, 16, 16)
    # the encoder fixture (PyTorch) against the exported graph (onnxruntime)
    enc = fx["vae_encoder"]
    got = ort_run(os.path.join(out, "vae_encoder", "model.onnx"), {"sample": b64(enc["sample"])})["latent_sample"]
    assert b64(enc["sample"]).shape == (2, 3, 64, 64)
    assert np.abs(got - b64(enc["latent_sample"])).max() < 1e-4


def test_evaluation_and_card_are_written(toy):
    _, out = toy
    ev = read_json(os.path.join(out, "evaluation.json"))
    assert ev["shape_checker_on_real_renders"]["colour"] > 0.95
    assert ev["shape_checker_on_real_renders"]["shape"] > 0.95
    assert len(ev["sweep"]) == 6
    card = open(os.path.join(out, "README.md"), encoding="utf-8").read()
    assert "`transformer/model.onnx`" in card and "`vae_encoder/model.onnx`" in card and "(`webdit-toy`)" in card
    assert os.path.getsize(os.path.join(out, "samples.png")) > 0
