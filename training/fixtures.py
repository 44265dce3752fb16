"""Golden fixtures for the TypeScript engine from a finished run and the model folder exported
from it (see webdit/fixtures.py for the fields). Computed by PyTorch, never by onnxruntime.

    /usr/bin/python3 training/fixtures.py --preset cpu --model public/models/webdit-tiny \\
        --out src/engine/__fixtures__/webdit-tiny.json

A folder without its training run (webdit-tiny) gets its fixtures from the PyTorch modules rebuilt
from its own graphs (from_onnx.py's checkpoint; for compressed graphs these are the stored, rounded
weights, exactly what onnxruntime runs):

    /usr/bin/python3 training/from_onnx.py public/models/webdit-tiny --out training/runs/webdit-tiny-recovered.pt
    /usr/bin/python3 training/fixtures.py --model public/models/webdit-tiny \\
        --checkpoint training/runs/webdit-tiny-recovered.pt --out src/engine/__fixtures__/webdit-tiny.json
"""
import argparse
import os

import torch

from webdit.config import PRESETS
from webdit.fixtures import model_files, write_fixtures
from webdit.from_onnx import pipeline_models_from_checkpoint
from webdit.stages import load_all, pipeline_models

TRAINING = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--run", default=None, help="run folder; default training/runs/<preset>")
    ap.add_argument("--model", required=True, help="the model folder exported from this run")
    ap.add_argument("--out", required=True, help="fixtures JSON to write")
    ap.add_argument("--checkpoint", default=None, help="from_onnx.py's checkpoint of --model, instead of a run")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.checkpoint:
        ck = torch.load(a.checkpoint)
        files = model_files(a.model)
        if ck["model_files"] != files:  # the checkpoint must come from exactly these graphs
            raise SystemExit(f"{a.checkpoint} was recovered from other graphs than {a.model}'s: "
                             f"{sorted(p for p in files if ck['model_files'].get(p) != files[p])}")
        write_fixtures(pipeline_models_from_checkpoint(ck, a.model), a.model, a.out)
        return
    P = PRESETS[a.preset]
    trained = load_all(a.run or os.path.join(TRAINING, "runs", a.preset), P)
    write_fixtures(pipeline_models(trained, P), a.model, a.out)


if __name__ == "__main__":
    main()
