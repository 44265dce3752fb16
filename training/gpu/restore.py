"""What run.sh sent back ($OUT: weights.json + weights.pt.partNN, bf16) -> a run folder that the
recipe exports, evaluates or trains on (webdit/weights.py).

    /usr/bin/python3 training/gpu/restore.py /work/.device/.../out --run training/runs/gpu-1 \\
        --frozen-from public/models/webdit-tiny          # exact VAE / text encoder when they were frozen
    /usr/bin/python3 training/train.py --preset cuda-tiny --run training/runs/gpu-1 \\
        --out /tmp/gpu-1/model --fixtures /tmp/gpu-1/fixtures.json       # export + evaluation + card (CPU)

--mode warm writes the components named in --train at step 0 (a new schedule from these weights, as
from_onnx.py --seed-run does), e.g. to continue on the CPU or to carry them to the next GPU run
(run.sh WARM=<this folder>).
"""
import argparse
import json
import os
import sys

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TRAINING)

from webdit.config import PRESETS  # noqa: E402
from webdit.weights import restore  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a folder with weights.json + weights.pt.partNN, or a joined weights.pt")
    ap.add_argument("--run", required=True, help="run folder to write (vae.pt, clip.pt, dit.pt, tokenizer/)")
    ap.add_argument("--mode", default="export", choices=["export", "warm"])
    ap.add_argument("--train", default="transformer", help="with --mode warm: components restarted at step 0")
    ap.add_argument("--frozen-from", default=None, help="model folder: frozen components exactly from its graphs")
    ap.add_argument("--preset", default="cuda-tiny", choices=PRESETS)
    a = ap.parse_args(argv)
    if any(os.path.exists(os.path.join(a.run, f"{n}.pt")) for n in ("vae", "clip", "dit")):
        raise SystemExit(f"{a.run} already has stage checkpoints: restore into a new folder")
    print(json.dumps(restore(a.src, a.run, a.mode, tuple(t for t in a.train.split(",") if t), a.frozen_from, a.preset)))


if __name__ == "__main__":
    main()
