"""Tiny PyTorch twins of the SD3 components, our own code written from the public descriptions of
transformers' CLIPTextModelWithProjection / T5EncoderModel and diffusers' SD3Transformer2DModel /
AutoencoderKL, configured by dicts with the real config.json field names. Only what the ONNX graphs
and the golden pipeline need (inference, fp32, no dropout). Torch 1.13 has no
scaled_dot_product_attention and exports LayerNorm(elementwise_affine=False) badly at opset 17, so
attention is written out and parameter-free LayerNorms use fixed ones/zeros buffers."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def attention(q, k, v, bias=None, scale=None):
    """q (B,H,Sq,d), k/v (B,H,Sk,d) -> (B,H,Sq,d). bias is added to the scores (a mask or T5's)."""
    scores = q @ k.transpose(-1, -2)
    if scale is not None:
        scores = scores * scale
    if bias is not None:
        scores = scores + bias
    return scores.softmax(-1) @ v


def split_heads(x, heads):  # (B,S,H*d) -> (B,H,S,d)
    B, S, _ = x.shape
    return x.reshape(B, S, heads, -1).transpose(1, 2)


def merge_heads(x):  # (B,H,S,d) -> (B,S,H*d)
    B, H, S, d = x.shape
    return x.transpose(1, 2).reshape(B, S, H * d)


class PlainLayerNorm(nn.Module):
    """LayerNorm without learned parameters (diffusers' elementwise_affine=False)."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps, self.dim = eps, dim
        self.register_buffer("ones", torch.ones(dim), persistent=False)
        self.register_buffer("zeros", torch.zeros(dim), persistent=False)

    def forward(self, x):
        return F.layer_norm(x, (self.dim,), self.ones, self.zeros, self.eps)


# ---- CLIP text encoder (CLIPTextModelWithProjection) ------------------------------------------
ACT = {"quick_gelu": lambda x: x * torch.sigmoid(1.702 * x), "gelu": F.gelu,
       "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


class CLIPLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, eps = c["hidden_size"], c["layer_norm_eps"]
        self.heads, self.act = c["num_attention_heads"], ACT[c["hidden_act"]]
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(D, eps=eps), nn.LayerNorm(D, eps=eps)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(D, D) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(D, c["intermediate_size"]), nn.Linear(c["intermediate_size"], D)

    def forward(self, x, mask):  # (B,L,D), mask (L,L) additive
        h = self.layer_norm1(x)
        q, k, v = (split_heads(p(h), self.heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        x = x + self.out_proj(merge_heads(attention(q, k, v, mask, q.shape[-1] ** -0.5)))
        return x + self.fc2(self.act(self.fc1(self.layer_norm2(x))))


class CLIPTextModelWithProjection(nn.Module):
    """input_ids (B,L) int64 -> text_embeds (B,P), last_hidden_state (B,L,D), hidden_states.0..N.
    Causal mask, no attention mask (SD3 passes none). Pooled at argmax(input_ids): transformers'
    rule when config.eos_token_id == 2 (the real SD3 configs), i.e. the first <|endoftext|>, the
    highest id of the vocab. hidden_states.N is the last layer's output BEFORE final_layer_norm."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        D = c["hidden_size"]
        self.token_embedding = nn.Embedding(c["vocab_size"], D)
        self.position_embedding = nn.Embedding(c["max_position_embeddings"], D)
        self.layers = nn.ModuleList(CLIPLayer(c) for _ in range(c["num_hidden_layers"]))
        self.final_layer_norm = nn.LayerNorm(D, eps=c["layer_norm_eps"])
        self.text_projection = nn.Linear(D, c["projection_dim"], bias=False)

    def forward(self, input_ids):
        B, L = input_ids.shape
        x = self.token_embedding(input_ids) + self.position_embedding.weight[:L]
        i = torch.arange(L)
        mask = torch.zeros(L, L).masked_fill(i[None, :] > i[:, None], float("-inf"))
        hidden = [x]
        for layer in self.layers:
            x = layer(x, mask)
            hidden.append(x)
        last = self.final_layer_norm(x)
        pooled = last[torch.arange(B), input_ids.to(torch.int32).argmax(-1)]
        return (self.text_projection(pooled), last, *hidden)


# ---- T5 encoder (T5EncoderModel, v1.1 style: gated-gelu, RMS norms, relative position bias) ----
class T5LayerNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def t5_relative_buckets(q_len, k_len, num_buckets, max_distance):
    """Bidirectional buckets of (key - query), as T5's _relative_position_bucket."""
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    num_buckets //= 2
    buckets = (rel > 0).to(torch.int64) * num_buckets
    rel = rel.abs()
    max_exact = num_buckets // 2
    large = max_exact + (torch.log(rel.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.int64)
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(rel < max_exact, rel, large)


class T5Block(nn.Module):
    def __init__(self, c, has_bias):
        super().__init__()
        D, inner, eps = c["d_model"], c["num_heads"] * c["d_kv"], c["layer_norm_epsilon"]
        self.heads = c["num_heads"]
        self.ln_attn, self.ln_ff = T5LayerNorm(D, eps), T5LayerNorm(D, eps)
        self.q, self.k, self.v = (nn.Linear(D, inner, bias=False) for _ in range(3))
        self.o = nn.Linear(inner, D, bias=False)
        self.wi_0, self.wi_1 = nn.Linear(D, c["d_ff"], bias=False), nn.Linear(D, c["d_ff"], bias=False)
        self.wo = nn.Linear(c["d_ff"], D, bias=False)
        self.act = ACT[c["dense_act_fn"]]
        if has_bias:
            self.relative_attention_bias = nn.Embedding(c["relative_attention_num_buckets"], self.heads)

    def forward(self, x, position_bias):
        h = self.ln_attn(x)
        q, k, v = (split_heads(p(h), self.heads) for p in (self.q, self.k, self.v))
        x = x + self.o(merge_heads(attention(q, k, v, position_bias)))  # T5: no 1/sqrt(d) scaling
        h = self.ln_ff(x)
        return x + self.wo(self.act(self.wi_0(h)) * self.wi_1(h))


class T5EncoderModel(nn.Module):
    """input_ids (B,L) int64 -> last_hidden_state (B,L,d_model). The first block owns the relative
    position bias; every block adds it. No attention mask (SD3 passes none)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.shared = nn.Embedding(c["vocab_size"], c["d_model"])
        self.block = nn.ModuleList(T5Block(c, i == 0) for i in range(c["num_layers"]))
        self.final_layer_norm = T5LayerNorm(c["d_model"], c["layer_norm_epsilon"])

    def forward(self, input_ids):
        L = input_ids.shape[1]
        x = self.shared(input_ids)
        buckets = t5_relative_buckets(L, L, self.c["relative_attention_num_buckets"], self.c["relative_attention_max_distance"])
        bias = self.block[0].relative_attention_bias(buckets).permute(2, 0, 1)[None]  # (1,H,L,L)
        for blk in self.block:
            x = blk(x, bias)
        return self.final_layer_norm(x)


# ---- SD3 MMDiT (SD3Transformer2DModel) --------------------------------------------------------
def sincos_1d(dim, pos):
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.outer(pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size, base_size):
    """diffusers' get_2d_sincos_pos_embed (interpolation_scale 1): (grid_size**2, dim)."""
    g = np.arange(grid_size, dtype=np.float64) / (grid_size / base_size)
    gw, gh = np.meshgrid(g, g)  # w goes first
    return np.concatenate([sincos_1d(dim // 2, gw), sincos_1d(dim // 2, gh)], axis=1)


def timestep_embedding(t, dim=256):
    """Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0): [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class PatchEmbed(nn.Module):
    """Conv patchify + a sincos table for pos_embed_max_size^2 patches, cropped at the centre to
    the input's h/p x w/p (SD3's cropped_pos_embed), so any size up to the max works."""

    def __init__(self, c, dim):
        super().__init__()
        p, m = c["patch_size"], c["pos_embed_max_size"]
        self.p, self.max = p, m
        self.proj = nn.Conv2d(c["in_channels"], dim, p, stride=p)
        table = sincos_2d(dim, m, c["sample_size"] // p)
        self.register_buffer("pos_embed", torch.from_numpy(table).float()[None])

    def forward(self, x):  # (B,C,H,W) -> (B,hw,dim)
        h, w = x.shape[-2] // self.p, x.shape[-1] // self.p
        top, left = (self.max - h) // 2, (self.max - w) // 2
        pe = self.pos_embed.reshape(1, self.max, self.max, -1)[:, top:top + h, left:left + w, :]
        return self.proj(x).flatten(2).transpose(1, 2) + pe.reshape(1, -1, pe.shape[-1])


class AdaLayerNormZero(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.linear, self.norm = nn.Linear(dim, 6 * dim), PlainLayerNorm(dim, 1e-6)

    def forward(self, x, emb):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.linear(F.silu(emb)).chunk(6, dim=1)
        return self.norm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None], gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNormContinuous(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.linear, self.norm = nn.Linear(dim, 2 * dim), PlainLayerNorm(dim, 1e-6)

    def forward(self, x, emb):
        scale, shift = self.linear(F.silu(emb)).chunk(2, dim=1)  # scale first
        return self.norm(x) * (1 + scale)[:, None, :] + shift[:, None, :]


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj_in, self.proj_out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.proj_out(F.gelu(self.proj_in(x), approximate="tanh"))


class JointTransformerBlock(nn.Module):
    """Two streams with their own weights, one attention over [image tokens, context tokens]
    (JointAttnProcessor: image first). context_pre_only (the last block): the context stream only
    feeds keys/values; its own output is dropped."""

    def __init__(self, dim, heads, head_dim, context_pre_only):
        super().__init__()
        self.heads, self.pre_only = heads, context_pre_only
        inner = heads * head_dim
        self.norm1 = AdaLayerNormZero(dim)
        self.norm1_context = AdaLayerNormContinuous(dim) if context_pre_only else AdaLayerNormZero(dim)
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner) for _ in range(3))
        self.add_q_proj, self.add_k_proj, self.add_v_proj = (nn.Linear(dim, inner) for _ in range(3))
        self.to_out = nn.Linear(inner, dim)
        self.norm2, self.ff = PlainLayerNorm(dim, 1e-6), FeedForward(dim)
        if not context_pre_only:
            self.to_add_out = nn.Linear(inner, dim)
            self.norm2_context, self.ff_context = PlainLayerNorm(dim, 1e-6), FeedForward(dim)

    def forward(self, x, ctx, temb):  # x (B,N,dim) image, ctx (B,M,dim) context
        nx, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(x, temb)
        if self.pre_only:
            nc = self.norm1_context(ctx, temb)
        else:
            nc, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(ctx, temb)
        H = self.heads
        q = torch.cat([split_heads(self.to_q(nx), H), split_heads(self.add_q_proj(nc), H)], dim=2)
        k = torch.cat([split_heads(self.to_k(nx), H), split_heads(self.add_k_proj(nc), H)], dim=2)
        v = torch.cat([split_heads(self.to_v(nx), H), split_heads(self.add_v_proj(nc), H)], dim=2)
        out = merge_heads(attention(q, k, v, None, q.shape[-1] ** -0.5))
        N = x.shape[1]
        x = x + gate_msa[:, None] * self.to_out(out[:, :N])
        x = x + gate_mlp[:, None] * self.ff(self.norm2(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None])
        if self.pre_only:
            return x, None
        ctx = ctx + c_gate_msa[:, None] * self.to_add_out(out[:, N:])
        ctx = ctx + c_gate_mlp[:, None] * self.ff_context(self.norm2_context(ctx) * (1 + c_scale_mlp[:, None]) + c_shift_mlp[:, None])
        return x, ctx


class SD3Transformer2DModel(nn.Module):
    """hidden_states (B,C,h,w), encoder_hidden_states (B,M,joint_attention_dim), pooled_projections
    (B,pooled_projection_dim), timestep (B,) float (= sigma * 1000) -> velocity (B,C,h,w)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        dim = c["num_attention_heads"] * c["attention_head_dim"]
        assert c["caption_projection_dim"] == dim, "caption_projection_dim must equal heads * head_dim"
        self.pos_embed = PatchEmbed(c, dim)
        self.time_linear_1, self.time_linear_2 = nn.Linear(256, dim), nn.Linear(dim, dim)
        self.text_linear_1, self.text_linear_2 = nn.Linear(c["pooled_projection_dim"], dim), nn.Linear(dim, dim)
        self.context_embedder = nn.Linear(c["joint_attention_dim"], c["caption_projection_dim"])
        n = c["num_layers"]
        self.transformer_blocks = nn.ModuleList(
            JointTransformerBlock(dim, c["num_attention_heads"], c["attention_head_dim"], i == n - 1) for i in range(n))
        self.norm_out = AdaLayerNormContinuous(dim)
        self.proj_out = nn.Linear(dim, c["patch_size"] ** 2 * c["out_channels"])

    def forward(self, hidden_states, encoder_hidden_states, pooled_projections, timestep):
        B, _, H, W = hidden_states.shape
        p, C = self.c["patch_size"], self.c["out_channels"]
        x = self.pos_embed(hidden_states)
        temb = self.time_linear_2(F.silu(self.time_linear_1(timestep_embedding(timestep))))
        temb = temb + self.text_linear_2(F.silu(self.text_linear_1(pooled_projections)))
        ctx = self.context_embedder(encoder_hidden_states)
        for blk in self.transformer_blocks:
            x, ctx = blk(x, ctx, temb)
        x = self.proj_out(self.norm_out(x, temb))  # (B,hw,p*p*C)
        x = x.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, H, W)


# ---- VAE (AutoencoderKL, SD3: 16 latent channels, no quant convs) -----------------------------
class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin, eps=1e-6), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout, eps=1e-6), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.shortcut(x) if self.shortcut is not None else x) + h


