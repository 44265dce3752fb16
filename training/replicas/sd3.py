"""A tiny random replica of a Stable Diffusion 3 ONNX export in the optimum (diffusers) layout, and
PyTorch golden values for the TypeScript engine's SD3 family. See training/replicas/README.md.

    /usr/bin/python3 training/replicas/sd3.py --out src/engine/families/sd3/__replica__/sd3-tiny
    (golden: <out>/../sd3-golden.json, or --golden PATH)

Deterministic: same torch + onnx versions give the same files. Every graph: opset 17, onnx.checker,
and onnxruntime (node) vs PyTorch within MAX_ABS_DIFF on several shapes. The tokenizers' ids are
checked against transformers.js. Needs `npm install` done (onnxruntime-node, transformers.js)."""
import argparse
import base64
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

from replicas import sd3_models as M  # noqa: E402
from replicas import tokenizers as TK  # noqa: E402
from webdit.export import ort_run, sha256, write_json  # noqa: E402
from webdit.pipeline import apply_guidance, euler_step, get_sigmas, get_timesteps, initial_latents, to_uint8  # noqa: E402

OPSET = 17
MAX_ABS_DIFF = 1e-4
SEED = 3
DIFFUSERS_VERSION, TRANSFORMERS_VERSION = "0.32.2", "4.46.3"
CLIP_LEN, T5_LEN = 77, 256  # tokenizer_max_length, max_sequence_length (SD3 pipeline defaults)
N_MERGES = 400
GENERATED_BY = "training/replicas/sd3.py (PyTorch)"

def tensor(a):
    """{dims, b64}: little-endian float32, as src/engine/__fixtures__/webdit-tiny.json."""
    a = np.ascontiguousarray(np.asarray(a), dtype="<f4")
    return {"dims": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def image(u8):
    u8 = np.ascontiguousarray(u8, dtype=np.uint8)
    return {"dims": list(u8.shape), "b64": base64.b64encode(u8.tobytes()).decode()}


# ---- configs (real field names, tiny sizes) -----------------------------------------------------
def clip_config(vocab_size, hidden, heads, layers, inter, proj, act):
    """transformers' CLIPTextConfig as saved by an optimum export (output_hidden_states and
    export_model_type added by the exporter). bos/eos/pad_token_id 0/2/1 are the real SD3 values
    (CLIPTextConfig defaults), NOT the tokenizer's ids: eos_token_id == 2 selects argmax pooling."""
    return {"architectures": ["CLIPTextModelWithProjection"], "attention_dropout": 0.0, "bos_token_id": 0,
            "dropout": 0.0, "eos_token_id": 2, "export_model_type": "clip-text-with-projection", "hidden_act": act,
            "hidden_size": hidden, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": inter,
            "layer_norm_eps": 1e-05, "max_position_embeddings": CLIP_LEN, "model_type": "clip_text_model",
            "num_attention_heads": heads, "num_hidden_layers": layers, "output_hidden_states": True,
            "pad_token_id": 1, "projection_dim": proj, "torch_dtype": "float32",
            "transformers_version": TRANSFORMERS_VERSION, "vocab_size": vocab_size}


def t5_config(vocab_size):
    """T5Config of an SD3 text_encoder_3 (T5 v1.1: gated-gelu), tiny; vocab padded past the tokenizer
    like the real 32128 > 32100."""
    return {"architectures": ["T5EncoderModel"], "classifier_dropout": 0.0, "d_ff": 96, "d_kv": 16, "d_model": 80,
            "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
            "export_model_type": "t5-encoder", "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0,
            "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
            "num_decoder_layers": 2, "num_heads": 4, "num_layers": 2, "pad_token_id": 0,
            "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
            "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": TRANSFORMERS_VERSION,
            "use_cache": True, "vocab_size": vocab_size}


def transformer_config(joint_attention_dim, pooled_projection_dim):
    return {"_class_name": "SD3Transformer2DModel", "_diffusers_version": DIFFUSERS_VERSION,
            "attention_head_dim": 8, "caption_projection_dim": 16, "dual_attention_layers": [], "in_channels": 16,
            "joint_attention_dim": joint_attention_dim, "num_attention_heads": 2, "num_layers": 2, "out_channels": 16,
            "patch_size": 2, "pooled_projection_dim": pooled_projection_dim, "pos_embed_max_size": 16,
            "qk_norm": None, "sample_size": 8}


VAE_CONFIG = {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
              "block_out_channels": [8, 8, 16, 16], "down_block_types": ["DownEncoderBlock2D"] * 4,
              "force_upcast": True, "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None,
              "layers_per_block": 2, "mid_block_add_attention": True, "norm_num_groups": 4, "out_channels": 3,
              "sample_size": 64, "scaling_factor": 1.5305, "shift_factor": 0.0609,
              "up_block_types": ["UpDecoderBlock2D"] * 4, "use_post_quant_conv": False, "use_quant_conv": False}

SCHEDULER_CONFIG = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": DIFFUSERS_VERSION,
                    "base_image_seq_len": 256, "base_shift": 0.5, "invert_sigmas": False, "max_image_seq_len": 4096,
                    "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0, "shift_terminal": None,
                    "use_beta_sigmas": False, "use_dynamic_shifting": False, "use_exponential_sigmas": False,
                    "use_karras_sigmas": False}

