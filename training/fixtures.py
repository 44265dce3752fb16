"""Golden fixtures for the TypeScript engine from a finished run and the model folder exported
from it (see webdit/fixtures.py for the fields). Computed by PyTorch, never by onnxruntime.

    /usr/bin/python3 training/fixtures.py --preset cpu --model public/models/webdit-tiny \\
        --out src/engine/__fixtures__/webdit-tiny.json
"""
import argparse
import os

from webdit.config import PRESETS
from webdit.fixtures import write_fixtures
from webdit.stages import load_all, pipeline_models

TRAINING = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--run", default=None, help="run folder; default training/runs/<preset>")
    ap.add_argument("--model", required=True, help="the model folder exported from this run")
    ap.add_argument("--out", required=True, help="fixtures JSON to write")
    a = ap.parse_args(argv)
    P = PRESETS[a.preset]
    trained = load_all(a.run or os.path.join(TRAINING, "runs", a.preset), P)
    write_fixtures(pipeline_models(trained, P), a.model, a.out)


if __name__ == "__main__":
    main()
