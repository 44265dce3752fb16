"""The reference pipeline: prompt (+ image) -> noise -> Euler/CFG -> decode, exactly as DESIGN.md §2-3
and as src/engine does it in the browser, with the same names (getSigmas -> get_sigmas, ...).
Fixtures, evaluation and sampling all call generate(); nothing else writes the loop."""
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .config import SchedulerConfig
from .data import to_tensor_images
from .models import DiT, VAE, TextEncoder
from .tokenizer import WordPieceTokenizer


@dataclass(frozen=True)
class Models:
    """What generate() needs, float32 on the CPU in eval mode (as exported)."""
    transformer: DiT
    vae: VAE
    text_encoder: TextEncoder
    tokenizer: WordPieceTokenizer
    scheduler: SchedulerConfig
    scaling_factor: float
    shift_factor: float

    def with_shift(self, shift):
        return replace(self, scheduler=replace(self.scheduler, shift=float(shift)))


# ---- noise: mulberry32 + Box-Muller, bit-identical with src/engine ------------------------------
def _mulberry32_normals(seed, n):
    """n standard normals from mulberry32(seed) + Box-Muller, float64 -> float32."""
    s = seed & 0xFFFFFFFF
    out = np.empty(n, np.float64)

    def nxt():
        nonlocal s
        s = (s + 0x6D2B79F5) & 0xFFFFFFFF
        t = s
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296.0

    i = 0
    while i < n:
        u1 = 1.0 - nxt()
        u2 = nxt()
        r = math.sqrt(-2.0 * math.log(u1))
        out[i] = r * math.cos(2 * math.pi * u2)
        if i + 1 < n:
            out[i + 1] = r * math.sin(2 * math.pi * u2)
        i += 2
    return out.astype(np.float32)


def initial_latents(seed, shape):
    """shape (B,C,h,w), filled in NCHW order; image b of the batch uses seed + b. float32 numpy."""
    B, per = shape[0], int(np.prod(shape[1:]))
    return np.stack([_mulberry32_normals(seed + b, per) for b in range(B)]).reshape(shape)


# ---- animations: slerp between two noises, lerp between two prompts' conditioning ---------------
SLERP_DOT_THRESHOLD = 0.9995  # nearly parallel: the arc is a line, and sin(theta) ~ 0 would divide by ~0


