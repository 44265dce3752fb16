"""training/gpu/run.sh end to end, as a dry run on the CPU (WEBDIT_GPU_DRYRUN=1: toy preset, gloo,
torchrun with 2 processes, a 1-minute budget), with a tiny emoji pack made here: what it leaves in
$OUT is what the lent GPU machine may send back (at most 8 files of at most 16 MiB, 64 MiB in all),
and restore.py turns it into a run folder whose models are the trained ones (bf16-rounded)."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from webdit import emoji_pack
from webdit.config import PRESETS
from webdit.stages import load_all

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TRAINING)


def tiny_pack(d, n=40):
    cache = os.path.join(d, "src")
    os.makedirs(cache)
    rng = np.random.RandomState(0)
    imgs = np.full((n, 64, 64, 3), 255, np.uint8)
    for k in range(n):
        y, x = rng.randint(8, 40, 2)
        imgs[k, y:y + 20, x:x + 20] = rng.randint(0, 255, 3)
    imgs.tofile(os.path.join(cache, "emoji.u8"))
    items = [{"emoji": "*", "label": f"thing {k}", "style": ["noto", "twemoji", "fluent"][k % 3], "tags": ["tag"]}
             for k in range(n)]
    with open(os.path.join(cache, "emoji.json"), "w") as f:
        json.dump({"items": items}, f)
    out = os.path.join(d, "emoji.tar.xz")
    emoji_pack.pack(cache, out)
    return out, imgs


@pytest.fixture(scope="module")
def oneshot(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("oneshot"))
    pack, imgs = tiny_pack(d)
    out, work = os.path.join(d, "out"), os.path.join(d, "work")
    env = {**os.environ, "WEBDIT_GPU_DRYRUN": "1", "OUT": out, "WORK": work, "EMOJI_PACK": pack,
           "BUDGET_MIN": "1", "RESERVE_S": "40", "PYTHON": "/usr/bin/python3"}
    p = subprocess.run(["bash", os.path.join(TRAINING, "gpu", "run.sh")], env=env, capture_output=True, text=True,
                       timeout=400)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    return d, out, work, imgs, p.stdout


def test_the_emoji_pack_unpacks_exactly(oneshot):
    _, _, work, imgs, _ = oneshot
    got = np.fromfile(os.path.join(work, "emoji", "emoji.u8"), np.uint8).reshape(-1, 64, 64, 3)
    assert np.array_equal(got, imgs)


def test_out_holds_what_may_come_back(oneshot):
    _, out, _, _, stdout = oneshot
    files = sorted(os.listdir(out))
    assert {"run.log", "summary.json", "weights.json", "weights.pt.part00", "samples.png"} <= set(files), files
    assert len(files) <= 8
    sizes = [os.path.getsize(os.path.join(out, f)) for f in files]
    assert max(sizes) <= 16 << 20 and sum(sizes) <= 64 << 20
    summary = json.load(open(os.path.join(out, "summary.json")))
    dit = summary["stages"]["dit"]
    assert dit["last"]["samples_per_s"] > 0 and dit["last"]["step"] > 0
    notes = " ".join(dit.get("notes", []))
    assert "2 ranks x batch" in notes
    assert "schedule fitted" in notes or "time budget reached" in notes  # the budget, not 1e6 steps, ended it
    assert summary["script_seconds"] < 60 + 30  # BUDGET_MIN=1, with slack for a loaded machine
    assert "torchrun: 2 process(es)" in open(os.path.join(out, "run.log")).read()


def test_restore_gives_the_trained_models(oneshot, tmp_path):
    d, out, work, _, _ = oneshot
    run = str(tmp_path / "restored")
    p = subprocess.run(["/usr/bin/python3", os.path.join(TRAINING, "gpu", "restore.py"), out, "--run", run,
                        "--preset", "toy"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    trained = load_all(run, PRESETS["toy"], cache=os.path.join(work, "emoji"))
    device_ema = torch.load(os.path.join(work, "run", "dit.pt"))["ema"]
    for k, v in trained["dit"].state_dict().items():
        assert torch.equal(v, device_ema[k].to(torch.bfloat16).float()), k  # exactly the bf16 rounding
    st = torch.load(os.path.join(run, "dit.pt"))
    assert st["done"] and st["step"] == json.load(open(os.path.join(out, "weights.json")))["stages"]["dit"]["step"]
