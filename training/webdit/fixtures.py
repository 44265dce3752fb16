"""Golden fixtures for the TypeScript engine, computed with the PyTorch models and the reference
pipeline (never with onnxruntime, which the engine runs). One JSON per model:

  model, generated_by, max_length
  model_files  {path: sha256} of the graphs these values were computed with (from the manifest)
  tokens       Python tokenizer ids for many prompts ("" and a 10,000-character one included)
  text         last_hidden_state / text_embeds for a few of them
  sigmas       scheduler sigmas for several (steps, shift)
  noise        initial latents for two seeds (mulberry32 + Box-Muller)
  transformer  one batch-of-2 forward;  vae  one decode;  vae_encoder  one batch-of-2 encode
  runs         three text-to-image runs: params -> final latents and RGB image
  img2img      two image-to-image runs (init_image, strength) when the model has a vae_encoder
Floats are little-endian float32, base64; images are uint8 RGB H x W x 3, base64."""
import base64
import json
import os

import numpy as np
import torch

from . import data as D
from .export import GRAPHS, read_json
from .pipeline import encode_prompt, generate, get_sigmas, initial_latents

GENERATED_BY = "training/fixtures.py (PyTorch)"
PROMPTS = [
    "a small red star at the top left on a light blue background",
    "a large blue circle in the center on a white background",
    "grinning face with big eyes, noto style",
    "cat face, twemoji style",
    "",
    "Héllo, Wörld! ¿Qué tal? naïve café — “quotes” and punctuation!!!",
    "👋🏽 waving hand: medium skin tone 🐱 ⭐️ 1️⃣ 👩‍❤️‍👨",
    "مرحبا بالعالم   שלום עולם",
    "日本語のテキスト 中文 한국어",
    "unknownword zxqv supercalifragilistic",
    "tab\tnew\nline\r\n  [PAD] [CLS] <|endoftext|>",
    "a " * 40,
    ("a purple heart on a black background. " * 300)[:10000],
]
TEXT_PROMPTS = [0, 2, 4, 6, 12]  # embeddings for these
SIGMA_CASES = [(1, 1.0), (2, 1.0), (4, 3.0), (20, 1.0), (28, 3.0), (50, 2.0)]  # (steps, shift)
INIT_SCENES = [([("circle", "red", "large", "in the center")], "white"),
               ([("square", "green", "medium", "on the left")], "light blue")]


