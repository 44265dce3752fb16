"""The toy run (the whole recipe at toy size), built once per session and shared by test_smoke.py
and test_from_onnx.py: the model folder at <dir>/model, the fixtures at <dir>/fixtures.json, in
$WEBDIT_TOY_DIR (default: a pytest tmp dir)."""
import os
import shutil

import pytest

import train
from webdit import data as D
from webdit.config import PRESETS
from webdit.stages import load_all, pipeline_models

P = PRESETS["toy"]


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    base = os.environ.get("WEBDIT_TOY_DIR") or str(tmp_path_factory.mktemp("toy"))
    for name in ("data", "run", "model"):  # a fresh run every time; only what this test writes
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    D.build_emoji_cache(os.path.join(base, "data"), limit=90)
    train.main(["--preset", "toy", "--run", os.path.join(base, "run"), "--out", os.path.join(base, "model"),
                "--fixtures", os.path.join(base, "fixtures.json"), "--data-cache", os.path.join(base, "data"),
                "--threads", "2"])
    return base, os.path.join(base, "model")


@pytest.fixture(scope="session")
def models(toy):
    base, _ = toy
    return pipeline_models(load_all(os.path.join(base, "run"), P), P)
