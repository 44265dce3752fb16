"""The whole recipe at toy size: data -> VAE -> text encoder -> DiT -> export -> evaluation ->
fixtures -> model card, then checks on what it wrote (onnx.checker, hashes, ONNX vs PyTorch)."""
import hashlib
import json
import os
import subprocess
import sys

import onnx
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.dirname(HERE)
ROOT = os.path.dirname(TRAINING)
sys.path.insert(0, TRAINING)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toy")
    cache = tmp / "data"
    subprocess.run(["node", os.path.join(TRAINING, "data", "build_emoji.mjs"), str(cache), "90"], check=True, cwd=ROOT)
    os.environ["WEBDIT_DATA_CACHE"] = str(cache)
    import importlib
    import data
    importlib.reload(data)
    import train
    importlib.reload(train)
    out = tmp / "model"
    train.main(["--preset", "toy", "--run", str(tmp / "run"), "--out", str(out), "--threads", "2"])
    return tmp, out


def test_dataset_has_three_emoji_styles(toy):
    tmp, _ = toy
    items = json.load(open(tmp / "data" / "emoji.json"))["items"]
    assert {"noto", "twemoji", "fluent"} <= {i["style"] for i in items}


def test_graphs_pass_the_onnx_checker_with_the_contract_names(toy):
    _, out = toy
    t = onnx.load(str(out / "transformer.onnx"))
    onnx.checker.check_model(t)
    assert [i.name for i in t.graph.input] == ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"]
    assert [o.name for o in t.graph.output] == ["out_hidden_states"]
    assert t.opset_import[0].version == 17
    v = onnx.load(str(out / "vae_decoder.onnx"))
    onnx.checker.check_model(v)
    assert [i.name for i in v.graph.input] == ["latent_sample"] and [o.name for o in v.graph.output] == ["sample"]
    te = onnx.load(str(out / "text_encoder" / "onnx" / "text_model.onnx"))
    onnx.checker.check_model(te)
    assert [o.name for o in te.graph.output] == ["last_hidden_state", "text_embeds"]


def test_manifest_lists_every_file_with_its_hash(toy):
    _, out = toy
    m = json.load(open(out / "manifest.json"))
    for name, f in m["files"].items():
        data = open(out / name, "rb").read()
        assert len(data) == f["bytes"], name
        assert hashlib.sha256(data).hexdigest() == f["sha256"], name
    for k in ("id", "family", "image_size", "latent_channels", "patch_size", "scaling_factor", "shift_factor", "text_max_length"):
        assert k in m


def test_onnx_matches_pytorch(toy):
    import train, export
    tmp, out = toy
    P = train.PRESETS["toy"]
    models = train.load_all(str(tmp / "run"), P)
    _, diffs = export.export_all(str(tmp / "run"), P, models, str(tmp / "again"), preset="toy")
    assert set(diffs) == {"transformer", "vae_decoder", "text_encoder"}
    assert max(diffs.values()) < 1e-4, diffs


def test_evaluation_fixtures_and_card_are_written(toy):
    _, out = toy
    ev = json.load(open(out / "evaluation.json"))
    for k in ("vae_psnr_db", "retrieval", "shapes", "emoji", "sweep", "defaults"):
        assert k in ev
    assert ev["shape_checker_on_real_renders"]["colour"] > 0.95
    fx = json.load(open(out / "fixtures" / "webdit-tiny.json"))
    assert len(fx["runs"]) == 3 and any(t["prompt"] == "" for t in fx["tokens"])
    assert max(len(t["prompt"]) for t in fx["tokens"]) == 10000
    card = open(out / "README.md").read()
    assert "VAE reconstruction PSNR" in card and (out / "samples.png").exists()


def test_tokenizer_handles_any_text(toy):
    from tokenizer import WordPieceTokenizer
    _, out = toy
    tok = WordPieceTokenizer.load(str(out / "text_encoder"))
    for text in ["", "x" * 10000, "👋🏽 مرحبا café \u200b\x00\t", "[PAD] [SEP]"]:
        ids = tok.encode(text)
        assert len(ids) == tok.max_length and ids[0] == tok.cls_id
