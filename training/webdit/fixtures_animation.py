"""Golden values for seed-variation and prompt-interpolation animations (pipeline.generate_animation),
in their own JSON beside the model's fixtures so they can be rewritten alone:

  model, generated_by, model_files   as in fixtures.py (the graphs these values belong to)
  animations   per case: kind, prompt, to, negativePrompt, seed, frames, numInferenceSteps,
               guidanceScale, shift;
               'seed': initial_latents (frames,C,h,w) after slerp, and endpoints_max_abs_diff: frame 0 /
                 frame N-1 final latents against the single runs with seed A / seed B (PyTorch side);
               'prompt': interior_conditioning {encoder_hidden_states, pooled_projections}, the lerped
                 cond half of frames 1..N-2 (the end frames are the prompts' own encodings);
               latents (frames,C,h,w) final; rgb (frames,H,W,3) uint8
Computed by PyTorch (never onnxruntime), floats float32 little-endian base64 like fixtures.py."""
import json
import os

import numpy as np
import torch

from .export import read_json
from .fixtures import PROMPTS, image, model_files, tensor
from .pipeline import animation_inputs, generate, generate_animation

GENERATED_BY = "training/animation_fixtures.py (PyTorch)"
# The first two are the e2e cases (3 frames, 3 steps: cheap enough for SwiftShader); the others
# cover more frames, no CFG, a negative prompt, seed 2^32 - 1 and the model's default steps.
CASES = [
    dict(kind="seed", prompt=PROMPTS[1], to=6, negativePrompt="", seed=5, frames=3, numInferenceSteps=3, guidanceScale=3.0),
    dict(kind="prompt", prompt=PROMPTS[1], to=PROMPTS[0], negativePrompt="", seed=5, frames=3, numInferenceSteps=3,
         guidanceScale=3.0),
    dict(kind="seed", prompt=PROMPTS[2], to=4294967295, negativePrompt="blurry", seed=7, frames=4, numInferenceSteps=6,
         guidanceScale=1.0),
    dict(kind="prompt", prompt=PROMPTS[3], to=PROMPTS[2], negativePrompt="", seed=42, frames=3, numInferenceSteps=8,
         guidanceScale=5.0),
]


@torch.no_grad()
def animation_case(models, c):
    noise, (ctx, pooled) = animation_inputs(models, c["kind"], c["prompt"], c["seed"], c["to"], c["frames"])
    latents, rgb = generate_animation(models, c["kind"], c["prompt"], c["negativePrompt"], c["seed"], c["to"], c["frames"],
                                      c["numInferenceSteps"], c["guidanceScale"])
    out = {**c, "shift": models.scheduler.shift}
    if c["kind"] == "seed":
        out["initial_latents"] = tensor(noise)
    else:
        out["interior_conditioning"] = {"encoder_hidden_states": tensor(ctx[1:-1]), "pooled_projections": tensor(pooled[1:-1])}
    out.update(latents=tensor(latents), rgb=image(rgb))
    if c["kind"] == "seed":
        ends = {}
        for name, seed, k in (("first", c["seed"], 0), ("last", int(c["to"]), c["frames"] - 1)):
            single, _ = generate(models, [c["prompt"]], c["negativePrompt"], seed, c["numInferenceSteps"], c["guidanceScale"])
            ends[name] = float(np.abs(single[0] - latents[k]).max())
        out["endpoints_max_abs_diff"] = ends
    return out


@torch.no_grad()
def write_animation_fixtures(models, model_dir, path, cases=CASES):
    manifest = read_json(os.path.join(model_dir, "manifest.json"))
    sched = read_json(os.path.join(model_dir, "scheduler", "scheduler_config.json"))
    models = models.with_shift(sched["shift"])
    fx = {"model": manifest["id"], "generated_by": GENERATED_BY, "model_files": model_files(model_dir),
          "animations": [animation_case(models, c) for c in cases]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fx, f, ensure_ascii=False)
    return fx
