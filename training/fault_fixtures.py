"""Golden images for the fault-table e2e tests (e2e/faults.spec.ts): the runs the review tried that
the model's own fixtures do not hold (an empty prompt, one of only spaces, a 10,000-character
prompt, markup in both prompts, 1 step at CFG 1 and at CFG 12, the 50 steps a run keeps when its
sliders move mid-run), computed by PyTorch with the modules recovered from the model folder's
graphs (never onnxruntime), into their own JSON. One command, re-runnable after the model changes:

    /usr/bin/python3 training/fault_fixtures.py public/models/webdit-tiny \\
        --checkpoint training/runs/webdit-tiny-recovered.pt --out src/engine/__fixtures__/webdit-tiny-faults.json

  model, generated_by, model_files   as in fixtures.py (the graphs these values belong to)
  runs   {name: {prompt, negativePrompt, seed, numInferenceSteps, guidanceScale, shift, rgb}}
Images are uint8 RGB H x W x 3, base64, like fixtures.py.
"""
import argparse
import json
import os

import torch

from animation_fixtures import load_checkpoint
from webdit.export import read_json
from webdit.fixtures import PROMPTS, image, model_files
from webdit.from_onnx import pipeline_models_from_checkpoint
from webdit.pipeline import generate

GENERATED_BY = "training/fault_fixtures.py (PyTorch)"
BASE = PROMPTS[1]  # "a large blue circle in the center on a white background"
# name -> (prompt, negative prompt, seed, steps, guidance): the fault table's rows
CASES = {
    "empty prompt (2a)": ("", "", 5, 3, 3.0),
    "spaces only (2a)": ("     ", "", 5, 3, 3.0),
    "10,000 characters (2b)": (PROMPTS[12], "", 5, 3, 3.0),
    "markup (2e, 11d)": ('<img src=x onerror="window.__pwned=1;alert(1)"> a large blue circle',
                         '"><script>window.__pwned=2;alert(2)</script><svg onload="window.__pwned=3;alert(3)">', 5, 3, 3.0),
    "1 step, CFG 1 (3e)": (BASE, "", 5, 1, 1.0),
    "1 step, CFG 12 (3e)": (BASE, "", 5, 1, 12.0),
    "50 steps, CFG 3 (6c, 9c)": (BASE, "", 5, 50, 3.0),
}


@torch.no_grad()
def write_fault_fixtures(models, model_dir, path):
    manifest = read_json(os.path.join(model_dir, "manifest.json"))
    sched = read_json(os.path.join(model_dir, "scheduler", "scheduler_config.json"))
    models = models.with_shift(sched["shift"])
    runs = {}
    for name, (prompt, negative, seed, steps, guidance) in CASES.items():
        _, rgb = generate(models, prompt, negative, seed, steps, guidance)
        runs[name] = {"prompt": prompt, "negativePrompt": negative, "seed": seed, "numInferenceSteps": steps,
                      "guidanceScale": guidance, "shift": models.scheduler.shift, "rgb": image(rgb)}
    fx = {"model": manifest["id"], "generated_by": GENERATED_BY, "model_files": model_files(model_dir), "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fx, f, ensure_ascii=False)
    return fx


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="the model folder")
    ap.add_argument("--checkpoint", required=True, help="from_onnx.py's checkpoint of this folder (recovered when stale)")
    ap.add_argument("--out", required=True, help="fault fixtures JSON to write")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = pipeline_models_from_checkpoint(load_checkpoint(a.checkpoint, a.folder), a.folder)
    write_fault_fixtures(models, a.folder, a.out)
    print(json.dumps({"out": a.out, "bytes": os.path.getsize(a.out), "runs": list(CASES)}))


if __name__ == "__main__":
    main()
