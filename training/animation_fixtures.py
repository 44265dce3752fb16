"""Golden values for the studio's animations (seed slerp, prompt lerp; webdit/fixtures_animation.py),
computed by PyTorch with the modules recovered from the model folder's graphs, into their own JSON
(the model's other fixtures are not touched). One command, re-runnable after the model changes:

    /usr/bin/python3 training/animation_fixtures.py public/models/webdit-tiny \\
        --checkpoint training/runs/webdit-tiny-recovered.pt --out src/engine/__fixtures__/webdit-tiny-animation.json

When the checkpoint is missing or was recovered from other graphs than the folder's (a new model was
shipped), it is recovered again from the folder first (from_onnx.py's steps) and saved at --checkpoint.
"""
import argparse
import json
import os

import torch

from webdit.fixtures import model_files
from webdit.fixtures_animation import write_animation_fixtures
from webdit.from_onnx import checkpoint, pipeline_models_from_checkpoint, recover


def load_checkpoint(path, folder):
    """The checkpoint of exactly this folder's graphs, recovering it when needed."""
    files = model_files(folder)
    if os.path.exists(path):
        ck = torch.load(path)
        stale = sorted(p for p in files if ck["model_files"].get(p) != files[p])
        if not stale:
            return ck
        print(json.dumps({"checkpoint": path, "recovered_from_other_graphs": stale, "action": "recovering again"}))
    modules, info = recover(folder)
    ck = checkpoint(modules, info, folder)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(ck, path)
    print(json.dumps({"checkpoint": path, "recovered": sorted(ck["state_dicts"]), "max_abs_diff": info["max_abs_diff"]}))
    return ck


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="the model folder")
    ap.add_argument("--checkpoint", required=True, help="from_onnx.py's checkpoint of this folder (recovered when stale)")
    ap.add_argument("--out", required=True, help="animation fixtures JSON to write")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = pipeline_models_from_checkpoint(load_checkpoint(a.checkpoint, a.folder), a.folder)
    fx = write_animation_fixtures(models, a.folder, a.out)
    print(json.dumps({"out": a.out, "bytes": os.path.getsize(a.out),
                      "endpoints_max_abs_diff": [c.get("endpoints_max_abs_diff") for c in fx["animations"]]}))


if __name__ == "__main__":
    main()
