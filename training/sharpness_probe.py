"""Sharpness of generated emoji (webdit/quality.py's Laplacian-variance ratio, and emoji top-5 per
style) with one DiT and several VAE decoders: how the decoder alone moves the samples' sharpness.
30 prompts per style at 20 steps, CFG 5 (the quality table uses 100 per style).

    /usr/bin/python3 training/sharpness_probe.py --checkpoint training/runs/webdit-tiny-recovered.pt \\
        --folder public/models/webdit-tiny training/runs/decoder-lap/decoder_final.pt ...
"""
import argparse
import json
import random

import numpy as np
import torch

from webdit import data as D
from webdit.evaluate import generate_many
from webdit.from_onnx import pipeline_models_from_checkpoint
from webdit.quality import STYLES, laplacian_variance, top5_hits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--folder", required=True)
    ap.add_argument("--n", type=int, default=30, help="prompts per style")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--setting", action="append", default=[], metavar="STEPS,CFG,SHIFT",
                    help="also measure the checkpoint's decoder at these sampling settings (repeatable)")
    ap.add_argument("decoders", nargs="*", help="finetune_decoder.py's decoder_final.pt files (the checkpoint's decoder first)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    m = pipeline_models_from_checkpoint(torch.load(a.checkpoint, map_location="cpu"), a.folder)
    start = {k: v.clone() for k, v in m.vae.decoder.state_dict().items()}
    imgs, _, meta = D.load_emoji(D.default_cache())
    runs = [("checkpoint", (20, 5.0, None))] + [("checkpoint", tuple(float(v) for v in s.split(","))) for s in a.setting]
    runs += [(d, (20, 5.0, None)) for d in a.decoders]
    base = m
    for dec, (steps, cfg, shift) in runs:
        m = base if shift is None else base.with_shift(shift)
        m.vae.decoder.load_state_dict(start if dec == "checkpoint" else torch.load(dec, map_location="cpu")["vae_decoder"])
        gens, refs_of, hits = [], [], {}
        for s, style in enumerate(STYLES):
            ids = [i for i, x in enumerate(meta) if x["style"] == style]
            pick = random.Random(11 + s).sample(ids, a.n)
            g = generate_many(m, [f"{meta[i]['label']}, {style} style" for i in pick], int(steps), cfg, seed0=10000 * s + 77)
            keys = np.array([meta[i]["hex"] for i in ids])
            hits[style] = round(top5_hits(g, imgs[ids], keys, [meta[i]["hex"] for i in pick]), 3)
            gens.append(g); refs_of += pick
        g = np.concatenate(gens)
        sharp = laplacian_variance(g).mean() / laplacian_variance(imgs[refs_of]).mean()
        print(json.dumps({"decoder": dec, "steps": int(steps), "guidance": cfg, "shift": m.scheduler.shift, "n": len(g), "sharpness": round(float(sharp), 3), "emoji_top5": hits}), flush=True)


if __name__ == "__main__":
    main()
