"""Writes the model card (README.md) of the exported model folder from the run's log, the
manifest and evaluation.json, so every number in it is the one the recipe printed."""
import datetime
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


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


def write(run, P, out, res):
    with open(os.path.join(out, "manifest.json")) as f:
        m = json.load(f)
    secs = stage_seconds(run)
    size = sum(v["bytes"] for v in m["files"].values())
    sh, em, rt = res["shapes"], res["emoji"], res["retrieval"]
    d = m["defaults"]
    abl_path = os.path.join(out, "vae_ablation.json")
    if os.path.exists(abl_path):
        abl = json.load(open(abl_path))
        rows = " | ".join(f"C={c}: {v} dB" for c, v in abl["psnr_db"].items())
        ablation = (f"Latent channels, measured by `training/vae_ablation.py` (same VAE, {abl['steps']} steps x {abl['batch']}, "
                    f"PSNR on {abl['val_images']} held-out images): {rows}. We ship C={m['latent_channels']}: best at equal budget here, "
                    f"and the DiT's token input stays small ({m['patch_size']}x{m['patch_size']}x{m['latent_channels']} values); "
                    "the full 2000-step training of C=8 reached the PSNR below.")
    else:
        ablation = "Latent channel ablation: run `training/vae_ablation.py`."
    sweep = "\n".join(f"| {r['steps']} | {r['guidance']} | {r['shift']} | {r['shapes_held_in']['colour']:.2f} / {r['shapes_held_in']['shape']:.2f} | "
                      f"{r['shapes_held_out']['colour']:.2f} / {r['shapes_held_out']['shape']:.2f} | {r['emoji_top5_clip']:.2f} | {r['score']:.3f} |"
                      for r in res["sweep"])
    text = f"""# {m['name']} (`{m['id']}`)

WebDiT's own default text-to-image model: a KL VAE, a CLIP-style text encoder and a diffusion
transformer (DiT) trained with rectified flow matching, the recipe of Stable Diffusion 3 at a
tiny size. It makes {m['image_size']}x{m['image_size']} emoji in three styles and simple shape scenes.
Made by `training/train.py --preset {m.get('preset', 'cpu')}` (one command, resumable).

![samples](samples.png)

*First 32: shape prompts (held-in, then held-out colour x shape); last 32: emoji prompts. Defaults, seeds 1000+.*

## Use

Open the WebDiT studio: this folder is embedded and loads with the page. Defaults: {d['steps']} Euler steps,
guidance (CFG) {d['guidance_scale']}, shift {m['scheduler']['shift']} (chosen by the sweep below).
Prompts that work: `"a large red heart in the center on a white background"`,
`"cat face, noto style"`, `"rocket, fluent style"`, `"🐱 twemoji style"`.

## Architecture and sizes

| part | graph | parameters | details |
|---|---|---|---|
| DiT | `transformer.onnx` | {m['params']['transformer']:,} | latent {m['latent_channels']}x{m['latent_size']}x{m['latent_size']}, patch {m['patch_size']} -> {(m['latent_size'] // m['patch_size']) ** 2} tokens, width {m['dit']['hidden']}, depth {m['dit']['depth']}, {m['dit']['heads']} heads; self-attention, cross-attention to the text tokens, adaLN-Zero from timestep + pooled text; predicts velocity |
| VAE decoder | `vae_decoder.onnx` | {m['params']['vae_decoder']:,} | KL autoencoder, f=4, {m['latent_channels']} latent channels; scaling {m['scaling_factor']}, shift {m['shift_factor']} (from the data) |
| text encoder | `text_encoder/onnx/text_model.onnx` | {m['params']['text_encoder']:,} | causal transformer, WordPiece vocabulary of {json.load(open(os.path.join(out, 'text_encoder', 'config.json')))['vocab_size']}, {m['text_max_length']} tokens, width {m['text_hidden_size']}, pooled projection {m['pooled_dim']}; trained contrastively (CLIP) against a small conv image tower |

f=4 keeps the DiT at {(m['latent_size'] // m['patch_size']) ** 2} tokens (patch {m['patch_size']}), which is what makes a CFG step about 45 ms in
WASM (`npm run bench`). {ablation}

Files: {size / 1e6:.1f} MB in all (fp32 ONNX, opset 17), listed with bytes and sha256 in `manifest.json`.

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

- {m['image_size']}x{m['image_size']} only; emoji and simple shapes only: anything else comes out as an emoji-like blob.
- The text encoder knows only the words in its captions; unknown words are spelled out in
  sub-word pieces it has rarely seen, and prompts longer than {m['text_max_length']} tokens are truncated.
- Trained for minutes on a CPU: see the numbers above for where it falls short of the targets.
  More DiT steps (the `cuda` preset), a wider DiT and a longer CLIP run are what would close the gap.

## Licences

Model weights: same licence as the WebDiT repository. Training images: Noto Emoji (Apache-2.0),
Twemoji graphics (CC-BY 4.0, by Twitter, Inc and other contributors), Fluent Emoji (MIT, Microsoft);
names from CLDR via emojibase-data (Unicode License v3 / MIT). See `training/DATA.md`.

_Generated {datetime.date.today().isoformat()} by training/modelcard.py._
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)
    return text
