"""Evaluate a finished run (see webdit/evaluate.py): writes <model>/evaluation.json and samples.png.

    /usr/bin/python3 training/evaluate.py --preset cpu --model public/models/webdit-tiny
"""
import argparse
import os

import torch

from webdit.config import PRESETS
from webdit.evaluate import evaluate
from webdit.stages import load_all

TRAINING = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--run", default=None, help="run folder; default training/runs/<preset>")
    ap.add_argument("--model", required=True, help="model folder for samples.png and evaluation.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(os.cpu_count())
    P = PRESETS[a.preset]
    evaluate(load_all(a.run or os.path.join(TRAINING, "runs", a.preset), P), P, a.model)


if __name__ == "__main__":
    main()
