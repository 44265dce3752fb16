"""Convert a model folder from format 1 (flat manifest, transformer.onnx, vae_decoder.onnx,
text_encoder/{config.json, tokenizer*.json, onnx/text_model.onnx}) to format 2
(docs/model-folder.md) in place, for a model whose PyTorch weights are gone and so cannot be
re-exported. The graphs are moved byte for byte (renamed, as `git mv`); the configs and the
manifest are written by the same functions as webdit/export.py, from the v1 manifest's fields.
A v1 folder has no VAE encoder, so the result has none (no image-to-image). The model card and
extras (README.md, samples.png, evaluation.json, vae_ablation.json) stay; README.md's file paths
are updated.

    /usr/bin/python3 training/relayout_v1.py public/models/webdit-tiny --preset cpu \\
        --fixtures src/engine/__fixtures__/webdit-tiny.json
"""
import argparse
import os
from dataclasses import replace

from webdit.config import PRESETS, DiTConfig, SchedulerConfig
from webdit.export import (model_index, read_json, scheduler_config, sha256, transformer_config, vae_config,
                           write_json, write_manifest)
from webdit.fixtures import add_model_files

CARD_PATHS = {  # how the model card names each file, v1 -> v2
    "`transformer.onnx`": "`transformer/model.onnx`",
    "`vae_decoder.onnx`": "`vae_decoder/model.onnx`",
    "`text_encoder/onnx/text_model.onnx`": "`text_encoder/model.onnx`",
}


def moves(v1):
    """v1 path -> v2 path for every file the v1 manifest lists."""
    te = v1["graphs"]["text_encoder"]
    table = {v1["graphs"]["transformer"]: "transformer/model.onnx",
             v1["graphs"]["vae_decoder"]: "vae_decoder/model.onnx",
             f"{te}/onnx/text_model.onnx": "text_encoder/model.onnx",
             f"{te}/config.json": "text_encoder/config.json",
             f"{te}/tokenizer.json": "tokenizer/tokenizer.json",
             f"{te}/tokenizer_config.json": "tokenizer/tokenizer_config.json"}
    missing = set(v1["files"]) - set(table)
    if missing:
        raise ValueError(f"the v1 manifest lists files this converter does not know: {sorted(missing)}")
    return table


def relayout(folder, vae_block_out_channels):
    """Returns the new manifest. vae_block_out_channels: the VAE's, which v1 did not record."""
    v1 = read_json(os.path.join(folder, "manifest.json"))
    if v1.get("version") != 1:
        raise ValueError(f"{folder}/manifest.json is version {v1.get('version')}, not 1: nothing to convert")
    table = moves(v1)
    # 1. check every file against the v1 manifest before touching anything
    for rel, f in v1["files"].items():
        if sha256(os.path.join(folder, rel)) != f["sha256"]:
            raise ValueError(f"{folder}/{rel} does not match its sha256 in manifest.json: restore it first")
    # 2. the VAE's block_out_channels must give the v1 folder's scale factor and latent size
    vae = replace(PRESETS["cpu"].vae, latent_channels=v1["latent_channels"], sample_size=v1["image_size"],
                  block_out_channels=tuple(vae_block_out_channels))
    if vae.vae_scale_factor != v1["vae_scale_factor"] or vae.latent_size != v1["latent_size"]:
        raise ValueError(f"block_out_channels {vae.block_out_channels} give vae_scale_factor {vae.vae_scale_factor}, "
                         f"the folder says {v1['vae_scale_factor']}: pass the VAE's channels with --vae-channels")
    # 3. move the files, bytes unchanged
    for src, dst in table.items():
        if src != dst:
            os.makedirs(os.path.dirname(os.path.join(folder, dst)), exist_ok=True)
            os.rename(os.path.join(folder, src), os.path.join(folder, dst))
    onnx_dir = os.path.join(folder, v1["graphs"]["text_encoder"], "onnx")
    if os.path.isdir(onnx_dir) and not os.listdir(onnx_dir):
        os.rmdir(onnx_dir)
    # 4. configs from the v1 fields
    sched = SchedulerConfig(num_train_timesteps=v1["scheduler"]["num_train_timesteps"], shift=v1["scheduler"]["shift"])
    write_json(os.path.join(folder, "model_index.json"), model_index(has_vae_encoder=False))
    write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), scheduler_config(sched))
    write_json(os.path.join(folder, "transformer", "config.json"), transformer_config(DiTConfig(**v1["dit"]), v1["text_max_length"]))
    write_json(os.path.join(folder, "vae_decoder", "config.json"), vae_config(vae, v1["scaling_factor"], v1["shift_factor"]))
    # 5. the manifest, then proof that the bytes did not change
    d = v1["defaults"]
    manifest = write_manifest(folder, v1["id"], v1["name"], {"num_inference_steps": d["steps"],
                                                             "guidance_scale": d["guidance_scale"],
                                                             "negative_prompt": d["negative_prompt"]})
    for src, dst in table.items():
        if manifest["files"][dst] != v1["files"][src]:
            raise RuntimeError(f"{dst} changed while moving from {src}")
    # 6. the model card's file paths
    card = os.path.join(folder, "README.md")
    if os.path.exists(card):
        text = open(card, encoding="utf-8").read()
        for old, new in CARD_PATHS.items():
            text = text.replace(old, new)
        with open(card, "w", encoding="utf-8") as f:
            f.write(text)
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="a format-1 model folder, converted in place")
    ap.add_argument("--preset", default="cpu", choices=PRESETS, help="the preset that trained it (for the VAE's channels)")
    ap.add_argument("--vae-channels", default=None, help="the VAE's block_out_channels, e.g. 32,64,128 (default: the preset's)")
    ap.add_argument("--fixtures", default=None, help="golden fixtures of this model: add `model_files` (nothing else changes)")
    a = ap.parse_args(argv)
    channels = [int(c) for c in a.vae_channels.split(",")] if a.vae_channels else PRESETS[a.preset].vae.block_out_channels
    manifest = relayout(a.folder, channels)
    print(f"{a.folder}: format 2, {len(manifest['files'])} files")
    if a.fixtures:
        print(f"{a.fixtures}: model_files {add_model_files(a.fixtures, a.folder)}")


if __name__ == "__main__":
    main()
