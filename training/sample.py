"""Flow-matching sampling exactly as DESIGN.md §2-3 (and as src/engine does in the browser)."""
import math

import numpy as np
import torch


def mulberry32_normal(seed, n):
    """n standard normals from mulberry32(seed) + Box-Muller, float64 -> float32 (bit-exact with TS)."""
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


def initial_noise(seed, shape):  # shape (B,C,h,w); image b uses seed + b
    B, per = shape[0], int(np.prod(shape[1:]))
    return np.stack([mulberry32_normal(seed + b, per) for b in range(B)]).reshape(shape)


def sigmas(steps, shift):
    """diffusers FlowMatchEulerDiscreteScheduler: shifted once at init, linspace, shifted again."""
    shiftf = lambda x: shift * x / (1 + (shift - 1) * x)
    sigma_max, sigma_min = 1.0, shiftf(1.0 / 1000)
    t = np.linspace(sigma_max, sigma_min, steps, dtype=np.float64)
    return np.concatenate([shiftf(t), [0.0]]).astype(np.float32)


@torch.no_grad()
def sample(dit, ctx, pooled, ctx_un, pooled_un, latents, steps, guidance, shift, callback=None):
    """Euler loop with CFG as one batch of 2 ([uncond, cond]); uncond skipped when guidance <= 1.
    ctx (B,L,D), pooled (B,P), latents (B,C,h,w) float32 -> final latents."""
    x = latents.clone()
    sig = sigmas(steps, shift)
    B = x.shape[0]
    for i in range(steps):
        t = torch.full((B,), float(sig[i]) * 1000.0)
        if guidance > 1:
            v_un, v_c = dit(torch.cat([x, x]), torch.cat([ctx_un, ctx]), torch.cat([pooled_un, pooled]),
                            torch.cat([t, t])).chunk(2)
            v = v_un + guidance * (v_c - v_un)
        else:
            v = dit(x, ctx, pooled, t)
        x = x + (float(sig[i + 1]) - float(sig[i])) * v
        if callback:
            callback(i, x)
    return x


def to_uint8(img):  # (B,3,H,W) in [-1,1] -> (B,H,W,3) uint8, as the engine writes RGBA
    x = ((img.clamp(-1, 1) + 1) * 127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()
