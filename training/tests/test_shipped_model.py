"""The embedded model public/models/webdit-tiny (format 2, no PyTorch weights in the repository):
its manifest matches its files, and the golden fixtures name the graphs they were computed with."""
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
                                 ("transformer/model.onnx", "vae_decoder/model.onnx", "text_encoder/model.onnx")}
