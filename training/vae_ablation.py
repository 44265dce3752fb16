"""Why 8 latent channels: the same VAE trained for the same short budget with C = 4, 8 and 16,
held-out reconstruction PSNR printed as JSON. (f = 4 is fixed by the DiT's token budget:
64x64 -> 16x16 latents -> 64 tokens at patch 2, which keeps a step near 100 ms in WASM.)

    /usr/bin/python3 training/vae_ablation.py --steps 200 --out public/models/webdit-tiny/vae_ablation.json
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
import model as M  # noqa: E402
from train import autocast, lr_at  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", default="4,8,16")
    ap.add_argument("--n-shapes", type=int, default=4000)
    ap.add_argument("--out", default=None, help="also write the JSON here (the model card reads <model>/vae_ablation.json)")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    imgs, _, _, val = D.build(a.n_shapes)
    train_idx, val_idx = np.where(~val)[0], np.where(val)[0][:400]
    res = {"steps": a.steps, "batch": a.batch, "val_images": len(val_idx), "psnr_db": {}, "seconds": {}}
    for C in [int(c) for c in a.channels.split(",")]:
        torch.manual_seed(0)
        rng = np.random.RandomState(0)
        vae = M.VAE(M.VAEConfig(latent_channels=C))
        opt = torch.optim.AdamW(vae.parameters(), lr=4e-4, betas=(0.9, 0.99))
        t0 = time.time()
        for step in range(a.steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, a.steps, 4e-4)
            x = D.to_tensor_images(imgs[rng.choice(train_idx, a.batch)])
            with autocast("cpu"):
                rec, kl = vae(x)
            loss = F.mse_loss(rec.float(), x) + 0.2 * F.l1_loss(rec.float(), x) + 1e-6 * kl.float()
            opt.zero_grad(); loss.backward(); opt.step()
        vae.eval()
        res["psnr_db"][C] = round(E.vae_psnr(vae, imgs[val_idx]), 2)
        res["seconds"][C] = round(time.time() - t0, 1)
        print(json.dumps({"channels": C, "psnr_db": res["psnr_db"][C]}), flush=True)
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
