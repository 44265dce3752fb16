"""The whole recipe, one command: data -> VAE -> latents -> tokenizer -> text encoder -> text cache
-> DiT -> export -> evaluation -> fixtures -> model card. Each stage checkpoints into the run folder
and is skipped when its output exists, so a stopped run resumes where it stopped.

    /usr/bin/python3 training/train.py --preset cpu                      # the shipped model (~2 h on 2 cores)
    /usr/bin/python3 training/train.py --preset toy --run /tmp/toy/run \\
        --out /tmp/toy/model --fixtures /tmp/toy/fixtures.json          # smoke size (tests)
"""
import argparse
import os
import time

import torch

from webdit.config import PRESETS
from webdit.stages import load_all, log, pipeline_models

TRAINING = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TRAINING)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--run", default=None, help="run folder (checkpoints); default training/runs/<preset>")
    ap.add_argument("--id", default=None, help="model id; default the preset's (toy: webdit-toy, cpu: webdit-tiny)")
    ap.add_argument("--out", default=None, help="model folder to write; default public/models/<id>")
    ap.add_argument("--fixtures", default=None, help="fixtures JSON to write; default src/engine/__fixtures__/<id>.json "
                                                     "without --out, else fixtures.json beside the model folder")
    ap.add_argument("--data-cache", default=None, help="emoji image folder; default $WEBDIT_DATA_CACHE or training/data/cache")
    ap.add_argument("--until", default="all", choices=["train", "export", "all"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args(argv)
    P = PRESETS[a.preset]
    model_id = a.id or P.model_id
    out = a.out or os.path.join(ROOT, "public", "models", model_id)
    fixtures_path = a.fixtures or (os.path.join(ROOT, "src", "engine", "__fixtures__", f"{model_id}.json") if a.out is None
                                   else os.path.join(os.path.dirname(os.path.abspath(out)), "fixtures.json"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    run = a.run or os.path.join(TRAINING, "runs", a.preset)
    os.makedirs(run, exist_ok=True)
    t0 = time.time()
    trained = load_all(run, P, device, cache=a.data_cache)
    log(run, f"training done in {time.time() - t0:.0f} s (this invocation)")
    if a.until == "train":
        return
    from webdit import evaluate, export, fixtures, modelcard  # heavy imports only when needed
    models = pipeline_models(trained, P)
    export.export_all(models, out, model_id, P.model_name, P.sampling)
    if a.until == "export":
        return
    res = evaluate.evaluate(trained, P, out)
    export.set_defaults(out, **res["defaults"])
    fixtures.write_fixtures(models, out, fixtures_path)
    modelcard.write(run, P, a.preset, out, res, models)
    log(run, f"all done in {time.time() - t0:.0f} s (this invocation)")


if __name__ == "__main__":
    main()
