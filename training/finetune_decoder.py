"""Fine-tune a model folder's VAE decoder alone for sharper images (webdit/decoder_ft.py), on the
latents a training run cached (its data.pkl and latents.pt: the ones the DiT was trained on), and
write the report. The decoder starts from the folder's weights (from_onnx.py's checkpoint).

    /usr/bin/python3 training/finetune_decoder.py --checkpoint training/runs/webdit-tiny-recovered.pt \\
        --data-run training/runs/cpu-v2 --run training/runs/decoder-gan --loss gan --minutes 10

Resumable: run the same command again after a stop. The result is run/decoder_final.pt
({"vae_decoder": state_dict, "report": ...}); ship_transformer.py --decoder puts it into the folder.
"""
import argparse
import json
import os

import torch

from webdit.decoder_ft import ADV, GRAD_WEIGHT, LAP_WEIGHT, LOSSES, finetune_decoder
from webdit.from_onnx import models_from_checkpoint


def write_card(folder, runs, chosen):
    from webdit.decoder_ft import BEGIN, END, card_block
    from webdit.modelcard import replace_block
    reports = {}
    for r in runs:
        with open(os.path.join(r, "report.json")) as f:
            reports[os.path.basename(os.path.normpath(r))] = json.load(f)
    if chosen and chosen not in reports:
        raise SystemExit(f"--chosen {chosen!r} is not one of the runs: {sorted(reports)}")
    replace_block(os.path.join(folder, "README.md"), BEGIN, END, card_block(reports, chosen))
    print(f"wrote the decoder section of {folder}/README.md ({len(reports)} variants)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--card", default=None, metavar="FOLDER",
                    help="only write FOLDER/README.md's decoder section from the report.json of --runs; trains nothing")
    ap.add_argument("--runs", nargs="*", default=[], help="with --card: the fine-tune run folders, in table order")
    ap.add_argument("--chosen", default=None, help="with --card: the run (folder name) that was shipped")
    ap.add_argument("--checkpoint", help="from_onnx.py's checkpoint of the folder (the starting decoder)")
    ap.add_argument("--data-run", help="a training run folder with data.pkl and latents.pt")
    ap.add_argument("--run", help="folder for checkpoints, log and the result")
    ap.add_argument("--init", default=None, help="another run's decoder_final.pt to start from (continue a fine-tune)")
    ap.add_argument("--loss", default="gan", choices=LOSSES)
    ap.add_argument("--minutes", type=float, default=10.0, help="time budget (fixes the step count on the first call)")
    ap.add_argument("--steps", type=int, default=None, help="step count instead of the time budget")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--adv", type=float, default=ADV)
    ap.add_argument("--disc-lr", type=float, default=None, help="the discriminator's learning rate (default --lr)")
    ap.add_argument("--grad-weight", type=float, default=GRAD_WEIGHT)
    ap.add_argument("--lap-weight", type=float, default=LAP_WEIGHT)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.card:
        return write_card(a.card, a.runs, a.chosen)
    for need in ("checkpoint", "data_run", "run"):
        if getattr(a, need) is None:
            ap.error(f"--{need.replace('_', '-')} is needed (or --card)")
    torch.set_num_threads(a.threads)
    os.makedirs(a.run, exist_ok=True)
    vae, _, _ = models_from_checkpoint(torch.load(a.checkpoint, map_location="cpu"))
    if a.init:
        vae.decoder.load_state_dict(torch.load(a.init, map_location="cpu")["vae_decoder"])
    res = finetune_decoder(a.run, "decoder", vae.decoder, a.loss, a.minutes, a.steps, a.batch, a.lr, a.adv,
                           a.grad_weight, data_run=a.data_run, disc_lr=a.disc_lr, lap_weight=a.lap_weight)
    if res is None:
        raise SystemExit("out of time: run the same command again to continue")
    res["init"] = a.init
    torch.save({"vae_decoder": vae.decoder.state_dict(), "report": res}, os.path.join(a.run, "decoder_final.pt"))
    with open(os.path.join(a.run, "report.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
