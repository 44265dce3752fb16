"""WebDiT's three models: a KL VAE, a CLIP-style text encoder (+ image tower for training), and a
DiT with cross-attention and adaLN-Zero that predicts flow-matching velocity. Configs: config.py.

Every LayerNorm is affine: torch 1.13 writes an invalid ONNX node for the non-affine kind."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import DiTConfig, TextConfig, VAEConfig


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------
class GroupNorm(nn.GroupNorm):
    """GroupNorm with two-pass statistics in fp32. torch 1.13's CPU group_norm loses ~6e-4 on
    images with large flat areas (a white background: a large mean over a small spread), where
    onnxruntime and float64 agree to ~1e-5; centring first keeps PyTorch (fixtures) and the
    graphs (browser) together. fp32 also under bf16 autocast, whose CPU kernel rejects mixed dtypes.
    Each mean is taken over W, then over the rest: onnxruntime-web's WASM ReduceMean sums a row in
    one sequential pass, ~3e-4 off over a 4x64x64 group (1.9e-6 in two short passes)."""

    def forward(self, x):  # (B,C,H,W)
        x = x if x.dtype == torch.float32 else x.float()  # no Cast node in the exported graph
        h = x.reshape(x.shape[0], self.num_groups, -1, x.shape[-1])  # (B,G,C/G*H,W)
        h = h - h.mean(-1, keepdim=True).mean(-2, keepdim=True)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True).mean(-2, keepdim=True) + self.eps)
        return h.reshape(x.shape) * self.weight[:, None, None] + self.bias[:, None, None]


class ResBlock(nn.Module):
    def __init__(self, cin, cout, groups=8):
        super().__init__()
        self.n1, self.c1 = GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.c1(F.silu(self.n1(x)))
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.block_out_channels
        layers = [nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1), ResBlock(ch[0], ch[0])]
        for cin, cout in zip(ch, ch[1:]):  # each level halves the resolution
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), ResBlock(cout, cout)]
        layers += [ResBlock(ch[-1], ch[-1]), GroupNorm(8, ch[-1]), nn.SiLU(),
                   nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B,3,H,W) -> mean, logvar (B,C,H/f,W/f)
        return self.net(x).chunk(2, dim=1)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch = cfg.block_out_channels[::-1]
        layers = [nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1), ResBlock(ch[0], ch[0]), ResBlock(ch[0], ch[0])]
        for cin, cout in zip(ch, ch[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1), ResBlock(cout, cout)]
        layers += [GroupNorm(8, ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], cfg.in_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):  # (B,C,h,w) -> (B,3,h*f,w*f) in ~[-1,1]
        return self.net(z)


class PosteriorMean(nn.Module):
    """The encoder as the vae_encoder graph exports it: image in [-1,1] -> posterior mean (no sampling)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, sample):  # (B,3,H,W) -> latent_sample (B,C,h,w)
        return self.encoder(sample)[0]


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)

    def forward(self, x):
        mean, logvar = self.encoder(x)
        logvar = logvar.clamp(-30, 20)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        return self.decoder(z), kl


