"""Golden fixtures for the TypeScript engine, computed with the PyTorch models (never with the
code under test). Writes src/engine/__fixtures__/<model id>.json:

  tokens      Python tokenizer ids for many prompts ("" and a 10,000-character one included)
  text        last_hidden_state / text_embeds for a few of them
  sigmas      scheduler sigmas for several (steps, shift)
  noise       initial latents for two seeds (mulberry32 + Box-Muller)
  transformer one batch-of-2 forward;  vae  one decode
  runs        two full sampling runs: params -> final latents and RGB image
Floats are little-endian float32, base64."""
import base64
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import sample as S  # noqa: E402

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


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode()


def tensor(a):
    a = np.asarray(a, dtype=np.float32)
    return {"dims": list(a.shape), "b64": b64(a)}


@torch.no_grad()
def encode(clip, tok, texts):
    ids = torch.tensor([tok.encode(t) for t in texts])
    h, p = clip.text(ids)
    return h, p


@torch.no_grad()
def full_run(models, P, prompt, negative, seed, steps, guidance, shift):
    dit, vae, clip, tok, lat = models["dit"], models["vae"], models["clip"], models["tok"], models["lat"]
    C, s = P.vae.latent_channels, dit.cfg.sample_size
    h, p = encode(clip, tok, [prompt])
    hn, pn = encode(clip, tok, [negative])
    x = torch.from_numpy(S.initial_noise(seed, (1, C, s, s)))
    x = S.sample(dit, h, p, hn, pn, x, steps, guidance, shift)
    img = vae.decoder(x / lat["scaling_factor"] + lat["shift_factor"])
    return x.numpy(), S.to_uint8(img)[0]


@torch.no_grad()
def write_fixtures(models, P, out, dest=None):
    models = {k: (v.float().cpu().eval() if isinstance(v, torch.nn.Module) else v) for k, v in models.items()}
    dit, vae, clip, tok, lat = models["dit"], models["vae"], models["clip"], models["tok"], models["lat"]
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    C, s = P.vae.latent_channels, dit.cfg.sample_size
    fx = {"model": manifest["id"], "generated_by": "training/fixtures.py (PyTorch)", "max_length": tok.max_length}
    fx["tokens"] = [{"prompt": t, "ids": tok.encode(t)} for t in PROMPTS]
    texts = [PROMPTS[i] for i in TEXT_PROMPTS]
    h, p = encode(clip, tok, texts)
    fx["text"] = [{"prompt": t, "last_hidden_state": tensor(h[i:i + 1]), "text_embeds": tensor(p[i:i + 1])}
                  for i, t in enumerate(texts)]
    fx["sigmas"] = [{"steps": n, "shift": sh, "sigmas": S.sigmas(n, sh).tolist()}
                    for n, sh in [(1, 1.0), (2, 1.0), (4, 3.0), (20, 1.0), (28, 3.0), (50, 2.0)]]
    fx["noise"] = [{"seed": sd, "shape": [1, C, s, s], "latents": tensor(S.initial_noise(sd, (1, C, s, s)))}
                   for sd in (0, 4294967295)]
    # one batch-of-2 forward at two different timesteps
    x = torch.from_numpy(S.initial_noise(11, (2, C, s, s)))
    h2, p2 = encode(clip, tok, ["", PROMPTS[0]])
    t = torch.tensor([1000.0, 345.5])
    fx["transformer"] = {"inputs": {"hidden_states": tensor(x), "encoder_hidden_states": tensor(h2),
                                    "pooled_projections": tensor(p2), "timestep": tensor(t)},
                         "out_hidden_states": tensor(dit(x, h2, p2, t))}
    z = torch.from_numpy(S.initial_noise(12, (1, C, s, s)))
    fx["vae"] = {"latent_sample": tensor(z), "sample": tensor(vae.decoder(z))}
    fx["runs"] = []
    d = manifest["defaults"]
    # 0: default settings (the wasm e2e run); 1: no CFG; 2: few steps with CFG (the SwiftShader e2e run)
    for prompt, neg, seed, steps, g in [(PROMPTS[0], "", 42, d["steps"], d["guidance_scale"]),
                                        (PROMPTS[2], "blurry", 7, 6, 1.0),
                                        (PROMPTS[1], "", 5, 3, 3.0)]:
        shift = float(manifest["scheduler"]["shift"])
        latents, rgb = full_run(models, P, prompt, neg, seed, steps, g, shift)
        fx["runs"].append({"prompt": prompt, "negativePrompt": neg, "seed": seed, "numInferenceSteps": steps,
                           "guidanceScale": g, "shift": shift, "latents": tensor(latents),
                           "rgb": {"dims": list(rgb.shape), "b64": base64.b64encode(rgb.tobytes()).decode()}})
    dest = dest or os.path.join(ROOT, "src", "engine", "__fixtures__")
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, f"{manifest['id']}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fx, f, ensure_ascii=False)
    print(json.dumps({"fixtures": os.path.relpath(path, ROOT), "bytes": os.path.getsize(path)}))
    return path


if __name__ == "__main__":
    import argparse
    import train
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--run", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "public", "models", "webdit-tiny"))
    ap.add_argument("--dest", default=None)
    a = ap.parse_args()
    P = train.PRESETS[a.preset]
    models = train.load_all(a.run or os.path.join(HERE, "runs", a.preset), P)
    write_fixtures(models, P, a.out, a.dest)
