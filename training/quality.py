"""Measure the default-model issue's quality table (webdit/quality.py) for the shipped weights or a
run's DiT, and record it as one point of the learning curve (metrics against samples seen).

    # the shipped model (weights recovered from its graphs by from_onnx.py)
    /usr/bin/python3 training/quality.py --checkpoint training/runs/webdit-tiny-recovered.pt \\
        --folder public/models/webdit-tiny --label shipped --samples-seen 256000
    # a warm-started run: its EMA DiT and latent factors replace the checkpoint's
    /usr/bin/python3 training/quality.py --checkpoint training/runs/webdit-tiny-recovered.pt \\
        --folder public/models/webdit-tiny --run training/runs/cpu-v2 --label cpu-v2 --samples-before 256000

The curve lives in training/learning_curve.json (committed): one entry per label, replaced when the
label is measured again. Settings default to the folder manifest's defaults and scheduler shift.
"""
import argparse
import json
import os
import time

import torch

from webdit.export import read_json
from webdit.from_onnx import pipeline_models_from_checkpoint
from webdit.modelcard import replace_block
from webdit.quality import card_section, curve_svg, measure, samples_grid

TRAINING = os.path.dirname(os.path.abspath(__file__))
CURVE = os.path.join(TRAINING, "learning_curve.json")


def run_models(models, run):
    """The run's EMA DiT and its latents' shift/scaling factors in place of the checkpoint's."""
    from dataclasses import replace
    st = torch.load(os.path.join(run, "dit.pt"), map_location="cpu")
    models.transformer.load_state_dict(st["ema"])
    lat = torch.load(os.path.join(run, "latents.pt"), map_location="cpu")
    return replace(models, scaling_factor=float(lat["scaling_factor"]), shift_factor=float(lat["shift_factor"])), st


def record(entry, path=CURVE):
    curve = read_json(path) if os.path.exists(path) else {"about": __doc__.split("\n")[0], "points": []}
    curve["points"] = [p for p in curve["points"] if p["label"] != entry["label"]] + [entry]
    curve["points"].sort(key=lambda p: p["samples_seen"])
    with open(path, "w") as f:
        json.dump(curve, f, indent=1)


BEGIN, END = "<!-- quality:begin (training/quality.py --card) -->", "<!-- quality:end -->"


def write_card(folder, points, shipped_label):
    """Replace the section between BEGIN and END of the model card (appended before "## Limits" the
    first time) and write the chart beside it."""
    if shipped_label not in {p["label"] for p in points}:
        raise SystemExit(f"--label {shipped_label!r} is not a point of the curve: {[p['label'] for p in points]}")
    with open(os.path.join(folder, "learning_curve.svg"), "w") as f:
        f.write(curve_svg(points))
    path = os.path.join(folder, "README.md")
    block = f"{BEGIN}\n## Quality against the targets, and the learning curve\n\n{card_section(points, shipped_label)}{END}\n"
    replace_block(path, BEGIN, END, block)
    print(f"wrote {path} and learning_curve.svg ({len(points)} points)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="from_onnx.py's checkpoint of the folder")
    ap.add_argument("--folder", required=True, help="the model folder (tokenizer, scheduler, manifest defaults)")
    ap.add_argument("--run", default=None, help="a run folder whose dit.pt (EMA) and latents.pt replace the checkpoint's")
    ap.add_argument("--label", default=None, help="the curve point's name (needed unless --grid)")
    ap.add_argument("--samples-seen", type=int, default=None, help="DiT training samples behind these weights")
    ap.add_argument("--samples-before", type=int, default=0,
                    help="with --run: samples seen before the run's warm start (added to its step x batch)")
    ap.add_argument("--batch", type=int, default=64, help="with --run: the DiT batch (samples per step)")
    ap.add_argument("--n-style", type=int, default=100)
    ap.add_argument("--n-natural", type=int, default=100)
    ap.add_argument("--n-shapes", type=int, default=60)
    ap.add_argument("--decoder", default=None,
                    help="finetune_decoder.py's decoder_final.pt in place of the checkpoint's VAE decoder")
    ap.add_argument("--grid", default=None, metavar="PNG",
                    help="only draw the model card's samples picture (webdit/quality.py samples_grid) to PNG; "
                         "measures and records nothing")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--curve", default=CURVE)
    ap.add_argument("--card", default=None, metavar="FOLDER",
                    help="only rewrite FOLDER/README.md's quality section and FOLDER/learning_curve.svg from the curve "
                         "(--label names the shipped point); measures nothing")
    a = ap.parse_args(argv)
    if a.label is None and not a.grid:
        ap.error("--label is needed (or --grid)")
    if a.card:
        return write_card(a.card, read_json(a.curve)["points"], a.label)
    torch.set_num_threads(a.threads)
    ck = torch.load(a.checkpoint, map_location="cpu")
    models = pipeline_models_from_checkpoint(ck, a.folder)
    seen = a.samples_seen
    if a.run:
        models, st = run_models(models, a.run)
        seen = a.samples_before + int(st["step"]) * a.batch
    if a.decoder:
        models.vae.decoder.load_state_dict(torch.load(a.decoder, map_location="cpu")["vae_decoder"])
    d = read_json(os.path.join(a.folder, "manifest.json"))["defaults"]
    if a.grid:
        cells = samples_grid(models, d["num_inference_steps"], d["guidance_scale"], a.grid)
        hits = [h for _, _, h in cells if h is not None]
        return print(f"wrote {a.grid}: {len(cells)} cells, {sum(hits)} of {len(hits)} emoji prompts framed (top-5 hits)")
    if seen is None:
        raise SystemExit("--samples-seen is needed without --run")
    t0 = time.time()
    res = measure(models, d["num_inference_steps"], d["guidance_scale"], a.n_style, a.n_natural, a.n_shapes)
    entry = {"label": a.label, "samples_seen": seen, "measured": time.strftime("%Y-%m-%d"),
             "seconds": round(time.time() - t0, 1), **({"decoder": a.decoder} if a.decoder else {}), **res}
    record(entry, a.curve)
    print(json.dumps(entry))


if __name__ == "__main__":
    main()
