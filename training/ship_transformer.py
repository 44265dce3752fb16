"""Ship a warm-started run's DiT into a model folder whose other components it kept frozen: the
run's EMA transformer is exported (checked against PyTorch), stored with the folder's compression
variant, and the run's latent factors (its latents stage measured them with the same frozen VAE
encoder) go into both VAE configs; manifest hashes are redone. Then recover the folder's weights,
measure quality and regenerate the fixtures from PyTorch (README of training/ shows the sequence).

    /usr/bin/python3 training/ship_transformer.py --run training/runs/cpu-v2 \\
        --checkpoint training/runs/webdit-tiny-recovered.pt --folder public/models/webdit-tiny

--decoder FILE also ships a decoder fine-tuned on the same latents (finetune_decoder.py's
decoder_final.pt) as vae_decoder/model.onnx, stored the same way; without it the decoder graph is
left as it is.
"""
import argparse
import json
import os

import torch

from webdit.compress import VARIANTS, compress_file
from webdit.export import GRAPH_NAMES, export_graph, graph_inputs, read_json, write_json, write_manifest
from webdit.from_onnx import pipeline_models_from_checkpoint

SHIPPED_VARIANT = "fp16 + int8 text encoder"  # training/compress.py's choice for webdit-tiny (its model card)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run folder with dit.pt (EMA) and latents.pt")
    ap.add_argument("--checkpoint", required=True, help="from_onnx.py's checkpoint of the folder (the frozen parts)")
    ap.add_argument("--folder", required=True)
    ap.add_argument("--variant", default=SHIPPED_VARIANT, choices=VARIANTS)
    ap.add_argument("--decoder", default=None, help="finetune_decoder.py's decoder_final.pt: ship this decoder too")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = pipeline_models_from_checkpoint(torch.load(a.checkpoint, map_location="cpu"), a.folder)
    st = torch.load(os.path.join(a.run, "dit.pt"), map_location="cpu")
    models.transformer.load_state_dict(st["ema"])
    lat = torch.load(os.path.join(a.run, "latents.pt"), map_location="cpu")
    path = os.path.join(a.folder, "transformer", "model.onnx")
    inputs = graph_inputs(models, torch.Generator().manual_seed(0))  # the export's example inputs, every graph
    args = inputs["transformer"]
    names_in, names_out = GRAPH_NAMES["transformer"]
    with torch.no_grad():
        diff = export_graph(models.transformer.eval(), args, path, names_in, names_out)
    before, after, _ = compress_file(path, path, VARIANTS[a.variant]["transformer"])
    shipped = {"transformer": path, "step": int(st["step"]), "onnx_vs_torch_max_abs": diff,
               "bytes_fp32": before, "bytes_stored": after}
    if a.decoder:
        models.vae.decoder.load_state_dict(torch.load(a.decoder, map_location="cpu")["vae_decoder"])
        dpath = os.path.join(a.folder, "vae_decoder", "model.onnx")
        with torch.no_grad():
            ddiff = export_graph(models.vae.decoder.eval(), inputs["vae_decoder"], dpath, *GRAPH_NAMES["vae_decoder"])
        dbefore, dafter, _ = compress_file(dpath, dpath, VARIANTS[a.variant]["vae_decoder"])
        shipped["vae_decoder"] = {"path": dpath, "onnx_vs_torch_max_abs": ddiff, "bytes_fp32": dbefore,
                                  "bytes_stored": dafter}
    for comp in ("vae_decoder", "vae_encoder"):
        cfg_path = os.path.join(a.folder, comp, "config.json")
        cfg = read_json(cfg_path)
        cfg["scaling_factor"], cfg["shift_factor"] = float(lat["scaling_factor"]), float(lat["shift_factor"])
        write_json(cfg_path, cfg)
    write_manifest(a.folder)
    print(json.dumps({**shipped, "scaling_factor": float(lat["scaling_factor"]), "shift_factor": float(lat["shift_factor"])}))


if __name__ == "__main__":
    main()
