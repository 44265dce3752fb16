"""Why 8 latent channels: the preset's VAE stage (stages.train_vae: same loss, batches, clipping and
learning rate as the shipped recipe) run for the same short budget with C = 4, 8 and 16; held-out
reconstruction PSNR printed as JSON. (f = 4 is fixed by the DiT's token budget: 64x64 -> 16x16
latents -> 64 tokens at patch 2.)

    /usr/bin/python3 training/vae_ablation.py --steps 200 --out public/models/webdit-tiny/vae_ablation.json
"""
import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np
import torch

from webdit import data as D
from webdit.config import PRESETS
from webdit.evaluate import vae_psnr
from webdit.stages import train_vae

TRAINING = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS, help="whose VAE and learning rate")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", default="4,8,16")
    ap.add_argument("--n-shapes", type=int, default=4000)
    ap.add_argument("--run", default=os.path.join(TRAINING, "runs", "vae_ablation"), help="checkpoints (resumable)")
    ap.add_argument("--out", default=None, help="also write the JSON here (the model card reads <model>/vae_ablation.json)")
    a = ap.parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    P = PRESETS[a.preset]
    os.makedirs(a.run, exist_ok=True)
    imgs, _, _, val = D.build(a.n_shapes)
    train_idx, val_idx = np.where(~val)[0], np.where(val)[0][:400]
    res = {"steps": a.steps, "batch": a.batch, "val_images": len(val_idx), "psnr_db": {}, "seconds": {}}
    for C in [int(c) for c in a.channels.split(",")]:
        torch.manual_seed(0)
        t0 = time.time()
        vae = train_vae(a.run, f"vae_c{C}_{a.steps}x{a.batch}", replace(P.vae, latent_channels=C),
                        a.steps, a.batch, P.lr_vae, imgs, train_idx, "cpu")
        res["psnr_db"][C] = round(vae_psnr(vae, imgs[val_idx]), 2)
        res["seconds"][C] = round(time.time() - t0, 1)
        print(json.dumps({"channels": C, "psnr_db": res["psnr_db"][C]}), flush=True)
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
