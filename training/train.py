"""The whole recipe, one command: data -> VAE -> latents -> tokenizer -> text encoder -> text cache
-> DiT -> export -> evaluation -> fixtures -> model card. Each stage checkpoints into the run folder
and is skipped when its output exists, so a stopped run resumes where it stopped.

    /usr/bin/python3 training/train.py --preset cpu                      # the shipped model (~2 h on 2 cores)
    /usr/bin/python3 training/train.py --preset toy --run /tmp/toy/run \\
        --out /tmp/toy/model --fixtures /tmp/toy/fixtures.json          # smoke size (tests)

Several processes (DDP; webdit/dist.py), e.g. the GPUs of one machine (training/gpu/run.sh):
    torchrun --standalone --nproc_per_node=<gpus> training/train.py --preset cuda-tiny --minutes 7 --until train
(with Debian's torch 1.13: /usr/bin/python3 training/gpu/torchrun.py, same arguments). Each rank
draws its own batches of the preset's size (global batch = batch x processes); rank 0 writes.
"""
import argparse
import os
import time
from dataclasses import fields, replace

import torch

from webdit import dist
from webdit.config import PRESETS
from webdit.stages import Budget, load_all, log, pipeline_models

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
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per process; default the cores / processes")
    ap.add_argument("--minutes", type=float, default=None,
                    help="wall-clock budget for the training stages: the stage in progress stops with a checkpoint "
                         "(resumable) when it runs out, schedules fitted to it (stages.Budget); default none")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a preset number, e.g. --set dit_batch=128 --set dit_steps=20000")
    ap.add_argument("--virtual-ranks", type=int, default=1,
                    help="one process steps on the concatenated batches of N ranks: the numbers of N DDP processes")
    a = ap.parse_args(argv)
    P = PRESETS[a.preset]
    for kv in a.set:
        k, v = kv.split("=", 1)
        old = getattr(P, k, "")
        if k not in {f.name for f in fields(P)} or not (old is None or isinstance(old, (int, float))):
            raise SystemExit(f"--set {kv}: not a number of the preset")
        P = replace(P, **{k: int(v) if old is None else type(old)(v)})  # None: emoji_limit
    dist.virtual_ranks = a.virtual_ranks
    model_id = a.id or P.model_id
    out = a.out or os.path.join(ROOT, "public", "models", model_id)
    fixtures_path = a.fixtures or (os.path.join(ROOT, "src", "engine", "__fixtures__", f"{model_id}.json") if a.out is None
                                   else os.path.join(os.path.dirname(os.path.abspath(out)), "fixtures.json"))
    device = dist.init("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(a.threads or max(1, os.cpu_count() // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    torch.manual_seed(0)
    run = a.run or os.path.join(TRAINING, "runs", a.preset)
    os.makedirs(run, exist_ok=True)
    t0 = time.time()
    budget = Budget(a.minutes * 60, run) if a.minutes is not None else None
    trained = load_all(run, P, device, cache=a.data_cache, budget=budget)
    dist.virtual_ranks = 1
    log(run, f"training done in {time.time() - t0:.0f} s (this invocation)")
    if dist.active():
        dist.barrier()
        torch.distributed.destroy_process_group()
    if a.until == "train" or int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 alone goes on
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
