"""Every number the recipe and the exported model folder share: model configs, the scheduler, the
sampling defaults and the size registry (PRESETS). Other modules derive from these, never repeat them."""
from dataclasses import dataclass, field

IMAGE_SIZE = 64  # the data's resolution (data.py draws and loads at this size)
TRAIN_SEED = 1000  # a stage's batch RNG is seeded TRAIN_SEED + step, so a resumed run draws the same batches
EVAL_SEED = 1000  # evaluation images use seeds EVAL_SEED, EVAL_SEED + 1, ...


@dataclass(frozen=True)
class SchedulerConfig:
    """diffusers' FlowMatchEulerDiscreteScheduler: timestep = sigma * num_train_timesteps."""
    num_train_timesteps: int = 1000
    shift: float = 1.0


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 3
    latent_channels: int = 8
    block_out_channels: tuple = (32, 64, 128)  # one per resolution; each after the first halves it
    sample_size: int = IMAGE_SIZE

    @property
    def vae_scale_factor(self):  # as diffusers: 2 ** (len(block_out_channels) - 1)
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_size(self):
        return self.sample_size // self.vae_scale_factor


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 4096  # replaced by the tokenizer's vocabulary size once it is built
    max_length: int = 32
    width: int = 256
    layers: int = 4
    heads: int = 4
    proj_dim: int = 256
    pad_id: int = 0
    image_tower_channels: tuple = (32, 64, 128, 256)  # the contrastive image tower (training and evaluation only)


@dataclass(frozen=True)
class DiTConfig:
    in_channels: int = 8  # = VAEConfig.latent_channels (set by stages.stage_dit)
    sample_size: int = 16  # = VAEConfig.latent_size (set by stages.stage_dit)
    patch_size: int = 2
    hidden: int = 256
    depth: int = 6
    heads: int = 4
    context_dim: int = 256  # = TextConfig.width
    pooled_dim: int = 256  # = TextConfig.proj_dim
    timestep_embed_dim: int = 256  # sinusoidal frequencies before the timestep MLP, as DiT


@dataclass(frozen=True)
class SamplingDefaults:
    """The manifest's defaults (the scheduler's shift lives in SchedulerConfig, as in the model folder);
    evaluation replaces both with the best of its sweep."""
    num_inference_steps: int = 20
    guidance_scale: float = 4.0


@dataclass(frozen=True)
class Preset:
    model_id: str
    model_name: str
    n_shapes: int
    emoji_limit: int | None
    vae_steps: int
    vae_batch: int
    clip_steps: int
    clip_batch: int
    dit_steps: int
    dit_batch: int
    vae: VAEConfig = field(default_factory=VAEConfig)
    text: TextConfig = field(default_factory=TextConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)  # its shift: the sampling default until evaluation picks one
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    lr_vae: float = 4e-4
    lr_clip: float = 5e-4
    lr_dit: float = 4e-4
    # DiT batch recipe (training/ablate.py compares them); the defaults are the recipe v1 and v2 used
    dit_cond_dropout: float = 0.1  # share of captions replaced by "" (classifier-free guidance)
    dit_emoji_frac: float = 0.0  # share of each batch drawn from the emoji; 0: uniform over all training images
    dit_t_logit_std: float = 1.0  # t = sigmoid(N(0, std)) (logit-normal); 0: t uniform in (0, 1)
    dit_seed_offset: int = 0  # added to the DiT's batch seeds: a run that continues another draws new batches
    eval_emoji: int = 300
    eval_shapes: int = 120


PRESETS = {
    # a few steps of everything: proves the recipe end to end in a couple of minutes
    "toy": Preset(model_id="webdit-toy", model_name="WebDiT toy (smoke test, untrained)",
                  n_shapes=256, emoji_limit=256, vae_steps=6, vae_batch=8, clip_steps=6, clip_batch=32,
                  dit_steps=6, dit_batch=16, vae=VAEConfig(block_out_channels=(8, 16, 16)),
                  text=TextConfig(width=32, layers=1, heads=2, proj_dim=32),
                  dit=DiTConfig(hidden=32, depth=1, heads=2),
                  sampling=SamplingDefaults(num_inference_steps=4), eval_emoji=8, eval_shapes=8),
    # the shipped model on a 2-core CPU with bf16 autocast
    "cpu": Preset(model_id="webdit-tiny", model_name="WebDiT tiny (emoji + shapes, 64x64)",
                  n_shapes=16000, emoji_limit=None, vae_steps=2000, vae_batch=32, clip_steps=400,
                  clip_batch=128, dit_steps=4000, dit_batch=64),
    # the shipped model's architecture and data (so it warm-starts from public/models/webdit-tiny, see
    # from_onnx.py --seed-run) with GPU batches; training/gpu/run.sh fits the steps to its time budget
    "cuda-tiny": Preset(model_id="webdit-tiny", model_name="WebDiT tiny (emoji + shapes, 64x64)",
                        n_shapes=16000, emoji_limit=None, vae_steps=20000, vae_batch=64, clip_steps=8000,
                        clip_batch=512, dit_steps=60000, dit_batch=256),
    # same code, bigger, for a CUDA GPU
    "cuda": Preset(model_id="webdit-small", model_name="WebDiT small (emoji + shapes, 64x64)",
                   n_shapes=60000, emoji_limit=None, vae_steps=20000, vae_batch=64, clip_steps=8000,
                   clip_batch=512, dit_steps=60000, dit_batch=256, dit=DiTConfig(hidden=384, depth=8, heads=6)),
}
