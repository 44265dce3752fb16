"""Rebuild PyTorch weights from a model folder's ONNX graphs (webdit/from_onnx.py), check every
module against its graph in onnxruntime (max abs diff < 1e-4 on random inputs, batch 3), and save
them as one checkpoint; optionally seed a run folder so the recipe's stages warm-start from it.

    /usr/bin/python3 training/from_onnx.py public/models/webdit-tiny --out training/runs/webdit-tiny-recovered.pt
    /usr/bin/python3 training/from_onnx.py public/models/webdit-tiny --out training/runs/webdit-tiny-recovered.pt \\
        --seed-run training/runs/cpu-warm --train transformer      # then: train.py --preset cpu --run training/runs/cpu-warm
"""
import argparse
import json
import os

import torch

from webdit.from_onnx import checkpoint, recover, seed_run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a format-2 model folder (docs/model-folder.md)")
    ap.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    ap.add_argument("--preset", default="cpu", help="preset for what the configs do not record (default cpu)")
    ap.add_argument("--encoder", default=None, help="a VAE encoder state dict file (distill_encoder.py's encoder_final.pt) "
                                                    "for a folder without a vae_encoder graph")
    ap.add_argument("--seed-run", default=None, help="write the stage checkpoints of this run folder from the recovered weights")
    ap.add_argument("--train", default="transformer",
                    help="with --seed-run: components that keep training from step 0 (comma list of vae, text_encoder, "
                         "transformer); the others are marked finished (frozen). Default: transformer")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    modules, info = recover(a.folder, a.preset)
    ck = checkpoint(modules, info, a.folder)
    if a.encoder:
        if "vae_encoder" in ck["state_dicts"]:
            raise SystemExit("the folder has a vae_encoder graph: --encoder would replace it")
        ck["state_dicts"]["vae_encoder"] = torch.load(a.encoder)["vae_encoder"]
        ck["vae_encoder_from"] = os.path.abspath(a.encoder)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save(ck, a.out)
    print(json.dumps({"out": a.out, "components": sorted(ck["state_dicts"]), "mapping": info["mapping"],
                      "max_abs_diff": info["max_abs_diff"]}, indent=1))
    if a.seed_run:
        train = tuple(t for t in a.train.split(",") if t)
        print(json.dumps(seed_run(ck, a.folder, a.seed_run, a.preset, train)))


if __name__ == "__main__":
    main()
