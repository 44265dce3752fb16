"""Train a VAE encoder for a model folder that has only a vae_decoder graph: the decoder is rebuilt
from its graph (webdit/from_onnx.py) and kept frozen; the encoder learns to invert it
(webdit/distill.py). Then, with --export, the encoder goes into the folder as vae_encoder/
(config.json = vae_decoder/config.json, model.onnx: sample -> latent_sample, the posterior mean),
model_index.json names it and the manifest is rewritten (the other files' hashes do not change).

    /usr/bin/python3 training/distill_encoder.py public/models/webdit-tiny --run training/runs/webdit-tiny-encoder \\
        --data-cache training/data/cache --minutes 20 --threads 1 --export
"""
import argparse
import json
import os
import shutil

import torch

from webdit import data as D
from webdit.distill import distill_encoder
from webdit.from_onnx import Graph, configs, example_inputs, load_from_graph, new_module, check_against_graph


def recover_decoder(folder, preset):
    vae, dit, text, extra = configs(folder, preset)
    dec = new_module("vae_decoder", vae, dit, text)
    path = os.path.join(folder, "vae_decoder", "model.onnx")
    args = example_inputs("vae_decoder", vae, dit, text, None)
    load_from_graph(dec, Graph(path), args)
    diff = check_against_graph(dec, path, "vae_decoder", args)
    assert diff < 1e-4, diff
    return dec, vae, extra, diff


def export_encoder(folder, encoder, vae_cfg):
    """vae_encoder/{config.json, model.onnx} into the folder, model_index.json and manifest.json updated."""
    from webdit.export import export_graph, model_index, read_json, write_json, write_manifest
    from webdit.models import PosteriorMean
    before = read_json(os.path.join(folder, "manifest.json"))["files"]
    x = example_inputs("vae_encoder", vae_cfg, None, None, None, batch=2)
    diff = export_graph(PosteriorMean(encoder).eval(), x, os.path.join(folder, "vae_encoder", "model.onnx"),
                        ["sample"], ["latent_sample"])
    shutil.copyfile(os.path.join(folder, "vae_decoder", "config.json"), os.path.join(folder, "vae_encoder", "config.json"))
    index = read_json(os.path.join(folder, "model_index.json"))
    if index != model_index(has_vae_encoder=False) and index != model_index(has_vae_encoder=True):
        raise ValueError("model_index.json is not the one export.py writes: refusing to rewrite it")
    write_json(os.path.join(folder, "model_index.json"), model_index(has_vae_encoder=True))
    after = write_manifest(folder)["files"]
    changed = sorted(k for k in before if before[k] != after.get(k))
    if changed != ["model_index.json"]:
        raise RuntimeError(f"files other than model_index.json changed: {changed}")
    return diff, {k: v for k, v in after.items() if k not in before or k == "model_index.json"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="model folder with vae_decoder/ (written into with --export)")
    ap.add_argument("--run", required=True, help="folder for the data cache, checkpoints, log and report")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--data-cache", default=None, help="emoji image folder; default $WEBDIT_DATA_CACHE or training/data/cache")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget (fixes the step count on the first call)")
    ap.add_argument("--steps", type=int, default=None, help="step count instead of the time budget")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export", action="store_true", help="write vae_encoder/ into the folder and update the manifest")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dec, vae_cfg, extra, diff = recover_decoder(a.folder, a.preset)
    print(json.dumps({"decoder_vs_graph_max_abs_diff": diff}))
    enc, report = distill_encoder(a.run, dec, vae_cfg, extra["shift_factor"], extra["scaling_factor"],
                                  a.data_cache or D.default_cache(), a.minutes, a.batch, a.lr, steps=a.steps)
    torch.save({"vae_encoder": enc.state_dict(), "report": report}, os.path.join(a.run, "encoder_final.pt"))
    if a.export:
        diff, files = export_encoder(a.folder, enc, vae_cfg)
        print(json.dumps({"vae_encoder_onnx_vs_torch_max_abs_diff": diff, "files": files}, indent=1))


if __name__ == "__main__":
    main()