def slerp(a, b, t, dot_threshold=SLERP_DOT_THRESHOLD):
    """Spherical interpolation of two noise arrays as flat vectors, in float64, stored float32:
    t = 0 gives exactly a, t = 1 exactly b. The same formula as src/engine/core/animation.ts."""
    a64, b64 = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    dot = float(np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    if abs(dot) > dot_threshold:
        out = (1 - t) * a64 + t * b64
    else:
        theta = math.acos(dot)
        s = math.sin(theta)
        out = (math.sin((1 - t) * theta) / s) * a64 + (math.sin(t * theta) / s) * b64
    return out.astype(np.float32).reshape(np.shape(a))


def animation_ts(frames):
    """t_i = i / (frames - 1), float64."""
    return [i / (frames - 1) for i in range(frames)]


def lerp(a, b, t):
    """(1 - t) a + t b in float64, stored float32 (torch tensors)."""
    return ((1 - t) * a.double() + t * b.double()).float()


@torch.no_grad()
def animation_inputs(models, kind, prompt, seed, to, frames):
    """The initial noise (frames,C,h,w) and the cond half of the text conditioning
    ((frames,L,D), (frames,P)) of an animation's frames:
      'seed':   noise_i = slerp(noise(seed), noise(to), t_i), every frame with the prompt's conditioning;
      'prompt': every frame from noise(seed), conditioning_i = lerp(encode(prompt), encode(to), t_i)
                for each tensor the transformer gets from the text encoder (hidden states and pooled)."""
    if frames < 2:
        raise ValueError(f"an animation needs at least 2 frames, not {frames}")
    dit = models.transformer
    one = (1, dit.cfg.in_channels, dit.cfg.sample_size, dit.cfg.sample_size)
    ts = animation_ts(frames)
    if kind == "seed":
        a, b = initial_latents(seed, one), initial_latents(int(to), one)
        noise = np.concatenate([slerp(a, b, t) for t in ts])
        ctx, pooled = encode_prompt(models, [prompt])
        return noise, (ctx.expand(frames, -1, -1), pooled.expand(frames, -1))
    if kind == "prompt":
        noise = np.concatenate([initial_latents(seed, one)] * frames)
        ctx, pooled = encode_prompt(models, [prompt, str(to)])
        return noise, (torch.cat([lerp(ctx[0:1], ctx[1:2], t) for t in ts]),
                       torch.cat([lerp(pooled[0:1], pooled[1:2], t) for t in ts]))
    raise ValueError(f"animation kind must be 'seed' or 'prompt', not {kind!r}")


@torch.no_grad()
def generate_animation(models, kind, prompt, negative_prompt, seed, to, frames, num_inference_steps, guidance_scale):
    """The frames of an animation as one batch: final latents (frames,C,h,w) and uint8 (frames,H,W,3)."""
    noise, text = animation_inputs(models, kind, prompt, seed, to, frames)
    return generate(models, [prompt] * frames, negative_prompt, seed, num_inference_steps, guidance_scale,
                    latents=noise, text=text)


# ---- scheduler: diffusers' FlowMatchEulerDiscreteScheduler, pure ------------------------------
def get_sigmas(num_inference_steps, shift, num_train_timesteps):
    """Shifted once at init (sigma_min), linspace, shifted again; a final 0. float32, length N + 1."""
    shiftf = lambda x: shift * x / (1 + (shift - 1) * x)  # noqa: E731
    sigma_max, sigma_min = 1.0, shiftf(1.0 / num_train_timesteps)
    t = np.linspace(sigma_max, sigma_min, num_inference_steps, dtype=np.float64)
    return np.concatenate([shiftf(t), [0.0]]).astype(np.float32)


def get_timesteps(sigmas, num_train_timesteps):
    """The transformer's timestep input for each step (the final 0 sigma has none)."""
    return np.asarray(sigmas[:-1], np.float32) * np.float32(num_train_timesteps)


def img2img_start(num_inference_steps, strength):
    """First step index k for image-to-image, as diffusers' SD3 img2img (and the TypeScript): float64."""
    N = num_inference_steps
    return int(max(N - min(N * strength, N), 0))


def euler_step(latents, velocity, sigma, sigma_next):
    return latents + (sigma_next - sigma) * velocity


def apply_guidance(v_uncond, v_cond, guidance_scale):
    return v_uncond + guidance_scale * (v_cond - v_uncond)


def to_uint8(img):
    """(B,3,H,W) in [-1,1] -> (B,H,W,3) uint8, as the engine writes RGBA."""
    x = ((img.clamp(-1, 1) + 1) * 127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


@torch.no_grad()
def encode_prompt(models, prompts):
    """-> last_hidden_state (B,L,D), text_embeds (B,P)."""
    ids = torch.tensor([models.tokenizer.encode(t) for t in prompts])
    return models.text_encoder(ids)


@torch.no_grad()
def encode_image(models, image):
    """uint8 (B,H,W,3) -> latents (B,C,h,w): posterior mean, shifted and scaled like the training latents."""
    mean = models.vae.encoder(to_tensor_images(image))[0]
    return (mean - models.shift_factor) * models.scaling_factor


@torch.no_grad()
def decode_latents(models, latents):
    """latents (B,C,h,w) -> uint8 (B,H,W,3)."""
    return to_uint8(models.vae.decoder(latents / models.scaling_factor + models.shift_factor))


@torch.no_grad()
def generate(models, prompt, negative_prompt, seed, num_inference_steps, guidance_scale, image=None, strength=1.0,
             latents=None, text=None):
    """prompt: a string, or a list (a batch: image b uses seed + b). image: uint8 (H,W,3), or (B,H,W,3)
    for a batch, starts image-to-image at strength. latents (B,C,h,w) numpy replaces the seeded
    noise, text = (ctx, pooled) the prompts' encoding (animations). Returns the final latents
    (B,C,h,w) float32 numpy and the image uint8: (H,W,3) for a string prompt, (B,H,W,3) for a list."""
    single = isinstance(prompt, str)
    prompts = [prompt] if single else list(prompt)
    B, dit, T = len(prompts), models.transformer, models.scheduler.num_train_timesteps
    N = num_inference_steps
    # 1. encode the prompts; negative first: CFG runs as one batch [uncond, cond]
    ctx, pooled = encode_prompt(models, prompts) if text is None else text
    ctx_un, pooled_un = encode_prompt(models, [negative_prompt])
    ctx_un, pooled_un = ctx_un.expand(B, -1, -1), pooled_un.expand(B, -1)
    # 2. sigmas
    sigmas = get_sigmas(N, models.scheduler.shift, T)
    timesteps = get_timesteps(sigmas, T)
    # 3. initial latents: noise, or the image's latents noised to sigma_k
    shape = (B, dit.cfg.in_channels, dit.cfg.sample_size, dit.cfg.sample_size)
    latents = torch.from_numpy(initial_latents(seed, shape) if latents is None else np.array(latents, np.float32).reshape(shape))
    k = 0
    if image is not None:
        k = img2img_start(N, strength)
        if k >= N:
            raise ValueError(f"strength {strength} with {N} steps leaves no denoising step "
                             f"(k = {k}): raise strength or num_inference_steps")
        image = np.array(image, np.uint8)  # a copy: torch wants writable memory
        x0 = encode_image(models, image[None] if image.ndim == 3 else image)
        latents = float(sigmas[k]) * latents + (1 - float(sigmas[k])) * x0
    # 4. denoise: Euler steps k..N-1 with classifier-free guidance (uncond skipped when guidance <= 1)
    for i in range(k, N):
        t = torch.full((B,), float(timesteps[i]))
        if guidance_scale > 1:
            v_un, v_c = dit(torch.cat([latents, latents]), torch.cat([ctx_un, ctx]),
                            torch.cat([pooled_un, pooled]), torch.cat([t, t])).chunk(2)
            v = apply_guidance(v_un, v_c, guidance_scale)
        else:
            v = dit(latents, ctx, pooled, t)
        latents = euler_step(latents, v, float(sigmas[i]), float(sigmas[i + 1]))
    # 5. decode
    rgb = decode_latents(models, latents)
    return latents.numpy(), (rgb[0] if single else rgb)