def tensor(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    return {"dims": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def image(u8):
    u8 = np.ascontiguousarray(u8, dtype=np.uint8)
    return {"dims": list(u8.shape), "b64": base64.b64encode(u8.tobytes()).decode()}


def model_files(model_dir):
    """{path: sha256} of the graphs in the folder, read from its manifest."""
    files = read_json(os.path.join(model_dir, "manifest.json"))["files"]
    return {f"{g}/model.onnx": files[f"{g}/model.onnx"]["sha256"] for g in GRAPHS if f"{g}/model.onnx" in files}


def _run(models, prompt, negative, seed, steps, guidance, init_image=None, strength=1.0):
    latents, rgb = generate(models, prompt, negative, seed, steps, guidance, image=init_image, strength=strength)
    run = {"prompt": prompt, "negativePrompt": negative, "seed": seed, "numInferenceSteps": steps,
           "guidanceScale": guidance, "shift": models.scheduler.shift}
    if init_image is not None:
        run.update(strength=strength, init_image=image(init_image))
    return {**run, "latents": tensor(latents), "rgb": image(rgb)}


@torch.no_grad()
def encoder_fixture(models):
    """`vae_encoder`: one batch-of-2 encode of the init images (posterior mean)."""
    sample = D.to_tensor_images(np.stack([D.render_scene(objs, bg) for objs, bg in INIT_SCENES]))
    return {"sample": tensor(sample), "latent_sample": tensor(models.vae.encoder(sample)[0])}


@torch.no_grad()
def img2img_fixture(models, defaults):
    """`img2img`: a red circle turned blue at the defaults; a light edit with few steps."""
    init_images = [D.render_scene(objs, bg) for objs, bg in INIT_SCENES]
    d = defaults
    return [_run(models, PROMPTS[1], "", 3, d["num_inference_steps"], d["guidance_scale"], init_images[0], 0.6),
            _run(models, PROMPTS[0], "blurry", 8, 10, 3.0, init_images[1], 0.35)]


@torch.no_grad()
def write_fixtures(models, model_dir, path):
    """models: pipeline.Models of the run the folder was exported from; the folder supplies the
    id, the defaults, the scheduler and the graph hashes. Writes the JSON to path."""
    manifest = read_json(os.path.join(model_dir, "manifest.json"))
    sched = read_json(os.path.join(model_dir, "scheduler", "scheduler_config.json"))
    models = models.with_shift(sched["shift"])
    T = sched["num_train_timesteps"]
    assert T == models.scheduler.num_train_timesteps, "the folder and the run disagree on num_train_timesteps"
    dit, vae, tok = models.transformer, models.vae, models.tokenizer
    shape = (1, dit.cfg.in_channels, dit.cfg.sample_size, dit.cfg.sample_size)
    fx = {"model": manifest["id"], "generated_by": GENERATED_BY, "model_files": model_files(model_dir),
          "max_length": tok.max_length}
    fx["tokens"] = [{"prompt": t, "ids": tok.encode(t)} for t in PROMPTS]
    texts = [PROMPTS[i] for i in TEXT_PROMPTS]
    h, p = encode_prompt(models, texts)
    fx["text"] = [{"prompt": t, "last_hidden_state": tensor(h[i:i + 1]), "text_embeds": tensor(p[i:i + 1])}
                  for i, t in enumerate(texts)]
    fx["sigmas"] = [{"steps": n, "shift": sh, "sigmas": get_sigmas(n, sh, T).tolist()} for n, sh in SIGMA_CASES]
    fx["noise"] = [{"seed": sd, "shape": list(shape), "latents": tensor(initial_latents(sd, shape))}
                   for sd in (0, 4294967295)]
    # one batch-of-2 forward at two different timesteps
    x = torch.from_numpy(initial_latents(11, (2,) + shape[1:]))
    h2, p2 = encode_prompt(models, ["", PROMPTS[0]])
    t = torch.tensor([1.0, 0.3455]) * T
    fx["transformer"] = {"inputs": {"hidden_states": tensor(x), "encoder_hidden_states": tensor(h2),
                                    "pooled_projections": tensor(p2), "timestep": tensor(t)},
                         "out_hidden_states": tensor(dit(x, h2, p2, t))}
    z = torch.from_numpy(initial_latents(12, shape))
    fx["vae"] = {"latent_sample": tensor(z), "sample": tensor(vae.decoder(z))}
    has_encoder = "vae_encoder/model.onnx" in manifest["files"]
    if has_encoder:
        fx["vae_encoder"] = encoder_fixture(models)
    d = manifest["defaults"]
    # 0: default settings (the wasm e2e run); 1: no CFG; 2: few steps with CFG (the SwiftShader e2e run)
    fx["runs"] = [_run(models, PROMPTS[0], "", 42, d["num_inference_steps"], d["guidance_scale"]),
                  _run(models, PROMPTS[2], "blurry", 7, 6, 1.0),
                  _run(models, PROMPTS[1], "", 5, 3, 3.0)]
    if has_encoder:
        fx["img2img"] = img2img_fixture(models, d)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fx, f, ensure_ascii=False)
    print(json.dumps({"fixtures": path, "bytes": os.path.getsize(path)}))
    return fx


def add_model_files(path, model_dir):
    """Record the graphs' hashes in fixtures written before `model_files` existed, changing nothing
    else (same serialisation as write_fixtures)."""
    with open(path, encoding="utf-8") as f:
        fx = json.load(f)
    files = model_files(model_dir)
    fx.pop("model_files", None)
    keys = list(fx)
    at = keys.index("generated_by") + 1 if "generated_by" in keys else 0
    fx = dict([*[(k, fx[k]) for k in keys[:at]], ("model_files", files), *[(k, fx[k]) for k in keys[at:]]])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fx, f, ensure_ascii=False)
    return files
