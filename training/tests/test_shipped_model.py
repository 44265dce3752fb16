"""The embedded model public/models/webdit-tiny (format 2, no PyTorch weights in the repository:
training/from_onnx.py rebuilds them from the graphs): its manifest matches its files, and the golden
fixtures name the graphs they were computed with."""
import hashlib
import os

from webdit.export import read_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "public", "models", "webdit-tiny")


def test_manifest_matches_the_files():
    m = read_json(os.path.join(MODEL, "manifest.json"))
    assert (m["format"], m["version"], m["id"]) == ("webdit-model", 2, "webdit-tiny")
    assert m["defaults"] == {"num_inference_steps": 20, "guidance_scale": 5.0, "negative_prompt": ""}
    for name, f in m["files"].items():
        data = open(os.path.join(MODEL, name), "rb").read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"]), name
    assert read_json(os.path.join(MODEL, "scheduler", "scheduler_config.json"))["shift"] == 2.0


def test_fixtures_were_made_with_these_graphs():
    fx = read_json(os.path.join(ROOT, "src", "engine", "__fixtures__", "webdit-tiny.json"))
    files = read_json(os.path.join(MODEL, "manifest.json"))["files"]
    assert fx["model_files"] == {p: files[p]["sha256"] for p in
                                 ("transformer/model.onnx", "vae_decoder/model.onnx", "vae_encoder/model.onnx",
                                  "text_encoder/model.onnx")}


def test_image_to_image_is_available():
    """The vae_encoder (distilled against the frozen decoder, training/distill_encoder.py) is a
    component with the decoder's config, and the fixtures have its golden values."""
    index = read_json(os.path.join(MODEL, "model_index.json"))
    assert index["vae_encoder"] == ["diffusers", "AutoencoderKL"]
    assert read_json(os.path.join(MODEL, "vae_encoder", "config.json")) == read_json(os.path.join(MODEL, "vae_decoder", "config.json"))
    fx = read_json(os.path.join(ROOT, "src", "engine", "__fixtures__", "webdit-tiny.json"))
    assert list(fx) == ["model", "generated_by", "model_files", "max_length", "tokens", "text", "sigmas", "noise",
                        "transformer", "vae", "vae_encoder", "runs", "img2img"]
    assert [r["strength"] for r in fx["img2img"]] == [0.6, 0.35]