# diffusers' pipeline config as an optimum export writes it: the VAE is ONE component "vae" here,
# although the folder holds vae_decoder/ and vae_encoder/ (optimum adds those two itself).
MODEL_INDEX = {"_class_name": "StableDiffusion3Pipeline", "_diffusers_version": DIFFUSERS_VERSION,
               "feature_extractor": [None, None], "image_encoder": [None, None],
               "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
               "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
               "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
               "text_encoder_3": ["transformers", "T5EncoderModel"],
               "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
               "tokenizer_3": ["transformers", "T5TokenizerFast"],
               "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}

# graph -> (inputs, outputs, dynamic axes) as optimum's ONNX configs name them
B = "batch_size"
SEQ = {0: B, 1: "sequence_length"}


def clip_io(layers):
    outs = ["text_embeds", "last_hidden_state"] + [f"hidden_states.{i}" for i in range(layers + 1)]
    return ["input_ids"], outs, {"input_ids": SEQ, **{o: SEQ for o in outs}}  # (sic: text_embeds dim 1 too)


GRAPH_IO = {
    "transformer": (["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"], ["out_hidden_states"],
                    {"hidden_states": {0: B, 2: "height", 3: "width"}, "encoder_hidden_states": SEQ,
                     "pooled_projections": {0: B}, "timestep": {0: "step"},
                     "out_hidden_states": {0: B, 2: "height", 3: "width"}}),
    "text_encoder_3": (["input_ids"], ["last_hidden_state"], {"input_ids": SEQ, "last_hidden_state": SEQ}),
    "vae_decoder": (["latent_sample"], ["sample"],
                    {"latent_sample": {0: B, 2: "latent_height", 3: "latent_width"},
                     "sample": {0: B, 2: "latent_height * 8", 3: "latent_width * 8"}}),
    "vae_encoder": (["sample"], ["latent_parameters"],
                    {"sample": {0: B, 2: "sample_height", 3: "sample_width"},
                     "latent_parameters": {0: B, 2: "sample_height / 8", 3: "sample_width / 8"}}),
}
EXTERNAL_DATA = ("transformer", "text_encoder_3")  # > 2 GB in real exports: model.onnx + model.onnx_data


# ---- building ---------------------------------------------------------------------------------
class Replica:
    """Tokenizers, configs and PyTorch modules of the replica (all deterministic)."""

    def __init__(self):
        merges = TK.learn_clip_merges(TK.CAPTIONS, N_MERGES)
        self.tokenizer = TK.CLIPBPETokenizer(merges, TK.EOS, CLIP_LEN)
        self.tokenizer_2 = TK.CLIPBPETokenizer(merges, "!", CLIP_LEN)
        self.tokenizer_3 = TK.T5UnigramTokenizer(TK.learn_t5_pieces(TK.CAPTIONS))
        V = len(self.tokenizer.vocab_list)
        self.configs = {
            "text_encoder": clip_config(V, 32, 4, 3, 64, 16, "quick_gelu"),      # CLIP-L-like
            "text_encoder_2": clip_config(V, 40, 5, 4, 80, 24, "gelu"),          # CLIP-G-like (wider, deeper)
            "text_encoder_3": t5_config(64 * math.ceil(len(self.tokenizer_3.vocab_list) / 64)),
        }
        joint = self.configs["text_encoder_3"]["d_model"]
        pooled = self.configs["text_encoder"]["projection_dim"] + self.configs["text_encoder_2"]["projection_dim"]
        self.configs["transformer"] = transformer_config(joint, pooled)
        self.configs["vae_decoder"] = self.configs["vae_encoder"] = VAE_CONFIG
        c = self.configs
        self.text_encoder = M.randomize(M.CLIPTextModelWithProjection(c["text_encoder"]), SEED)
        self.text_encoder_2 = M.randomize(M.CLIPTextModelWithProjection(c["text_encoder_2"]), SEED + 1)
        self.text_encoder_3 = M.randomize(M.T5EncoderModel(c["text_encoder_3"]), SEED + 2, embed_std=1.0)
        self.transformer = M.randomize(M.SD3Transformer2DModel(c["transformer"]), SEED + 3)
        self.vae_decoder = M.randomize(M.Decoder(VAE_CONFIG), SEED + 4)
        self.vae_encoder = M.randomize(M.Encoder(VAE_CONFIG), SEED + 5)
        emphasize_conditioning(self)
        self.scheduler = SCHEDULER_CONFIG

    def modules(self):
        return {k: getattr(self, k) for k in ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer",
                                             "vae_decoder", "vae_encoder")}

    def io(self, name):
        if name in ("text_encoder", "text_encoder_2"):
            return clip_io(self.configs[name]["num_hidden_layers"])
        return GRAPH_IO[name]

    def check_inputs(self, name):
        """Input sets per graph (the first one is traced): batch 2 and another shape each."""
        g = torch.Generator().manual_seed(7)
        c = self.configs
        if name in ("text_encoder", "text_encoder_2"):
            tok = getattr(self, name.replace("text_encoder", "tokenizer"))
            return [(torch.tensor([tok.encode("a photo of a cat on a sofa"), tok.encode("")]),),
                    (torch.tensor([tok.encode_js_style(LONG_PROMPT)]),)]
        if name == "text_encoder_3":
            return [(torch.tensor([self.tokenizer_3.encode("a photo of a cat on a sofa"), self.tokenizer_3.encode("")]),),
                    (torch.tensor([self.tokenizer_3.encode(LONG_PROMPT)[:40]]),)]
        if name == "transformer":
            ct = c["transformer"]
            mk = lambda b, hw, L: (torch.randn(b, 16, hw, hw, generator=g), torch.randn(b, L, ct["joint_attention_dim"], generator=g),  # noqa: E731
                                   torch.randn(b, ct["pooled_projection_dim"], generator=g), torch.tensor([1000.0, 250.5][:b]))
            return [mk(2, 8, CLIP_LEN + T5_LEN), mk(1, 16, 2 * CLIP_LEN), mk(2, 4, 2 * CLIP_LEN)]
        if name == "vae_decoder":
            return [(torch.randn(2, 16, 8, 8, generator=g),), (torch.randn(1, 16, 16, 16, generator=g),)]
        if name == "vae_encoder":
            return [(torch.rand(2, 3, 64, 64, generator=g) * 2 - 1,), (torch.rand(1, 3, 128, 128, generator=g) * 2 - 1,)]
        raise KeyError(name)


