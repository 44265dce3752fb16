"""The Python steps of training/gpu/run.sh (before and after torchrun); see training/gpu/README.md.

    steps.py prepare --run R --cache C [--emoji-pack P] [--warm shipped|<model folder>|<weights folder or .pt>]
                     [--train transformer] [--preset cuda-tiny]
    steps.py finish  --run R --out OUT [--preset cuda-tiny] [--started EPOCH]
"""
import argparse
import json
import os
import re
import sys
import time

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TRAINING)
sys.path.insert(0, TRAINING)

import torch  # noqa: E402

from webdit import emoji_pack, weights  # noqa: E402
from webdit.config import PRESETS  # noqa: E402

SHIPPED = os.path.join(ROOT, "public", "models", "webdit-tiny")


def prepare(a):
    t0 = time.time()
    info = {}
    if a.emoji_pack and os.path.exists(a.emoji_pack):
        if not os.path.exists(os.path.join(a.cache, "emoji.u8")):
            emoji_pack.unpack(a.emoji_pack, a.cache)
        info["emoji"] = f"{a.emoji_pack} -> {a.cache} ({os.path.getsize(os.path.join(a.cache, 'emoji.u8')) // 12288} images)"
    elif not os.path.exists(os.path.join(a.cache, "emoji.json")):
        emoji_pack.empty_cache(a.cache)
        info["emoji"] = f"NO EMOJI: {a.emoji_pack} is missing (carry training/gpu/pack): shapes only"
    os.makedirs(a.run, exist_ok=True)
    done = [n for n in ("vae", "clip", "dit") if os.path.exists(os.path.join(a.run, f"{n}.pt"))]
    if a.warm and done:
        info["warm"] = f"run folder already has {done}: resuming it, --warm ignored"
    elif a.warm:
        src = SHIPPED if a.warm == "shipped" else a.warm
        train = tuple(t for t in a.train.split(",") if t)
        if os.path.exists(os.path.join(src, "model_index.json")):  # a model folder: its graphs (from_onnx)
            from webdit.from_onnx import checkpoint, recover, seed_run
            mods, rec = recover(src, a.preset, check=False)  # no node here: from_onnx's test checks it in CI
            info["warm"] = seed_run(checkpoint(mods, rec, src), src, a.run, a.preset, train)
            info["warm"]["from"] = src
        else:  # weights.json + parts (what an earlier run.sh sent back) or a joined weights.pt
            frozen = SHIPPED if os.path.exists(os.path.join(SHIPPED, "model_index.json")) else None
            info["warm"] = weights.restore(src, a.run, mode="warm", train=train, frozen_from=frozen, preset=a.preset)
    info["prepare_seconds"] = round(time.time() - t0, 1)
    print(json.dumps(info), flush=True)


def parse_log(path):
    """samples/s and losses per stage from the run's log.txt."""
    out = {}
    pat = re.compile(r"\] (\w+): step (\d+)/(\d+) loss ([\d.]+) ([\d.]+) samples/s")
    for line in open(path):
        m = pat.search(line)
        if m:
            s = out.setdefault(m[1], {"points": []})
            s["points"].append([int(m[2]), float(m[4]), float(m[5])])
        elif "time budget reached" in line or "schedule fitted" in line or "ranks x batch" in line:
            out.setdefault(line.split("] ")[1].split(":")[0], {"points": []}).setdefault("notes", []).append(line.strip())
    for s in out.values():
        if s["points"]:
            s["last"] = {"step": s["points"][-1][0], "loss": s["points"][-1][1], "samples_per_s": s["points"][-1][2]}
        s["points"] = s["points"][-40:]
    return out


@torch.no_grad()
def samples(run, preset, path, cache):
    """A grid from the EMA DiT (shape and emoji prompts), 20 steps, CFG 4, on this machine's CPU."""
    import numpy as np
    from webdit.evaluate import grid_png
    from webdit.pipeline import Models, generate
    from webdit.stages import text_config
    from webdit.tokenizer import WordPieceTokenizer
    from webdit.models import CLIP, DiT, VAE
    from webdit.stages import dit_config
    P = PRESETS[preset]
    tok = WordPieceTokenizer.load(os.path.join(run, "tokenizer"))
    vae, clip, dit = VAE(P.vae), CLIP(text_config(P, tok), P.vae.sample_size), DiT(dit_config(P))
    vae.load_state_dict(torch.load(os.path.join(run, "vae.pt"), map_location="cpu")["model"])
    clip.load_state_dict(torch.load(os.path.join(run, "clip.pt"), map_location="cpu")["model"])
    dit.load_state_dict(torch.load(os.path.join(run, "dit.pt"), map_location="cpu")["ema"])
    lat = torch.load(os.path.join(run, "latents.pt"))
    m = Models(transformer=dit.eval(), vae=vae.eval(), text_encoder=clip.text.eval(), tokenizer=tok, scheduler=P.scheduler,
               scaling_factor=float(lat["scaling_factor"]), shift_factor=float(lat["shift_factor"]))
    prompts = ["a large red circle in the center on a white background", "a large blue square in the center on a white background",
               "a large green triangle on the left on a light yellow background", "a small yellow star at the top right on a dark blue background",
               "a large pink heart in the center on a white background", "a medium orange ring at the bottom on a light blue background",
               "a large purple square in the center on a black background", "a large cyan circle on the right on a light gray background"]
    meta = json.load(open(os.path.join(cache, "emoji.json")))["items"]
    rng = np.random.RandomState(0)
    for i in rng.choice(len(meta), min(8, len(meta)), replace=False):
        prompts.append(f"{meta[i]['label']}, {meta[i]['style']} style")
    _, imgs = generate(m, prompts, "", 42, 20, 4.0)
    grid_png(list(zip(prompts, imgs)), path)


def finish(a):
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    summary = {"run": a.run, "preset": a.preset, "stages": parse_log(os.path.join(a.run, "log.txt"))}
    if all(os.path.exists(os.path.join(a.run, f"{n}.pt")) for n in ("vae", "clip", "dit")):
        summary["weights"] = weights.pack(a.run, a.out, a.preset, note=a.note)
        try:
            samples(a.run, a.preset, os.path.join(a.out, "samples.png"), a.cache)
        except Exception as e:  # noqa: BLE001 - the weights matter more than the picture
            summary["samples_error"] = repr(e)
    else:
        summary["weights"] = "no finished stage checkpoints: nothing to pack"
    summary["finish_seconds"] = round(time.time() - t0, 1)
    if a.started:
        summary["script_seconds"] = round(time.time() - a.started, 1)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "stages"}), flush=True)
    for name, s in summary["stages"].items():
        if "last" in s:
            print(f"{name}: {s['last']}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--run", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--emoji-pack", default=None)
    p.add_argument("--warm", default=None)
    p.add_argument("--train", default="transformer")
    p.add_argument("--preset", default="cuda-tiny", choices=PRESETS)
    f = sub.add_parser("finish")
    f.add_argument("--run", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--cache", required=True)
    f.add_argument("--preset", default="cuda-tiny", choices=PRESETS)
    f.add_argument("--started", type=float, default=None)
    f.add_argument("--note", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    (prepare if a.cmd == "prepare" else finish)(a)


if __name__ == "__main__":
    main()
