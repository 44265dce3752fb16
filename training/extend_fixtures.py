"""Add `vae_encoder` and `img2img` (and the encoder's hash in `model_files`) to a model's golden
fixtures, computed by PyTorch with the modules recovered from the model folder's graphs
(from_onnx.py's checkpoint); every field already there stays byte for byte (webdit/fixtures_extend.py).
Also prints how closely the recovered modules reproduce the fields that the original weights wrote.

    /usr/bin/python3 training/extend_fixtures.py public/models/webdit-tiny --checkpoint training/runs/webdit-tiny-recovered.pt \\
        --fixtures src/engine/__fixtures__/webdit-tiny.json
"""
import argparse
import json

import torch

from webdit.export import read_json
from webdit.fixtures_extend import extend_fixtures, reproduce
from webdit.from_onnx import pipeline_models_from_checkpoint


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="the model folder (with its vae_encoder graph)")
    ap.add_argument("--checkpoint", required=True, help="from_onnx.py's checkpoint of this folder")
    ap.add_argument("--fixtures", required=True, help="fixtures JSON to extend in place")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ck = torch.load(a.checkpoint)
    if "vae_encoder" not in ck["state_dicts"]:
        raise SystemExit("the checkpoint has no VAE encoder")
    models = pipeline_models_from_checkpoint(ck, a.folder)
    print(json.dumps({"recovered_vs_existing_fixtures": reproduce(models, read_json(a.fixtures))}, indent=1))
    print(json.dumps(extend_fixtures(a.fixtures, models, a.folder)))


if __name__ == "__main__":
    main()