class MidAttention(nn.Module):
    """One head over all pixels, GroupNorm first, residual."""

    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(ch, ch) for _ in range(4))

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.group_norm(x).reshape(B, C, H * W).transpose(1, 2)[:, None]  # (B,1,HW,C)
        h = attention(self.to_q(h), self.to_k(h), self.to_v(h), None, C ** -0.5)
        return x + self.to_out(h[:, 0]).transpose(1, 2).reshape(B, C, H, W)


class MidBlock(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.res0, self.attn, self.res1 = ResnetBlock(ch, ch, groups), MidAttention(ch, groups), ResnetBlock(ch, ch, groups)

    def forward(self, x):
        return self.res1(self.attn(self.res0(x)))


class Decoder(nn.Module):
    """latent_sample (B,latent_channels,h,w) -> sample (B,3,8h,8w) for 4 blocks."""

    def __init__(self, c):
        super().__init__()
        ch, g, n = list(c["block_out_channels"]), c["norm_num_groups"], c["layers_per_block"] + 1
        self.conv_in = nn.Conv2d(c["latent_channels"], ch[-1], 3, padding=1)
        self.mid = MidBlock(ch[-1], g)
        blocks, cin = [], ch[-1]
        for i, cout in enumerate(reversed(ch)):
            layers = [ResnetBlock(cin if j == 0 else cout, cout, g) for j in range(n)]
            if i < len(ch) - 1:
                layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
                layers.append(nn.Conv2d(cout, cout, 3, padding=1))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = nn.GroupNorm(g, ch[0], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[0], c["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid(self.conv_in(z))
        for blk in self.up_blocks:
            x = blk(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Encoder(nn.Module):
    """sample (B,3,H,W) in [-1,1] -> latent_parameters (B,2*latent_channels,H/8,W/8): mean then
    logvar, as optimum's vae_encoder graph (latent_dist.parameters)."""

    def __init__(self, c):
        super().__init__()
        ch, g, n = list(c["block_out_channels"]), c["norm_num_groups"], c["layers_per_block"]
        self.conv_in = nn.Conv2d(c["in_channels"], ch[0], 3, padding=1)
        blocks, cin = [], ch[0]
        for i, cout in enumerate(ch):
            layers = [ResnetBlock(cin if j == 0 else cout, cout, g) for j in range(n)]
            if i < len(ch) - 1:
                layers.append(Downsample(cout))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.down_blocks = nn.ModuleList(blocks)
        self.mid = MidBlock(ch[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], 2 * c["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for blk in self.down_blocks:
            x = blk(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid(x))))


def randomize(module, seed, norm_jitter=0.2, embed_std=1.0):
    """Deterministic random weights: PyTorch's default init from `seed`, then norms and embeddings
    moved off their identity/zero start so that every weight shapes the output."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            m.reset_parameters()
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.05)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=embed_std)
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.normal_(m.weight, mean=1.0, std=norm_jitter)
            nn.init.normal_(m.bias, std=norm_jitter)
        elif isinstance(m, T5LayerNorm):
            nn.init.normal_(m.weight, mean=1.0, std=norm_jitter)
    return module.eval()