@torch.no_grad()
def emphasize_conditioning(rep):
    """Random tiny models barely listen to their text: with plain init, using last_hidden_state instead
    of the penultimate hidden state moved the 64x64 image by only 51 dB PSNR, under the engine's
    45 dB bar. Like real CLIPs, give the final LayerNorms strong weights, and let the context stream
    weigh more in the joint attention (add_q/k/v_proj x3), and make each CLIP layer's residual update
    larger (out_proj, fc2 x2); every mistake in the golden's sensitivity table then lands well under 45 dB."""
    g = torch.Generator().manual_seed(SEED + 10)
    for enc in (rep.text_encoder, rep.text_encoder_2):
        ln = enc.final_layer_norm
        ln.weight.copy_(1.0 + 0.8 * torch.randn(ln.weight.shape, generator=g))
        ln.bias.copy_(0.8 * torch.randn(ln.bias.shape, generator=g))
        for layer in enc.layers:  # larger residual updates: neighbouring hidden states differ more
            layer.out_proj.weight.mul_(2.0)
            layer.fc2.weight.mul_(2.0)
    for blk in rep.transformer.transformer_blocks:
        for lin in (blk.add_q_proj, blk.add_k_proj, blk.add_v_proj):
            lin.weight.mul_(3.0)


def export_graph(module, name, inputs_list, path, io):
    """torch.onnx.export at opset 17 (traced on the first input set), external data as optimum
    writes it for graphs over 2 GB, onnx.checker, then onnxruntime vs PyTorch on every input set.
    Returns the max abs difference."""
    in_names, out_names, dynamic = io
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(module, inputs_list[0], path, input_names=in_names, output_names=out_names,
                      dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
    if name in EXTERNAL_DATA:  # optimum: location=<name>_data, convert_attribute=True, size_threshold=100
        model = onnx.load(path)
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(path) + "_data", convert_attribute=True, size_threshold=100)
    onnx.checker.check_model(path)
    return check_graph(module, path, inputs_list, io)


