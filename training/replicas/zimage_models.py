"""Tiny PyTorch twins of Z-Image-Turbo's components, our own code written from the public
descriptions of transformers' Qwen3Model and diffusers' ZImageTransformer2DModel / ZImagePipeline,
configured by dicts with the real config field names. Inference only, fp32 arithmetic. The VAE
decoder is sd3_models.Decoder (an AutoencoderKL decoder; FLUX's VAE has the same structure and
16 latent channels, without quant convs).

Torch 1.13 has no scaled_dot_product_attention and no complex ONNX export: attention is written out
and rotary embeddings use cos/sin on (even, odd) pairs."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from replicas.sd3_models import PlainLayerNorm, attention, merge_heads


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


# ---- Qwen3 (decoder-only text encoder) ---------------------------------------------------------
def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class Qwen3Attention(nn.Module):
    """GQA with per-head RMSNorm on q and k (Qwen3), rotary embedding in Llama's half-split form."""

    def __init__(self, c):
        super().__init__()
        D, hd = c["hidden_size"], c["head_dim"]
        self.heads, self.kv_heads, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
        self.q_proj = nn.Linear(D, self.heads * hd, bias=c["attention_bias"])
        self.k_proj = nn.Linear(D, self.kv_heads * hd, bias=c["attention_bias"])
        self.v_proj = nn.Linear(D, self.kv_heads * hd, bias=c["attention_bias"])
        self.o_proj = nn.Linear(self.heads * hd, D, bias=c["attention_bias"])
        self.q_norm, self.k_norm = RMSNorm(hd, c["rms_norm_eps"]), RMSNorm(hd, c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):  # x (B,L,D), cos/sin (L,hd), mask (B,1,L,L) additive
        B, L, _ = x.shape
        q = self.q_norm(self.q_proj(x).reshape(B, L, self.heads, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).reshape(B, L, self.kv_heads, self.hd)).transpose(1, 2)
        v = self.v_proj(x).reshape(B, L, self.kv_heads, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        # each kv head serves `rep` query heads in a row (repeat_interleave, written out for the exporter)
        k, v = (t[:, :, None].expand(B, self.kv_heads, rep, L, self.hd).reshape(B, self.heads, L, self.hd) for t in (k, v))
        return self.o_proj(merge_heads(attention(q, k, v, mask, self.hd ** -0.5)))


class Qwen3Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, eps = c["hidden_size"], c["rms_norm_eps"]
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(D, eps), RMSNorm(D, eps)
        self.self_attn = Qwen3Attention(c)
        self.gate_proj = nn.Linear(D, c["intermediate_size"], bias=False)
        self.up_proj = nn.Linear(D, c["intermediate_size"], bias=False)
        self.down_proj = nn.Linear(c["intermediate_size"], D, bias=False)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Qwen3Model(nn.Module):
    """input_ids (B,L) int64, attention_mask (B,L) int64 -> all hidden states, as transformers'
    Qwen3Model(output_hidden_states=True): [embeddings, layer 1 .. layer N-1 outputs, norm(layer N)]
    (N + 1 tensors; the last one has the final RMSNorm, the others none)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList(Qwen3Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, input_ids, attention_mask):
        B, L = input_ids.shape
        hd = self.c["head_dim"]
        inv = 1.0 / self.c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        ang = torch.arange(L, dtype=torch.float32)[:, None] * inv[None]
        emb = torch.cat([ang, ang], dim=-1)
        cos, sin = emb.cos(), emb.sin()
        i = torch.arange(L)
        causal = (i[None, :] > i[:, None]).float() * -1e9  # (L,L)
        keep = attention_mask.to(torch.float32)[:, None, None, :]  # (B,1,1,L)
        mask = causal[None, None] + (1.0 - keep) * -1e9
        x = self.embed_tokens(input_ids)
        hidden = [x]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
            hidden.append(x)
        hidden[-1] = self.norm(x)
        return hidden


class TextEncoderGraph(nn.Module):
    """The exported text encoder: (input_ids, attention_mask) -> one tensor, the second-to-last hidden
    state (diffusers' ZImagePipeline: `hidden_states[-2]`). `layer` picks another one (sensitivity)."""

    def __init__(self, model, layer=-2):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids, attention_mask)[self.layer]


# ---- Z-Image single-stream DiT ----------------------------------------------------------------
def timestep_embedding(t, dim=256, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_3d(pos, axes_dims, theta):
    """pos (S,3) float -> cos, sin (S, sum(axes_dims)/2): one rotary table per axis, side by side."""
    angles = []
    for a, d in enumerate(axes_dims):
        inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d)
        angles.append(pos[:, a:a + 1] * inv[None])
    ang = torch.cat(angles, dim=-1)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    """x (B,H,S,d): rotate each (even, odd) pair by its angle (Z-Image multiplies complex pairs)."""
    B, H, S, d = x.shape
    x = x.reshape(B, H, S, d // 2, 2)
    x0, x1 = x[..., 0], x[..., 1]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).reshape(B, H, S, d)


class ZImageAttention(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.norm_q, self.norm_k = RMSNorm(self.hd, eps), RMSNorm(self.hd, eps)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x, cos, sin):
        B, S, _ = x.shape
        q, k, v = (p(x).reshape(B, S, self.heads, self.hd).transpose(1, 2) for p in (self.to_q, self.to_k, self.to_v))
        q, k = apply_rope(self.norm_q(q), cos, sin), apply_rope(self.norm_k(k), cos, sin)
        return self.to_out(merge_heads(attention(q, k, v, None, self.hd ** -0.5)))


class ZImageBlock(nn.Module):
    """Pre- and post-norm (RMSNorm) attention and SwiGLU feed-forward; with `modulation`, adaLN from
    the timestep embedding scales the inputs and tanh-gates the residual updates."""

    def __init__(self, c, modulation):
        super().__init__()
        dim, eps = c["dim"], c["norm_eps"]
        self.attention = ZImageAttention(dim, c["n_heads"], eps)
        hidden = int(dim / 3 * 8)
        self.w1, self.w3 = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.attention_norm1, self.attention_norm2 = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.ffn_norm1, self.ffn_norm2 = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.modulation = modulation
        if modulation:
            self.adaLN_modulation = nn.Linear(min(dim, 256), 4 * dim)

    def forward(self, x, cos, sin, temb=None):
        ff = lambda h: self.w2(F.silu(self.w1(h)) * self.w3(h))  # noqa: E731
        if self.modulation:
            scale_msa, gate_msa, scale_mlp, gate_mlp = self.adaLN_modulation(temb)[:, None].chunk(4, dim=-1)
            x = x + gate_msa.tanh() * self.attention_norm2(self.attention(self.attention_norm1(x) * (1 + scale_msa), cos, sin))
            return x + gate_mlp.tanh() * self.ffn_norm2(ff(self.ffn_norm1(x) * (1 + scale_mlp)))
        x = x + self.attention_norm2(self.attention(self.attention_norm1(x), cos, sin))
        return x + self.ffn_norm2(ff(self.ffn_norm1(x)))


class ZImageTransformer(nn.Module):
    """latents (B,C,H,W), t (B,) in [0,1] (= 1 - sigma; 1 is the clean end), caption features
    (B,L,cap_feat_dim) -> model output (B,C,H,W). The pipeline's velocity is its NEGATIVE
    (diffusers' ZImagePipeline: noise_pred = -model_out). Single stream: the noise refiner sees image
    tokens, the context refiner caption tokens, then the main layers see [image, caption] together;
    3-axis rotary positions: caption token j at (j+1, 0, 0), image patch (h, w) at (L+1, h, w)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        dim, C, p = c["dim"], c["in_channels"], c["all_patch_size"][0]
        assert c["all_f_patch_size"] == [1] and sum(c["axes_dims"]) == dim // c["n_heads"]
        adaln = min(dim, 256)
        self.x_embedder = nn.Linear(p * p * C, dim)
        self.t_embedder_1, self.t_embedder_2 = nn.Linear(256, adaln), nn.Linear(adaln, adaln)
        self.cap_norm = RMSNorm(c["cap_feat_dim"], c["norm_eps"])
        self.cap_embedder = nn.Linear(c["cap_feat_dim"], dim)
        self.noise_refiner = nn.ModuleList(ZImageBlock(c, True) for _ in range(c["n_refiner_layers"]))
        self.context_refiner = nn.ModuleList(ZImageBlock(c, False) for _ in range(c["n_refiner_layers"]))
        self.layers = nn.ModuleList(ZImageBlock(c, True) for _ in range(c["n_layers"]))
        self.norm_final = PlainLayerNorm(dim, 1e-6)
        self.final_modulation = nn.Linear(adaln, dim)
        self.final_linear = nn.Linear(dim, p * p * C)

    def forward(self, latents, t, cap):
        B, C, H, W = latents.shape
        p, L = self.c["all_patch_size"][0], cap.shape[1]
        h, w = H // p, W // p
        x = latents.reshape(B, C, h, p, w, p).permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, p * p * C)
        x = self.x_embedder(x)
        temb = self.t_embedder_2(F.silu(self.t_embedder_1(timestep_embedding(t * self.c["t_scale"]))))
        c = self.cap_embedder(self.cap_norm(cap))
        j = torch.arange(L, dtype=torch.float32)
        cap_pos = torch.stack([j + 1, torch.zeros_like(j), torch.zeros_like(j)], dim=-1)
        hh = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w).reshape(-1)
        ww = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w).reshape(-1)
        img_pos = torch.stack([torch.full_like(hh, 1.0) * (L + 1), hh, ww], dim=-1)
        img_cos, img_sin = rope_3d(img_pos, self.c["axes_dims"], self.c["rope_theta"])
        cap_cos, cap_sin = rope_3d(cap_pos, self.c["axes_dims"], self.c["rope_theta"])
        for blk in self.noise_refiner:
            x = blk(x, img_cos, img_sin, temb)
        for blk in self.context_refiner:
            c = blk(c, cap_cos, cap_sin)
        u = torch.cat([x, c], dim=1)
        cos, sin = torch.cat([img_cos, cap_cos]), torch.cat([img_sin, cap_sin])
        for blk in self.layers:
            u = blk(u, cos, sin, temb)
        x = u[:, :h * w]
        x = self.final_linear(self.norm_final(x) * (1 + self.final_modulation(F.silu(temb))[:, None]))
        return x.reshape(B, h, w, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)


# ---- the graphs of both contract versions -------------------------------------------------------
class TransformerV1(nn.Module):
    """Older contract: hidden_states (1,16,1,h,w) f32, timestep (1,), encoder_hidden_states (1,L,D) ->
    unified_results (16,1,h,w) (the first, and only, image's output; no batch axis)."""

    def __init__(self, dit):
        super().__init__()
        self.dit = dit

    def forward(self, hidden_states, timestep, encoder_hidden_states):
        out = self.dit(hidden_states[:, :, 0], timestep, encoder_hidden_states)
        return out[0].unsqueeze(1)


class Fp16IO(nn.Module):
    """Newer contract: every float input arrives as fp16 and every output leaves as fp16; inside, fp32."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        out = self.inner(*(a.float() if a.is_floating_point() else a for a in args))
        return out.half()


class VaePreProcess(nn.Module):
    """latents -> latents / scaling_factor + shift_factor, squeezing the frame axis of 5-D latents."""

    def __init__(self, scaling_factor, shift_factor, five_d):
        super().__init__()
        self.scaling_factor, self.shift_factor, self.five_d = scaling_factor, shift_factor, five_d

    def forward(self, latents):
        if self.five_d:
            latents = latents[:, :, 0]
        return latents / self.scaling_factor + self.shift_factor


class SchedulerStep(nn.Module):
    """One Euler step as the webnn demo's scheduler_step graph is fed (noise_pred = the transformer's
    output, step_info = [i, N]): sigma_i = shift(1 - i/(N-1)) (linspace 1 -> 0, diffusers' Z-Image
    sigma_min 0), next sigma clamped at 0, velocity = -noise_pred. The replica's own: the real graph's
    internals are not known (WebDiT runs the step in TypeScript and never downloads this graph)."""

    def __init__(self, shift, five_d):
        super().__init__()
        self.shift, self.five_d = shift, five_d

    def forward(self, noise_pred, latents, step_info):
        i, n = step_info[0], step_info[1]
        denom = torch.clamp(n - 1, min=1.0)
        shiftf = lambda x: self.shift * x / (1 + (self.shift - 1) * x)  # noqa: E731
        sigma = shiftf(torch.clamp(1 - i / denom, min=0.0))
        sigma_next = shiftf(torch.clamp(1 - (i + 1) / denom, min=0.0))
        v = -(noise_pred.unsqueeze(0) if self.five_d else noise_pred)
        return latents + (sigma_next - sigma) * v