# ---------------------------------------------------------------------------------------------
# Attention shared by the text encoder and the DiT (plain matmuls: exports cleanly at opset 17)
# ---------------------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, dim, heads, kv_dim=None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, ctx=None, mask=None):  # x (B,T,D), ctx (B,S,Dk), mask additive (.., T, S)
        B, T, D = x.shape
        ctx = x if ctx is None else ctx
        q = self.q(x).reshape(B, T, self.heads, D // self.heads).transpose(1, 2)  # (B,H,T,d)
        k, v = self.kv(ctx).reshape(B, ctx.shape[1], 2, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D // self.heads))  # (B,H,T,S)
        if mask is not None:
            att = att + mask
        y = att.softmax(-1) @ v  # (B,H,T,d)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class MLP(nn.Sequential):
    def __init__(self, dim, ratio=4):
        super().__init__(nn.Linear(dim, dim * ratio), nn.GELU(approximate="tanh"), nn.Linear(dim * ratio, dim))


# ---------------------------------------------------------------------------------------------
# CLIP-style text encoder (causal transformer + projection) and its image tower
# ---------------------------------------------------------------------------------------------
class TextBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln2, self.mlp = nn.LayerNorm(dim), MLP(dim)

    def forward(self, x, mask):
        x = x + self.attn(self.ln1(x), mask=mask)
        return x + self.mlp(self.ln2(x))


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos = nn.Parameter(torch.randn(cfg.max_length, cfg.width) * 0.01)
        self.blocks = nn.ModuleList(TextBlock(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.ln_final = nn.LayerNorm(cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.proj_dim, bias=False)
        causal = torch.full((cfg.max_length, cfg.max_length), -1e4).triu(1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, input_ids):  # (B,L) int64 -> last_hidden_state (B,L,D), text_embeds (B,P)
        L = input_ids.shape[1]
        x = self.tok(input_ids) + self.pos[:L]
        mask = self.causal[:L, :L]
        for b in self.blocks:
            x = b(x, mask)
        x = self.ln_final(x)
        # Pool at the last real token ([SEP], or the last kept token when truncated), as CLIP pools at EOS.
        last = (input_ids != self.cfg.pad_id).long().sum(1) - 1  # (B,)
        pooled = x[torch.arange(x.shape[0]), last.clamp(min=0)]
        return x, self.proj(pooled)


class ImageTower(nn.Module):
    """Small conv net for the contrastive objective and for evaluation (CLIP image embeddings)."""

    def __init__(self, cfg: TextConfig, image_size):
        super().__init__()
        layers, cin = [], 3
        for c in cfg.image_tower_channels:  # each halves the resolution
            layers += [nn.Conv2d(cin, c, 3, stride=2, padding=1), GroupNorm(8, c), nn.SiLU(),
                       nn.Conv2d(c, c, 3, padding=1), GroupNorm(8, c), nn.SiLU()]
            cin = c
        self.net = nn.Sequential(*layers)
        side = image_size // 2 ** len(cfg.image_tower_channels)
        self.proj = nn.Linear(cin * side * side, cfg.proj_dim)

    def forward(self, x):  # (B,3,H,W) in [-1,1] -> (B,P)
        return self.proj(self.net(x).flatten(1))


class CLIP(nn.Module):
    def __init__(self, tcfg: TextConfig, image_size):
        super().__init__()
        self.text, self.image = TextEncoder(tcfg), ImageTower(tcfg, image_size)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))


# ---------------------------------------------------------------------------------------------
# DiT
# ---------------------------------------------------------------------------------------------
def sincos_2d(dim, n):  # (n*n, dim) fixed 2D position embedding, as in DiT
    def one(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2))
        out = pos.reshape(-1, 1) * omega
        return torch.cat([out.sin(), out.cos()], 1)
    gy, gx = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    return torch.cat([one(dim // 2, gy), one(dim // 2, gx)], 1).float()


def timestep_embedding(t, dim):  # t (B,) in [0, num_train_timesteps] -> (B,dim)
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], -1)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, context_dim):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln_x, self.cross = nn.LayerNorm(dim), Attention(dim, heads, kv_dim=context_dim)
        self.ln2, self.mlp = nn.LayerNorm(dim), MLP(dim)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight); nn.init.zeros_(self.ada[1].bias)  # adaLN-Zero
        nn.init.zeros_(self.cross.out.weight); nn.init.zeros_(self.cross.out.bias)

    def forward(self, x, c, ctx):  # x (B,T,D), c (B,D), ctx (B,L,Dc)
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=1)
        x = x + g1[:, None] * self.attn(modulate(self.ln1(x), sh1, sc1))
        x = x + self.cross(self.ln_x(x), ctx)
        return x + g2[:, None] * self.mlp(modulate(self.ln2(x), sh2, sc2))


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        p, D = cfg.patch_size, cfg.hidden
        self.n = cfg.sample_size // p
        self.patch = nn.Conv2d(cfg.in_channels, D, p, stride=p)
        self.register_buffer("pos", sincos_2d(D, self.n)[None], persistent=False)  # (1,T,D)
        self.t_mlp = nn.Sequential(nn.Linear(cfg.timestep_embed_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.pool_mlp = nn.Sequential(nn.Linear(cfg.pooled_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.ctx_ln = nn.LayerNorm(cfg.context_dim)
        self.blocks = nn.ModuleList(DiTBlock(D, cfg.heads, cfg.context_dim) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(D)
        self.ada_f = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.out = nn.Linear(D, p * p * cfg.in_channels)
        for m in (self.ada_f[1], self.out):
            nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)

    def forward(self, hidden_states, encoder_hidden_states, pooled_projections, timestep):
        B, C, H, W = hidden_states.shape
        p = self.cfg.patch_size
        x = self.patch(hidden_states).flatten(2).transpose(1, 2) + self.pos  # (B,T,D)
        c = self.t_mlp(timestep_embedding(timestep, self.cfg.timestep_embed_dim)) + self.pool_mlp(pooled_projections)  # (B,D)
        ctx = self.ctx_ln(encoder_hidden_states)  # (B,L,Dc)
        for b in self.blocks:
            x = b(x, c, ctx)
        shift, scale = self.ada_f(c).chunk(2, dim=1)
        x = self.out(modulate(self.ln_f(x), shift, scale))  # (B,T,p*p*C)
        h, w = H // p, W // p
        x = x.reshape(B, h, w, p, p, C).permute(0, 5, 1, 3, 2, 4)  # (B,C,h,p,w,p)
        return x.reshape(B, C, H, W)