def check_graph(module, path, inputs_list, io):
    in_names, out_names, _ = io
    worst = 0.0
    for args in inputs_list:
        with torch.no_grad():
            ref = module(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = ort_run(path, {n: a.numpy() for n, a in zip(in_names, args)})
        for n, r in zip(out_names, ref):
            if tuple(got[n].shape) != tuple(r.shape):
                raise RuntimeError(f"{path}: output {n} has shape {got[n].shape} in onnxruntime, {tuple(r.shape)} in PyTorch")
            worst = max(worst, float(np.abs(r.numpy() - got[n]).max()))
    if worst > MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX and PyTorch disagree on {path}: max abs diff {worst} > {MAX_ABS_DIFF}")
    return worst


def write_tokenizer(folder, tok, slow_files):
    write_json(os.path.join(folder, "tokenizer.json"), tok.tokenizer_json())
    write_json(os.path.join(folder, "tokenizer_config.json"), tok.tokenizer_config())
    write_json(os.path.join(folder, "special_tokens_map.json"), tok.special_tokens_map())
    if slow_files:  # CLIPTokenizer.save_pretrained's files
        write_json(os.path.join(folder, "vocab.json"), tok.vocab)
        with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
            f.write(tok.merges_txt())


def build_folder(rep, out, clip_tokenizer_json=True):
    """Writes the Hub-layout folder; returns {graph: max abs diff vs PyTorch}."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    write_json(os.path.join(out, "model_index.json"), MODEL_INDEX)
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), rep.scheduler)
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        write_tokenizer(os.path.join(out, name), getattr(rep, name), slow_files=name != "tokenizer_3")
        if name != "tokenizer_3" and not clip_tokenizer_json:
            os.remove(os.path.join(out, name, "tokenizer.json"))
    diffs = {}
    for name, module in rep.modules().items():
        write_json(os.path.join(out, name, "config.json"), rep.configs[name])
        diffs[name] = export_graph(module, name, rep.check_inputs(name), os.path.join(out, name, "model.onnx"), rep.io(name))
    return diffs


def folder_files(out):
    return {os.path.relpath(os.path.join(d, f), out): sha256(os.path.join(d, f))
            for d, _, fs in sorted(os.walk(out)) for f in sorted(fs)}


# ---- tokenizers vs transformers.js ------------------------------------------------------------
def js_token_ids(out, prompts):
    req = {"tokenizers": {"tokenizer": {"dir": os.path.join(out, "tokenizer"), "class": "CLIPTokenizer", "max_length": CLIP_LEN},
                          "tokenizer_2": {"dir": os.path.join(out, "tokenizer_2"), "class": "CLIPTokenizer", "max_length": CLIP_LEN},
                          "tokenizer_3": {"dir": os.path.join(out, "tokenizer_3"), "class": "T5Tokenizer", "max_length": T5_LEN}},
           "prompts": prompts}
    p = subprocess.run(["node", os.path.join(TRAINING, "replicas", "tokenize_js.mjs")], input=json.dumps(req).encode(),
                       capture_output=True, cwd=os.path.dirname(TRAINING))
    if p.returncode != 0:
        raise RuntimeError(f"transformers.js tokenization failed: {p.stderr.decode()[-2000:]}\nIs `npm install` done?")
    return json.loads(p.stdout)


def check_tokenizers_js(rep, out, prompts):
    """transformers.js must equal our model of it (encode_js_style) on every prompt. Returns its ids."""
    js = js_token_ids(out, prompts)
    for name, L in (("tokenizer", CLIP_LEN), ("tokenizer_2", CLIP_LEN), ("tokenizer_3", T5_LEN)):
        tok = getattr(rep, name)
        for p, ids in zip(prompts, js[name]):
            if tok.encode_js_style(p, L) != ids:
                raise RuntimeError(f"{name}: transformers.js gives {ids} for {p!r}, the Python model of it "
                                   f"{tok.encode_js_style(p, L)}")
    return js


# ---- the SD3 pipeline, as diffusers' StableDiffusion3Pipeline ----------------------------------
@torch.no_grad()
def clip_embeds(encoder, ids, hidden_index=-2):
    """-> penultimate hidden state (B,77,D) ("second to last" of all hidden states), text_embeds (B,P).
    Graph outputs: (text_embeds, last_hidden_state, hidden_states.0 .. hidden_states.N)."""
    out = encoder(torch.tensor(ids))
    return out[hidden_index], out[0]


@torch.no_grad()
def encode_prompt(rep, prompts, use_t5=True, no_t5_tokens=CLIP_LEN, clip_ids=None, variant=None):
    """-> context (B, 77 + (256 | no_t5_tokens), joint_attention_dim), pooled (B, P_L + P_G).
    clip_ids: optional (ids_l, ids_g) to override the tokenizers (e.g. transformers.js' ids).
    variant: a deliberate mistake, for the sensitivity table only."""
    ids_l = clip_ids[0] if clip_ids else [rep.tokenizer.encode(p) for p in prompts]
    ids_g = clip_ids[1] if clip_ids else [rep.tokenizer_2.encode(p) for p in prompts]
    h_l, pooled_l = clip_embeds(rep.text_encoder, ids_l, 1 if variant == "last_hidden_state" else -2)
    g_index = {"last_hidden_state": 1, "clip_g_fixed_index_of_clip_l": 2 + rep.configs["text_encoder"]["num_hidden_layers"] - 1}
    h_g, pooled_g = clip_embeds(rep.text_encoder_2, ids_g, g_index.get(variant, -2))
    joint = rep.configs["transformer"]["joint_attention_dim"]
    if use_t5 and variant != "t5_ignored":
        t5 = rep.text_encoder_3(torch.tensor([rep.tokenizer_3.encode(p, T5_LEN) for p in prompts]))
    else:  # diffusers < 0.36: tokenizer_max_length (77) zero tokens; >= 0.36: max_sequence_length (256)
        t5 = torch.zeros(len(prompts), no_t5_tokens, joint)
    clip = torch.cat([h_g, h_l] if variant == "clip_order_g_l" else [h_l, h_g], dim=-1)
    clip = F.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))  # zero-pad the features to joint_attention_dim
    return torch.cat([clip, t5], dim=-2), torch.cat([pooled_l, pooled_g], dim=-1)


@torch.no_grad()
def generate(rep, prompt, negative_prompt="", seed=0, steps=4, guidance_scale=7.0, width=64, height=64,
             use_t5=True, no_t5_tokens=CLIP_LEN, _variant=None):
    """One image -> final latents (1,16,H/8,W/8) float32 numpy, RGB uint8 (H,W,3), sigmas, timesteps.
    _variant: a deliberate mistake, for the sensitivity table only."""
    cfg = rep.configs
    T, shift = rep.scheduler["num_train_timesteps"], rep.scheduler["shift"]
    vae = cfg["vae_decoder"]
    scale = 2 ** (len(vae["block_out_channels"]) - 1)
    # 1. encode prompt and negative prompt (the negative "" is encoded, not zeros)
    ctx, pooled = encode_prompt(rep, [prompt], use_t5, no_t5_tokens, variant=_variant)
    ctx_un, pooled_un = encode_prompt(rep, [negative_prompt], use_t5, no_t5_tokens, variant=_variant)
    if _variant == "zero_negative":
        ctx_un, pooled_un = torch.zeros_like(ctx_un), torch.zeros_like(pooled_un)
    if _variant == "swapped_cfg_batch":
        ctx, ctx_un, pooled, pooled_un = ctx_un, ctx, pooled_un, pooled
    # 2. sigmas, timesteps (= sigma * 1000)
    sigmas = get_sigmas(steps, shift, T)
    timesteps = get_timesteps(sigmas, T)
    # 3. initial noise (mulberry32 + Box-Muller)
    latents = torch.from_numpy(initial_latents(seed, (1, cfg["transformer"]["in_channels"], height // scale, width // scale)))
    # 4. Euler with classifier-free guidance: batch [negative, positive], skipped when scale <= 1
    for i in range(steps):
        t = torch.full((1,), float(timesteps[i]))
        if guidance_scale > 1:
            v_un, v_c = rep.transformer(torch.cat([latents, latents]), torch.cat([ctx_un, ctx]),
                                        torch.cat([pooled_un, pooled]), torch.cat([t, t])).chunk(2)
            v = apply_guidance(v_un, v_c, guidance_scale)
        else:
            v = rep.transformer(latents, ctx, pooled, t)
        latents = euler_step(latents, v, float(sigmas[i]), float(sigmas[i + 1]))
    # 5. decode: latents / scaling_factor + shift_factor
    rgb = to_uint8(rep.vae_decoder(latents / vae["scaling_factor"] + vae["shift_factor"]))[0]
    return latents.numpy(), rgb, sigmas, timesteps


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


# ---- golden -----------------------------------------------------------------------------------
LONG_PROMPT = " ".join(["a watercolor painting of a lighthouse on a rocky coast at sunset, with seagulls"] * 30)
PROMPTS = [
    "a photo of a cat sitting on a red sofa",
    "",
    "An Astronaut riding a HORSE on the moon,   digital art!!",
    "! !! !!! wow!",
    "It's a dog's life; we're here, they'd've said",
    "café crème brûlée, Straße, naïve, ÉCOLE",
    "a photo of 富士山 at sunrise 🌅🌅 and 👩‍❤️‍👨",
    "tab\tnew\nline  multiple   spaces ",
    "3.14159 and 1024x1024, 4k, 8k render",
    "zxqv qwxz bbbbbbbb unknownword",
    LONG_PROMPT,
]
CONDITIONING_PROMPTS = [0, 2]
RUNS = [  # (name, prompt index, params)
    ("64x64_cfg7_t5", 0, dict(seed=42, steps=4, guidance_scale=7.0, width=64, height=64, use_t5=True)),
    ("64x64_cfg7_no_t5", 2, dict(seed=7, steps=4, guidance_scale=7.0, width=64, height=64, use_t5=False)),
    ("128x128_cfg1_t5", 0, dict(seed=123, steps=3, guidance_scale=1.0, width=128, height=128, use_t5=True)),
    ("64x64_cfg7_no_t5_256_zero_tokens", 2, dict(seed=7, steps=4, guidance_scale=7.0, width=64, height=64,
                                                  use_t5=False, no_t5_tokens=T5_LEN)),
]
SIGMA_CASES = [(1, 3.0), (3, 3.0), (4, 3.0), (28, 3.0), (50, 1.0)]


def golden(rep, out, js):
    """The golden JSON (floats: {dims, b64 little-endian float32}; images: {dims [H,W,3], b64 uint8}):
      model, generated_by; model_files {path: sha256} of the replica folder it was computed for
      tokenizers   per tokenizer: max_length, bos/eos/pad/unk ids, pad_token
      tokens       per prompt: ids of tokenizer, tokenizer_2 (77) and tokenizer_3 (256) as diffusers
                   gives them; "transformers_js": {tokenizer: ids} only where transformers.js 4.3.1
                   differs (the prompt over the limits: it loses the closing end token)
      conditioning for 2 prompts: encoder_hidden_states (1,333,joint) with T5, _no_t5 (1,154,joint)
                   with 77 zero tokens, pooled_projections (1,P_L+P_G)
      long_prompt  pooled_projections of the long prompt with diffusers' ids and with transformers.js'
      sigmas       get_sigmas for (steps, shift) cases
      graphs       one PyTorch input -> output pair for transformer, vae_decoder, vae_encoder
      runs         full text-to-image runs: params, sigmas, timesteps, final latents, rgb
      sensitivity_psnr_db  golden image vs the same run with a known mistake"""
    g = {"model": "sd3-tiny", "generated_by": GENERATED_BY, "model_files": folder_files(out)}
    g["tokenizers"] = {
        "tokenizer": {"max_length": CLIP_LEN, "bos_id": rep.tokenizer.bos_id, "eos_id": rep.tokenizer.eos_id,
                      "pad_id": rep.tokenizer.pad_id, "pad_token": rep.tokenizer.pad_token},
        "tokenizer_2": {"max_length": CLIP_LEN, "bos_id": rep.tokenizer_2.bos_id, "eos_id": rep.tokenizer_2.eos_id,
                        "pad_id": rep.tokenizer_2.pad_id, "pad_token": rep.tokenizer_2.pad_token},
        "tokenizer_3": {"max_length": T5_LEN, "eos_id": rep.tokenizer_3.eos_id, "pad_id": rep.tokenizer_3.pad_id,
                        "unk_id": rep.tokenizer_3.unk_id, "pad_token": "<pad>"},
    }
    g["tokens"] = []
    for i, p in enumerate(PROMPTS):
        entry = {"prompt": p}
        for name, L in (("tokenizer", CLIP_LEN), ("tokenizer_2", CLIP_LEN), ("tokenizer_3", T5_LEN)):
            entry[name] = getattr(rep, name).encode(p, L)
        differs = {name: js[name][i] for name in ("tokenizer", "tokenizer_2", "tokenizer_3") if js and js[name][i] != entry[name]}
        if differs:
            entry["transformers_js"] = differs
        g["tokens"].append(entry)
    g["conditioning"] = []
    for i in CONDITIONING_PROMPTS:
        ctx, pooled = encode_prompt(rep, [PROMPTS[i]])
        ctx0, _ = encode_prompt(rep, [PROMPTS[i]], use_t5=False)
        g["conditioning"].append({"prompt": PROMPTS[i], "encoder_hidden_states": tensor(ctx),
                                  "encoder_hidden_states_no_t5": tensor(ctx0), "pooled_projections": tensor(pooled)})
    # the long prompt: pooled with the end token kept (diffusers) and lost (transformers.js as is)
    li = PROMPTS.index(LONG_PROMPT)
    _, pooled_ok = encode_prompt(rep, [LONG_PROMPT])
    _, pooled_js = encode_prompt(rep, [LONG_PROMPT], clip_ids=([js["tokenizer"][li]], [js["tokenizer_2"][li]]))
    g["long_prompt"] = {"prompt_index": li, "pooled_projections": tensor(pooled_ok),
                        "pooled_projections_transformers_js_ids": tensor(pooled_js)}
    g["sigmas"] = [{"steps": n, "shift": s, "sigmas": get_sigmas(n, s, 1000).tolist()} for n, s in SIGMA_CASES]
    g["graphs"] = graph_goldens(rep)
    g["runs"], images = [], {}
    for name, pi, kw in RUNS:
        latents, rgb, sigmas, timesteps = generate(rep, PROMPTS[pi], "", **kw)
        images[name] = rgb
        g["runs"].append({"name": name, "prompt": PROMPTS[pi], "negativePrompt": "", "seed": kw["seed"],
                          "numInferenceSteps": kw["steps"], "guidanceScale": kw["guidance_scale"], "width": kw["width"],
                          "height": kw["height"], "useT5": kw["use_t5"],
                          "noT5Tokens": None if kw["use_t5"] else kw.get("no_t5_tokens", CLIP_LEN),
                          "sigmas": sigmas.tolist(), "timesteps": timesteps.tolist(),
                          "latents": tensor(latents), "rgb": image(rgb)})
    g["sensitivity_psnr_db"] = sensitivity(rep, images)
    return g


def graph_goldens(rep):
    """One PyTorch input -> output pair per graph, to debug a graph in isolation. Small shapes to keep
    the file small (every axis but the channels is dynamic: 12 context tokens, 2x3 latents, 16x24 px)."""
    gen = torch.Generator().manual_seed(11)
    ct = rep.configs["transformer"]
    args = (torch.randn(2, 16, 8, 8, generator=gen), torch.randn(2, 12, ct["joint_attention_dim"], generator=gen),
            torch.randn(2, ct["pooled_projection_dim"], generator=gen), torch.tensor([1000.0, 500.0]))
    with torch.no_grad():
        res = {"transformer": {"inputs": dict(zip(GRAPH_IO["transformer"][0], map(tensor, args))),
                               "outputs": {"out_hidden_states": tensor(rep.transformer(*args))}}}
        z = torch.randn(1, 16, 2, 3, generator=gen)
        res["vae_decoder"] = {"inputs": {"latent_sample": tensor(z)}, "outputs": {"sample": tensor(rep.vae_decoder(z))}}
        x = torch.rand(1, 3, 16, 24, generator=gen) * 2 - 1
        res["vae_encoder"] = {"inputs": {"sample": tensor(x)}, "outputs": {"latent_parameters": tensor(rep.vae_encoder(x))}}
    return res


def sensitivity(rep, images):
    """PSNR (dB) of the golden image against images made with a known mistake: a correct engine must
    clear the issue's 45 dB bar, each mistake here must not."""
    pi, kw = RUNS[0][1], RUNS[0][2]
    ref = images[RUNS[0][0]]
    out = {}
    for variant in ("last_hidden_state", "clip_g_fixed_index_of_clip_l", "clip_order_g_l", "t5_ignored",
                    "zero_negative", "swapped_cfg_batch"):
        out[variant] = round(psnr(ref, generate(rep, PROMPTS[pi], "", _variant=variant, **kw)[1]), 2)
    out["no_t5_77_vs_256_zero_tokens"] = round(psnr(images[RUNS[1][0]], images[RUNS[3][0]]), 2)
    return out


# ---- main -------------------------------------------------------------------------------------
def build(out, golden_path=None, clip_tokenizer_json=True, log=print):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    rep = Replica()
    diffs = build_folder(rep, out, clip_tokenizer_json)
    for k, v in diffs.items():
        log(f"  {k}: onnxruntime vs PyTorch max abs diff {v:.2e}")
    js = check_tokenizers_js(rep, out, PROMPTS) if clip_tokenizer_json else None
    if golden_path:
        if js is None:
            raise ValueError("the golden file records transformers.js' ids: build it with the CLIP tokenizer.json files")
        g = golden(rep, out, js)
        write_json(golden_path, g)
        log(f"  golden: {golden_path} ({os.path.getsize(golden_path) / 1e3:.0f} kB); sensitivity {g['sensitivity_psnr_db']}")
    return rep, diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the replica folder (Hub layout) to (re)write")
    ap.add_argument("--golden", help="golden JSON path (default: <out>/../sd3-golden.json)")
    ap.add_argument("--no-golden", action="store_true", help="only the folder and its checks")
    ap.add_argument("--no-clip-tokenizer-json", action="store_true",
                    help="CLIP tokenizers as vocab.json + merges.txt only (what CLIPTokenizer.save_pretrained writes)")
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out)
    golden_path = None if a.no_golden else (a.golden or os.path.join(os.path.dirname(out), "sd3-golden.json"))
    build(out, golden_path, clip_tokenizer_json=not a.no_clip_tokenizer_json)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
