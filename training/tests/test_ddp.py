"""DDP (webdit/dist.py) at toy size on the CPU: torchrun with 2 processes and gloo, as the GPU
one-shot (training/gpu/run.sh) launches it on every GPU of a machine.

One toy run folder is built up to the text cache (shapes only: an empty emoji cache, no node), then
  - torchrun --standalone --nproc_per_node=2 train.py --minutes 0 runs the DiT stage for exactly one
    step (a spent budget still does one) and stops on its time budget: both ranks ran, they drew
    different batches, rank 0 alone wrote the checkpoint and the log, and the exit is clean;
  - one process with --virtual-ranks 2 steps once on the concatenation of the same two batches: its
    parameters (and EMA) equal the DDP ones to 1e-5, so DDP averages the gradients of the global batch;
  - one process with a 5 s budget and a step count far beyond it fits its schedule to the budget and
    stops in time with a checkpoint that a later run resumes.
Debian's torch 1.13 on Python 3.11 needs training/gpu/torchrun.py for torchrun to start at all.
"""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

import train
from webdit import dist, emoji_pack
from webdit.config import PRESETS
from webdit.stages import stage_clip, stage_data, stage_latents, stage_textcache, stage_tokenizer, stage_vae

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
P = PRESETS["toy"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ddp"))
    cache, run = os.path.join(d, "emoji"), os.path.join(d, "base")
    emoji_pack.empty_cache(cache)
    os.makedirs(run)
    torch.manual_seed(0)
    ds = stage_data(run, P, cache)
    vae = stage_vae(run, P, ds, "cpu")
    lat = stage_latents(run, P, ds, vae, "cpu")
    tok = stage_tokenizer(run, P, ds)
    clip = stage_clip(run, P, ds, tok, "cpu")
    stage_textcache(run, P, ds, clip, tok, "cpu")
    return d, cache, run


def fresh_run(base, name):
    d, _, run = base
    out = os.path.join(d, name)
    shutil.copytree(run, out)
    os.remove(os.path.join(out, "log.txt"))
    return out


def log_lines(run, stage="dit"):
    return [line.strip() for line in open(os.path.join(run, "log.txt")) if f"] {stage}:" in line]


@pytest.fixture(scope="module")
def ddp(base):
    d, cache, _ = base
    run = fresh_run(base, "ddp")
    cmd = [sys.executable, os.path.join(TRAINING, "gpu", "torchrun.py"), "--standalone", "--nproc_per_node=2",
           os.path.join(TRAINING, "train.py"), "--preset", "toy", "--run", run, "--until", "train", "--minutes", "0",
           "--data-cache", cache, "--threads", "1"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=d)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return run, p.stdout + p.stderr


def test_both_ranks_ran_on_different_batches_and_rank0_wrote(ddp):
    run, out = ddp
    lines = log_lines(run)
    ranks = [line for line in lines if "ranks x batch" in line]
    assert len(ranks) == 1, lines  # rank 0 alone writes the log: one line, not one per rank
    m = re.search(r"2 ranks x batch (\d+), first batch per rank \['(\w+)', '(\w+)'\]", ranks[0])
    assert m, ranks[0]
    assert int(m[1]) == P.dit_batch  # per-rank batch: the preset's; global batch 2 x
    assert m[2] != m[3]  # rank 1's digest came back from rank 1 (it ran) and its batch differs
    assert out.count("ranks x batch") == 1  # nothing printed by rank 1 either
    st = torch.load(os.path.join(run, "dit.pt"))
    assert st["step"] == 1 and not st["done"]  # the spent budget: one step, then a clean stop with a checkpoint
    assert any("time budget reached at step 1/" in line for line in lines), lines
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]


def test_ddp_step_equals_one_process_on_the_concatenated_batch(base, ddp):
    run_ddp, _ = ddp
    _, cache, _ = base
    run = fresh_run(base, "single")
    train.main(["--preset", "toy", "--run", run, "--until", "train", "--minutes", "0", "--data-cache", cache,
                "--threads", "1", "--virtual-ranks", "2"])
    assert dist.virtual_ranks == 1  # reset for whatever runs next in this process
    # the same two batches (digests per rank) ...
    digests = lambda r: re.search(r"first batch per rank (\[[^]]*\])", " ".join(log_lines(r)))[1]  # noqa: E731
    assert digests(run) == digests(run_ddp)
    # ... and the same parameters after the step
    a, b = torch.load(os.path.join(run_ddp, "dit.pt")), torch.load(os.path.join(run, "dit.pt"))
    assert a["step"] == b["step"] == 1
    moved = 0
    for part in ("model", "ema"):
        for k, v in a[part].items():
            assert torch.allclose(v, b[part][k], rtol=0, atol=1e-5), (part, k, (v - b[part][k]).abs().max())
        moved += sum(int(not torch.equal(v, b[part][k])) for k, v in a[part].items())
    base_st = torch.load(os.path.join(run, "dit.pt"))  # and the step did move them (vs a fresh DiT)
    from webdit.models import DiT
    from webdit.stages import dit_config
    torch.manual_seed(0)
    assert any(not torch.equal(v, base_st["model"][k]) for k, v in DiT(dit_config(P)).state_dict().items())


def test_time_budget_fits_the_schedule_and_stops_in_time(base):
    _, cache, _ = base
    run = fresh_run(base, "budget")
    budget = 5.0
    t0 = time.time()
    train.main(["--preset", "toy", "--run", run, "--until", "train", "--minutes", str(budget / 60), "--data-cache", cache,
                "--threads", "1", "--set", "dit_steps=1000000"])
    took = time.time() - t0
    assert took < budget + 4, took
    st = torch.load(os.path.join(run, "dit.pt"))
    lines = log_lines(run)
    fitted = [line for line in lines if "schedule fitted to" in line]
    assert fitted, lines
    total = int(re.search(r"fitted to (\d+) steps \(preset 1000000\)", fitted[0])[1])
    assert st["total"] == total < 1000000
    assert st["step"] > 25 and (st["done"] == (st["step"] == total))
    # resuming continues the fitted schedule (not the preset's), then finishes it
    train.main(["--preset", "toy", "--run", run, "--until", "train", "--data-cache", cache, "--threads", "1",
                "--set", "dit_steps=1000000"] + ([] if st["done"] else ["--minutes", "0"]))
    st2 = torch.load(os.path.join(run, "dit.pt"))
    assert st2["total"] == total and st2["step"] >= st["step"]


def test_the_cuda_prefetch_thread_yields_the_same_batches(monkeypatch):
    """stages._batches draws ahead in a thread on CUDA; same streams, same order (run here with the
    CUDA device calls stubbed: the thread and queue logic is what is checked)."""
    from webdit import stages
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: None)
    fn = lambda rng: {"x": torch.from_numpy(rng.randn(4, 3))}  # noqa: E731
    streams = lambda: [dist.rank_rng(7, k) for k in range(2)]  # noqa: E731
    plain, threaded = stages._batches(fn, streams(), "cpu"), stages._batches(fn, streams(), "cuda")
    for _ in range(20):
        (a, pa), (b, pb) = next(plain), next(threaded)
        assert torch.equal(a["x"], b["x"]) and a["x"].shape == (8, 3)
        assert [dist.digest(p) for p in pa] == [dist.digest(p) for p in pb]
    threaded.close()
    with pytest.raises(ZeroDivisionError):  # an error in the thread reaches the training loop
        next(stages._batches(lambda rng: 1 / 0, streams(), "cuda"))
