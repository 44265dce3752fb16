"""Writes the model card (README.md) of the exported model folder from the run's log, the
folder's manifest and configs, and evaluation.json, so every number in it is the one the recipe printed."""
import datetime
import os
import re

from .config import EVAL_SEED
from .export import read_json, vae_scale_factor


def stage_seconds(run):
    """Wall time per training stage from log.txt (gaps over 10 minutes are restarts, not work)."""
    times, last = {}, {}
    pat = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] (\w+): step (\d+)/")
    with open(os.path.join(run, "log.txt")) as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            t = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])
            stage = m[4]
            if stage in last and 0 <= t - last[stage] < 600:
                times[stage] = times.get(stage, 0) + t - last[stage]
            last[stage] = t
    return times


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def write(run, P, preset, out, res, models):
    """models: pipeline.Models (for the parameter counts); res: evaluate.evaluate()'s result."""
    m = read_json(os.path.join(out, "manifest.json"))
    tr = read_json(os.path.join(out, "transformer", "config.json"))
    vae = read_json(os.path.join(out, "vae_decoder", "config.json"))
    te = read_json(os.path.join(out, "text_encoder", "config.json"))
    sched = read_json(os.path.join(out, "scheduler", "scheduler_config.json"))
    image, f, C, p = vae["sample_size"], vae_scale_factor(vae), vae["latent_channels"], tr["patch_size"]
    tokens = (tr["sample_size"] // p) ** 2
    secs = stage_seconds(run)
    size = sum(v["bytes"] for v in m["files"].values())
    sh, em, rt = res["shapes"], res["emoji"], res["retrieval"]
    d = m["defaults"]
    abl_path = os.path.join(out, "vae_ablation.json")
    if os.path.exists(abl_path):
        abl = read_json(abl_path)
        rows = " | ".join(f"C={c}: {v} dB" for c, v in abl["psnr_db"].items())
        ablation = (f"Latent channels, measured by `training/vae_ablation.py` (same VAE recipe, {abl['steps']} steps x {abl['batch']}, "
                    f"PSNR on {abl['val_images']} held-out images): {rows}. We ship C={C}: best at equal budget here, "
                    f"and the DiT's token input stays small ({p}x{p}x{C} values); "
                    f"the full {P.vae_steps}-step training of C={C} reached the PSNR below.")
    else:
        ablation = "Latent channel ablation: run `training/vae_ablation.py`."
    sweep = "\n".join(f"| {r['num_inference_steps']} | {r['guidance_scale']} | {r['shift']} | {r['shapes_held_in']['colour']:.2f} / {r['shapes_held_in']['shape']:.2f} | "
                      f"{r['shapes_held_out']['colour']:.2f} / {r['shapes_held_out']['shape']:.2f} | {r['emoji_top5_clip']:.2f} | {r['score']:.3f} |"
                      for r in res["sweep"])
    text = f"""# {m['name']} (`{m['id']}`)

WebDiT's own default text-to-image model: a KL VAE, a CLIP-style text encoder and a diffusion
transformer (DiT) trained with rectified flow matching, the recipe of Stable Diffusion 3 at a
tiny size. It makes {image}x{image} emoji in three styles and simple shape scenes.
Made by `training/train.py --preset {preset}` (one command, resumable).

![samples](samples.png)

*First 32: shape prompts (held-in, then held-out colour x shape); last 32: emoji prompts. Defaults, seeds {EVAL_SEED}+.*

## Use

Open the WebDiT studio: this folder is embedded and loads with the page. Defaults: {d['num_inference_steps']} Euler steps,
guidance (CFG) {d['guidance_scale']}, shift {sched['shift']} (chosen by the sweep below). Image-to-image
uses `vae_encoder/` (strength 1 = from noise).
Prompts that work: `"a large red heart in the center on a white background"`,
`"cat face, noto style"`, `"rocket, fluent style"`, `"🐱 twemoji style"`.

## Architecture and sizes

| part | graph | parameters | details |
|---|---|---|---|
| DiT | `transformer/model.onnx` | {n_params(models.transformer):,} | latent {C}x{tr['sample_size']}x{tr['sample_size']}, patch {p} -> {tokens} tokens, width {tr['hidden_size']}, depth {tr['num_layers']}, {tr['num_attention_heads']} heads; self-attention, cross-attention to the text tokens, adaLN-Zero from timestep + pooled text; predicts velocity |
| VAE decoder | `vae_decoder/model.onnx` | {n_params(models.vae.decoder):,} | KL autoencoder, f={f}, {C} latent channels; scaling {vae['scaling_factor']}, shift {vae['shift_factor']} (from the data) |
| VAE encoder | `vae_encoder/model.onnx` | {n_params(models.vae.encoder):,} | image -> posterior mean (image-to-image) |
| text encoder | `text_encoder/model.onnx` | {n_params(models.text_encoder):,} | causal transformer, WordPiece vocabulary of {te['vocab_size']} (`tokenizer/`), {te['max_position_embeddings']} tokens, width {te['hidden_size']}, pooled projection {te['projection_dim']}; trained contrastively (CLIP) against a small conv image tower |

f={f} keeps the DiT at {tokens} tokens (patch {p}), which is what makes a CFG step about 45 ms in
WASM (`npm run bench`). {ablation}

Files: {size / 1e6:.1f} MB in all (fp32 ONNX, opset 17), in diffusers' layout (`model_index.json`, one folder per
component with its `config.json`), listed with bytes and sha256 in `manifest.json`.

## Training

Flow matching as SD3: `x_t = (1 - t) x0 + t eps`, target `eps - x0`, logit-normal `t`, 10% caption
dropout for CFG, EMA with warm-up (`min(0.9999, (1 + step) / (10 + step))`), AdamW, cosine LR,
bf16 autocast on CPU. VAE latents and text embeddings are computed once and cached.

| stage | steps x batch | wall time |
|---|---|---|
| VAE | {P.vae_steps} x {P.vae_batch} | {secs.get('vae', 0) / 60:.1f} min |
| text encoder (CLIP) | {P.clip_steps} x {P.clip_batch} | {secs.get('clip', 0) / 60:.1f} min |
| DiT | {P.dit_steps} x {P.dit_batch} | {secs.get('dit', 0) / 60:.1f} min |

Compute: a 2-core x86 CPU with AVX512-BF16 (no GPU), PyTorch 1.13 with OpenBLAS. Wall times are
from `log.txt` and include other work sharing the two cores.

## Evaluation (`evaluation.json`, printed by `training/evaluate.py`)

| metric | value | target |
|---|---|---|
| VAE reconstruction PSNR, {res['vae_psnr_n']} held-out images | {res['vae_psnr_db']:.2f} dB | >= 30 dB |
| text -> image retrieval top-1 / top-5 ({rt['n']} held-out pairs) | {rt['text_to_image_top1']:.3f} / {rt['text_to_image_top5']:.3f} | |
| image -> text retrieval top-1 / top-5 | {rt['image_to_text_top1']:.3f} / {rt['image_to_text_top5']:.3f} | |
| shapes held-in: colour / shape ({sh['held_in']['n']} prompts) | {sh['held_in']['colour']:.3f} / {sh['held_in']['shape']:.3f} | >= 0.95 / 0.90 |
| shapes held-out: colour / shape ({sh['held_out']['n']} prompts) | {sh['held_out']['colour']:.3f} / {sh['held_out']['shape']:.3f} | >= 0.80 / 0.70 |
| emoji top-5, CLIP image space ({em['n']} prompts) | {em['top5_clip']:.3f} (shuffled {em['top5_clip_shuffled']:.3f}) | >= 0.50 (shuffled <= 0.05) |
| emoji top-5, 16x16 pixel space | {em['top5_pixels16']:.3f} (shuffled {em['top5_pixels16_shuffled']:.3f}) | |

The shape checker reads colour and shape off the pixels (background = most common colour,
colour = nearest named colour, shape = best IoU against masks drawn by the dataset code). On
{res['shape_checker_on_real_renders']['n']} real single-shape renders it reads colour
{res['shape_checker_on_real_renders']['colour']:.3f} and shape {res['shape_checker_on_real_renders']['shape']:.3f}
correctly, which bounds what it can say about generated images.

Sampling sweep (a subset of prompts; the best score became the default):

| steps | guidance | shift | held-in colour / shape | held-out colour / shape | emoji top-5 | score |
|---|---|---|---|---|---|---|
{sweep}

## Limits

- {image}x{image} only; emoji and simple shapes only: anything else comes out as an emoji-like blob.
- The text encoder knows only the words in its captions; unknown words are spelled out in
  sub-word pieces it has rarely seen, and prompts longer than {te['max_position_embeddings']} tokens are truncated.
- Trained for minutes on a CPU: see the numbers above for where it falls short of the targets.
  More DiT steps (the `cuda` preset), a wider DiT and a longer CLIP run are what would close the gap.

## Licences

Model weights: same licence as the WebDiT repository. Training images: Noto Emoji (Apache-2.0),
Twemoji graphics (CC-BY 4.0, by Twitter, Inc and other contributors), Fluent Emoji (MIT, Microsoft);
names from CLDR via emojibase-data (Unicode License v3 / MIT). See `training/DATA.md`.

_Generated {datetime.date.today().isoformat()} by training/webdit/modelcard.py._
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)
    return text


def replace_block(path, begin, end, block, before=("## Limits",)):
    """Write `block` (which starts with `begin` and ends with `end` + newline) into the card at path:
    in place of the text between the markers when they are there, else before the first heading or
    marker of `before` found, else at the end. The sections other tools write stay as they are."""
    with open(path) as f:
        text = f.read()
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end) + 1:]
    else:
        anchor = next((m for m in before if m in text), None)
        text = text.replace(anchor, block + "\n" + anchor, 1) if anchor else text + "\n" + block
    with open(path, "w") as f:
        f.write(text)
