"""One image from a finished run through the reference pipeline (webdit/pipeline.py), as PNG.
With --image, image-to-image at --strength.

    /usr/bin/python3 training/sample.py --preset cpu --prompt "cat face, noto style" --seed 42 --out cat.png
"""
import argparse
import os

import numpy as np
from PIL import Image

from webdit.config import PRESETS
from webdit.pipeline import generate
from webdit.stages import load_all, pipeline_models

TRAINING = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=PRESETS)
    ap.add_argument("--run", default=None, help="run folder; default training/runs/<preset>")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--negative-prompt", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-inference-steps", type=int, default=None, help="default: the preset's")
    ap.add_argument("--guidance-scale", type=float, default=None, help="default: the preset's")
    ap.add_argument("--shift", type=float, default=None, help="default: the preset's scheduler shift")
    ap.add_argument("--image", default=None, help="init image (RGB, resized to the model's size) for image-to-image")
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--out", required=True, help="PNG to write")
    a = ap.parse_args(argv)
    P = PRESETS[a.preset]
    models = pipeline_models(load_all(a.run or os.path.join(TRAINING, "runs", a.preset), P), P, shift=a.shift)
    image = None
    if a.image:
        size = P.vae.sample_size
        image = np.asarray(Image.open(a.image).convert("RGB").resize((size, size), Image.BOX), np.uint8)
    _, rgb = generate(models, a.prompt, a.negative_prompt, a.seed,
                      a.num_inference_steps or P.sampling.num_inference_steps,
                      P.sampling.guidance_scale if a.guidance_scale is None else a.guidance_scale,
                      image=image, strength=a.strength)
    Image.fromarray(rgb).save(a.out)


if __name__ == "__main__":
    main()
