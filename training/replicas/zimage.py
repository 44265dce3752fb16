"""Tiny random replicas of Z-Image-Turbo's browser exports (the webnn/Z-Image-Turbo layout that
microsoft/webnn-developer-preview's demos/z-image-turbo runs), in BOTH graph contract versions, and
PyTorch golden values for the TypeScript engine's zimage family. See training/replicas/README.md.

    /usr/bin/python3 training/replicas/zimage.py --out src/engine/families/zimage/__replica__
    (writes zimage-tiny/ (older contract), zimage-tiny-fp16/ (newer contract) and zimage-golden.json)

- zimage-tiny (older contract): fp32 inputs/outputs, latents [1,16,1,h,w], transformer output
  `unified_results` [16,1,h,w], text encoder output `encoder_hidden_state`, one `.onnx_data` per
  large graph.
- zimage-tiny-fp16 (newer contract): fp16 inputs/outputs, latents [1,16,h,w], transformer output
  `sample`, text encoder output `encoder_hidden_states`, external data in two shards `.onnx_data` +
  `.onnx_data_1`.
Both hold the same weights (rounded to fp16, stored as fp16 initializers Cast to fp32 in the graph).

The pipeline is diffusers' ZImagePipeline: the prompt through the chat template (user message,
generation prompt, enable_thinking=True: no think block), at most 512 tokens, the text encoder's
second-to-last hidden state (padding dropped), sigmas with sigma_min = 0 and shift 3.0, the
transformer fed t = (1000 - sigma * 1000) / 1000 and its output negated into the velocity, Euler, no
CFG; 9 steps = 8 transformer passes (the last step goes from sigma 0 to 0). Decode
`latents / scaling_factor + shift_factor` with the VAE config's FLUX values (0.3611, 0.1159).
Initial noise: webdit.pipeline.initial_latents (mulberry32 + Box-Muller, as src/engine/core/noise.ts).

Deterministic. Every graph: opset 17, onnx.checker, onnxruntime (node) vs PyTorch on several shapes;
the tokenizer and chat template are checked against transformers.js. Needs `npm install` done."""
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
from onnx import TensorProto, external_data_helper

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

from replicas import qwen_tokenizer as Q  # noqa: E402
from replicas import sd3_models  # noqa: E402
from replicas import zimage_models as M  # noqa: E402
from replicas.sd3 import folder_files, image, psnr, tensor  # noqa: E402
from replicas.sd3_models import randomize  # noqa: E402
from replicas.sd3_tensorstack import fp16_weights  # noqa: E402
from replicas.tokenizers import CAPTIONS  # noqa: E402
from webdit.export import read_json, sha256, write_json  # noqa: E402,F401 (sha256: tests use it from here)
from webdit.pipeline import initial_latents, to_uint8  # noqa: E402

OPSET = 17
SEED = 5
N_MERGES = 300
GENERATED_BY = "training/replicas/zimage.py (PyTorch, fp16-rounded weights)"
DIFFUSERS_VERSION = "0.36.0.dev0"
OLD, NEW = "zimage-tiny", "zimage-tiny-fp16"  # contract versions: folder names
MAX_ABS_DIFF = 1e-4        # fp32 outputs: onnxruntime vs PyTorch
FP16_REL = 2e-3            # fp16 outputs: both round the same fp32 value, at most ~1 ulp apart

# ---- configs (real field names, tiny sizes) -----------------------------------------------------
def text_encoder_config(vocab_size, tok):
    """transformers' Qwen3Config (Qwen3-4B's fields), tiny: 3 layers, so hidden_states[-2] is layer 2's
    output (before the final norm). vocab padded past the tokenizer, as the real 151936 > 151669."""
    return {"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": tok.added["<|endoftext|>"], "eos_token_id": tok.added["<|im_end|>"], "head_dim": 8,
            "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
            "max_position_embeddings": 40960, "max_window_layers": 3, "model_type": "qwen3",
            "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
            "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
            "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True,
            "use_sliding_window": False, "vocab_size": vocab_size}


TRANSFORMER_CONFIG = {"_class_name": "ZImageTransformer2DModel", "_diffusers_version": DIFFUSERS_VERSION,
                      "all_f_patch_size": [1], "all_patch_size": [2], "axes_dims": [4, 6, 6],
                      "axes_lens": [1024, 512, 512], "cap_feat_dim": 32, "dim": 32, "in_channels": 16,
                      "n_heads": 2, "n_kv_heads": 2, "n_layers": 2, "n_refiner_layers": 1, "norm_eps": 1e-05,
                      "qk_norm": True, "rope_theta": 256.0, "t_scale": 1000.0}

# FLUX.1's VAE config (Z-Image uses that VAE), tiny channels; sample_size 128 is the replica's native size
VAE_CONFIG = {"_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION, "act_fn": "silu",
              "block_out_channels": [8, 8, 16, 16], "down_block_types": ["DownEncoderBlock2D"] * 4,
              "force_upcast": True, "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None,
              "layers_per_block": 2, "mid_block_add_attention": True, "norm_num_groups": 4, "out_channels": 3,
              "sample_size": 128, "scaling_factor": 0.3611, "shift_factor": 0.1159,
              "up_block_types": ["UpDecoderBlock2D"] * 4, "use_post_quant_conv": False, "use_quant_conv": False}

SCHEDULER_CONFIG = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": DIFFUSERS_VERSION,
                    "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False}

# graph file -> (inputs, outputs, dynamic axes) per contract version; free dims named as the webnn
# demo's freeDimensionOverrides name them (batch_size, sequence_length, num_frames, height, width, seq_len)
TE, DIT, STEP, PRE, VAE = ("text_encoder_model_q4f16.onnx", "transformer_model_q4f16.onnx", "scheduler_step_model_f16.onnx",
                           "vae_pre_process_model_f16.onnx", "vae_decoder_model_f16.onnx")
SEQ = {0: "batch_size", 1: "sequence_length"}
VAE_IO = (["latent_sample"], ["sample"], {"latent_sample": {0: "batch_size", 2: "latent_height", 3: "latent_width"},
                                          "sample": {0: "batch_size", 2: "latent_height * 8", 3: "latent_width * 8"}})
GRAPH_IO = {
    OLD: {
        TE: (["input_ids", "attention_mask"], ["encoder_hidden_state"],
             {"input_ids": SEQ, "attention_mask": SEQ, "encoder_hidden_state": SEQ}),
        DIT: (["hidden_states", "timestep", "encoder_hidden_states"], ["unified_results"],
              {"hidden_states": {0: "batch_size", 2: "num_frames", 3: "height", 4: "width"}, "timestep": {0: "batch_size"},
               "encoder_hidden_states": {0: "batch_size", 1: "seq_len"},
               "unified_results": {1: "num_frames", 2: "height", 3: "width"}}),
        STEP: (["noise_pred", "latents", "step_info"], ["latents_out"],
               {"noise_pred": {2: "height", 3: "width"}, "latents": {0: "batch", 3: "height", 4: "width"},
                "latents_out": {0: "batch", 3: "height", 4: "width"}}),
        PRE: (["latents"], ["scaled_latents"], {"latents": {0: "batch", 3: "height", 4: "width"},
                                                "scaled_latents": {0: "batch", 2: "height", 3: "width"}}),
        VAE: VAE_IO,
    },
    NEW: {
        TE: (["input_ids", "attention_mask"], ["encoder_hidden_states"],
             {"input_ids": SEQ, "attention_mask": SEQ, "encoder_hidden_states": SEQ}),
        DIT: (["hidden_states", "timestep", "encoder_hidden_states"], ["sample"],
              {"hidden_states": {0: "batch_size", 2: "height", 3: "width"}, "timestep": {0: "batch_size"},
               "encoder_hidden_states": {0: "batch_size", 1: "seq_len"},
               "sample": {0: "batch_size", 2: "height", 3: "width"}}),
        STEP: (["noise_pred", "latents", "step_info"], ["latents_out"],
               {"noise_pred": {0: "batch", 2: "height", 3: "width"}, "latents": {0: "batch", 2: "height", 3: "width"},
                "latents_out": {0: "batch", 2: "height", 3: "width"}}),
        PRE: (["latents"], ["scaled_latents"], {"latents": {0: "batch", 2: "height", 3: "width"},
                                                "scaled_latents": {0: "batch", 2: "height", 3: "width"}}),
        VAE: VAE_IO,
    },
}
SHARDS = {OLD: {TE: 1, DIT: 1}, NEW: {TE: 2, DIT: 2}}  # external data files per graph (0: inline)


# ---- the replica ------------------------------------------------------------------------------
class Replica:
    """Tokenizer, configs and PyTorch modules (weights rounded to fp16), all deterministic."""

    def __init__(self):
        self.tokenizer = Q.QwenBPETokenizer(Q.learn_merges(CAPTIONS, N_MERGES))
        tc = text_encoder_config(64 * math.ceil(self.tokenizer.size / 64), self.tokenizer)
        self.configs = {"text_encoder": tc, "transformer": TRANSFORMER_CONFIG, "vae": VAE_CONFIG,
                        "scheduler": SCHEDULER_CONFIG}
        assert TRANSFORMER_CONFIG["cap_feat_dim"] == tc["hidden_size"]
        self.text_encoder = randomize(M.Qwen3Model(tc), SEED)
        self.transformer = randomize(M.ZImageTransformer(TRANSFORMER_CONFIG), SEED + 1)
        self.vae_decoder = randomize(sd3_models.Decoder(VAE_CONFIG), SEED + 2)
        g = torch.Generator().manual_seed(SEED + 3)  # randomize() leaves RMSNorms at ones: move them too
        for module in (self.text_encoder, self.transformer):
            for m in module.modules():
                if isinstance(m, M.RMSNorm):
                    m.weight.data.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=g))
        emphasize_conditioning(self)
        round_to_fp16(self)

    def modules(self):
        return {"text_encoder": self.text_encoder, "transformer": self.transformer, "vae_decoder": self.vae_decoder}

    def graphs(self, version):
        """{file: module} of one contract version, fed and answering in that version's dtypes and ranks."""
        vae = self.configs["vae"]
        shift = self.configs["scheduler"]["shift"]
        old = version == OLD
        g = {TE: M.TextEncoderGraph(self.text_encoder),
             DIT: M.TransformerV1(self.transformer) if old else self.transformer,
             STEP: M.SchedulerStep(shift, five_d=old),
             PRE: M.VaePreProcess(vae["scaling_factor"], vae["shift_factor"], five_d=old),
             VAE: self.vae_decoder}
        return g if old else {k: M.Fp16IO(v) for k, v in g.items()}

    def check_inputs(self, version, file):
        """Input sets per graph (the first is traced), in the version's dtypes: other shapes each."""
        g = torch.Generator().manual_seed(7)
        half = (lambda x: x.half()) if version == NEW else (lambda x: x)  # noqa: E731
        D = self.configs["text_encoder"]["hidden_size"]
        if file == TE:
            ids = [self.tokenizer.encode(Q.chat_text(p)) for p in ("a photo of a cat on a sofa", "", LONG_PROMPT)]
            return [(torch.tensor([i]), torch.ones(1, len(i), dtype=torch.int64)) for i in ids]
        if file == DIT:
            def mk(hw, L, t):
                x = torch.randn(1, 16, hw, hw, generator=g)
                return (half(x[:, :, None] if version == OLD else x), half(torch.tensor([t])),
                        half(torch.randn(1, L, D, generator=g)))
            return [mk(8, 20, 0.0), mk(4, 7, 0.5), mk(16, 33, 0.9765)]
        if file == STEP:
            def mk(hw, i, n):
                noise, lat = torch.randn(16, 1, hw, hw, generator=g), torch.randn(1, 16, 1, hw, hw, generator=g)
                if version == NEW:
                    noise, lat = noise[:, 0][None], lat[:, :, 0]
                return half(noise), half(lat), half(torch.tensor([float(i), float(n)]))
            return [mk(8, 0, 9), mk(4, 7, 9), mk(6, 8, 9)]
        if file == PRE:
            shapes = [(1, 16, 1, 8, 8), (2, 16, 1, 4, 6)] if version == OLD else [(1, 16, 8, 8), (2, 16, 4, 6)]
            return [(half(torch.randn(*s, generator=g)),) for s in shapes]
        if file == VAE:
            return [(half(torch.randn(1, 16, 8, 8, generator=g)),), (half(torch.randn(2, 16, 4, 6, generator=g)),)]
        raise KeyError(file)


@torch.no_grad()
def emphasize_conditioning(rep):
    """Random tiny models barely listen to their text. Larger residual updates in the text encoder
    (neighbouring hidden states differ more), a strong final norm, and a caption embedder that
    weighs more make every mistake in the golden's sensitivity table land under the 45 dB bar."""
    g = torch.Generator().manual_seed(SEED + 10)
    te = rep.text_encoder
    te.norm.weight.copy_(1.0 + 0.8 * torch.randn(te.norm.weight.shape, generator=g))
    for layer in te.layers:
        layer.self_attn.o_proj.weight.mul_(2.0)
        layer.down_proj.weight.mul_(2.0)
    rep.transformer.cap_embedder.weight.mul_(3.0)
    for blk in rep.transformer.layers:
        blk.attention.to_k.weight.mul_(2.0)


@torch.no_grad()
def round_to_fp16(rep):
    for m in rep.modules().values():
        for t in list(m.parameters()) + list(m.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
        m.eval()


# ---- export -----------------------------------------------------------------------------------
NP = {"float32": np.float32, "float16": np.float16, "int64": np.int64}


def ort_run(path, inputs):
    """onnxruntime-node with typed inputs/outputs (float32, float16, int64): {name: numpy}."""
    req = {"model": os.path.abspath(path), "inputs": {}}
    for k, v in inputs.items():
        v = np.ascontiguousarray(v)
        typ = {np.dtype(np.int64): "int64", np.dtype(np.float16): "float16"}.get(v.dtype, "float32")
        req["inputs"][k] = {"type": typ, "dims": list(v.shape), "b64": base64.b64encode(v.astype(NP[typ]).tobytes()).decode()}
    p = subprocess.run(["node", os.path.join(TRAINING, "replicas", "ort_typed.mjs")], input=json.dumps(req).encode(),
                       capture_output=True, cwd=os.path.dirname(TRAINING))
    if p.returncode != 0:
        raise RuntimeError(f"onnxruntime failed on {path}: {p.stderr.decode()[-2000:]}\nIs `npm install` done?")
    outs = json.loads(p.stdout)["outputs"]
    return {k: np.frombuffer(base64.b64decode(o["b64"]), NP[o["type"]]).reshape(o["dims"]) for k, o in outs.items()}


def check_graph(module, path, inputs_list, io):
    """onnxruntime vs PyTorch on every input set; returns the worst difference (relative for fp16)."""
    in_names, out_names, _ = io
    worst = 0.0
    for args in inputs_list:
        with torch.no_grad():
            ref = module(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = ort_run(path, {n: a.numpy() for n, a in zip(in_names, args)})
        for n, r in zip(out_names, ref):
            g, r = got[n], r.numpy()
            if g.shape != r.shape or g.dtype != r.dtype:
                raise RuntimeError(f"{path}: output {n} is {g.dtype}{list(g.shape)} in onnxruntime, {r.dtype}{list(r.shape)} in PyTorch")
            d = np.abs(g.astype(np.float64) - r.astype(np.float64))
            if r.dtype == np.float16:
                d = float((d / (1e-4 / FP16_REL + np.abs(r.astype(np.float64)))).max())
                if d > FP16_REL:
                    raise RuntimeError(f"{path}: output {n} differs from PyTorch by {d:.2e} (relative) > {FP16_REL}")
            else:
                d = float(d.max())
                if d > MAX_ABS_DIFF:
                    raise RuntimeError(f"{path}: output {n} differs from PyTorch by {d:.2e} > {MAX_ABS_DIFF}")
            worst = max(worst, d)
    return worst


def save_external(model, path, shards):
    """External data as the real exports: `<file>_data` (one shard) or `<file>_data` + `<file>_data_1`
    (two shards, split by bytes); small tensors stay inline (size_threshold 100, as optimum)."""
    name = os.path.basename(path)
    if shards == 1:
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=name + "_data",
                  size_threshold=100, convert_attribute=True)
        return
    big = [t for t in external_data_helper._get_all_tensors(model) if t.HasField("raw_data") and len(t.raw_data) >= 100]
    total, acc = sum(len(t.raw_data) for t in big), 0
    for t in big:
        location = name + ("_data" if acc < total / 2 else "_data_1")
        acc += len(t.raw_data)
        external_data_helper.set_external_data(t, location=location)
    external_data_helper.write_external_data_tensors(model, os.path.dirname(path))
    onnx.save(model, path)


def export_graph(module, path, inputs_list, io, shards):
    in_names, out_names, dynamic = io
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(module, inputs_list[0], path, input_names=in_names, output_names=out_names,
                      dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True)
    model = fp16_weights(path)
    if shards:
        save_external(model, path, shards)
    else:
        onnx.save(model, path)
    onnx.checker.check_model(path)
    return check_graph(module, path, inputs_list, io)


def build_folder(rep, version, out):
    """One contract version's folder in the webnn Hub layout; returns {file: worst diff vs PyTorch}."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    tok = os.path.join(out, "tokenizer")
    write_json(os.path.join(tok, "tokenizer.json"), rep.tokenizer.tokenizer_json())
    write_json(os.path.join(tok, "tokenizer_config.json"), rep.tokenizer.tokenizer_config())
    write_json(os.path.join(out, "vae", "config.json"), rep.configs["vae"])
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), rep.configs["scheduler"])
    diffs = {}
    for file, module in rep.graphs(version).items():
        module.eval()
        diffs[file] = export_graph(module, os.path.join(out, "onnx", file), rep.check_inputs(version, file),
                                   GRAPH_IO[version][file], SHARDS[version].get(file, 0))
    return diffs


# ---- tokenizer and chat template vs transformers.js --------------------------------------------
def js_chat(out, prompts):
    req = {"dir": os.path.join(out, "tokenizer"), "class": "Qwen2Tokenizer", "prompts": prompts}
    p = subprocess.run(["node", os.path.join(TRAINING, "replicas", "chat_template_js.mjs")], input=json.dumps(req).encode(),
                       capture_output=True, cwd=os.path.dirname(TRAINING))
    if p.returncode != 0:
        raise RuntimeError(f"transformers.js failed: {p.stderr.decode()[-2000:]}\nIs `npm install` done?")
    return json.loads(p.stdout)


def check_tokenizer_js(rep, out, prompts):
    """transformers.js' chat template text (with and without thinking) and ids equal the Python ones."""
    js = js_chat(out, prompts)
    for i, p in enumerate(prompts):
        for got, want, what in ((js["text"][i], Q.chat_text(p), "chat text"),
                                (js["text_no_thinking"][i], Q.chat_text(p, enable_thinking=False), "chat text (thinking off)"),
                                (js["ids"][i], rep.tokenizer.encode(Q.chat_text(p)), "ids")):
            if got != want:
                raise RuntimeError(f"transformers.js {what} for {p!r}: {got!r}, Python: {want!r}")
    return js


# ---- the pipeline, as diffusers' ZImagePipeline --------------------------------------------------
def get_sigmas(steps, shift, num_train_timesteps, sigma_min=0.0):
    """diffusers' FlowMatchEulerDiscreteScheduler.set_timesteps after ZImagePipeline sets
    scheduler.sigma_min = 0: linspace(sigma_max * T, sigma_min * T, N) / T, shifted, float32, then a
    final 0. (sigma_max = shift(1) = 1.)"""
    T = num_train_timesteps
    s = np.linspace(1.0 * T, sigma_min * T, steps) / T
    s = shift * s / (1 + (shift - 1) * s)
    return np.concatenate([s, [0.0]]).astype(np.float32)


def transformer_t(sigmas, num_train_timesteps):
    """t fed to the transformer: timesteps = sigmas * T (float32), t = (T - timestep) / T (float32)."""
    ts = torch.from_numpy(np.asarray(sigmas[:-1], np.float32)) * num_train_timesteps
    return (num_train_timesteps - ts) / num_train_timesteps


@torch.no_grad()
def encode_prompt(rep, prompt, version=OLD, variant=None):
    """-> second-to-last hidden state (1, L, D) of the chat-templated prompt (fp16-rounded for the
    newer contract, whose graph answers in fp16). variant: a deliberate mistake (sensitivity only)."""
    text = {"no_chat_template": prompt, "thinking_disabled": Q.chat_text(prompt, enable_thinking=False)}.get(variant, Q.chat_text(prompt))
    ids = rep.tokenizer.encode(text, Q.MAX_SEQUENCE_LENGTH)
    layer = {"last_hidden_state": -1, "third_to_last_hidden_state": -3}.get(variant, -2)
    h = rep.text_encoder(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.int64))[layer]
    return h.half().float() if version == NEW else h


@torch.no_grad()
def generate(rep, prompt, seed=0, steps=9, width=64, height=64, version=OLD, variant=None):
    """One image -> final latents (1,16,h,w) float32, RGB uint8 (H,W,3), sigmas, transformer t values,
    transformer passes. variant: a deliberate mistake, for the sensitivity table only."""
    sch, vae = rep.configs["scheduler"], rep.configs["vae"]
    T = sch["num_train_timesteps"]
    shift = 1.0 if variant == "shift_1" else sch["shift"]
    f16 = (lambda x: x.half().float()) if version == NEW else (lambda x: x)  # noqa: E731
    scale = 2 ** (len(vae["block_out_channels"]) - 1)
    # 1. the chat-templated prompt -> second-to-last hidden state
    cond = encode_prompt(rep, prompt, version, variant)
    # 2. sigmas (sigma_min 0), t = 1 - sigma as (T - sigma * T) / T
    sigmas = get_sigmas(steps, shift, T, sigma_min=rep_sigma_min(variant, shift, T))
    t_in = transformer_t(sigmas, T)
    if variant == "t_equals_sigma":
        t_in = torch.from_numpy(sigmas[:-1].copy())
    # 3. initial noise
    latents = torch.from_numpy(initial_latents(seed, (1, 16, height // scale, width // scale)))
    # 4. Euler on the negated model output; a step from sigma 0 to 0 changes nothing: no pass
    passes = 0
    for i in range(steps):
        if sigmas[i + 1] == sigmas[i]:
            continue
        out = f16(rep.transformer(f16(latents), f16(t_in[i:i + 1]), cond))
        passes += 1
        v = out if variant == "velocity_not_negated" else -out
        latents = latents + (float(sigmas[i + 1]) - float(sigmas[i])) * v
    # 5. decode with the VAE config's FLUX values
    z = f16(latents / vae["scaling_factor"] + vae["shift_factor"])
    rgb = to_uint8(f16(rep.vae_decoder(z)))[0]
    return latents.numpy(), rgb, sigmas, t_in.numpy(), passes


def rep_sigma_min(variant, shift, T):
    """0 as diffusers' ZImagePipeline sets it; the "default_sigma_min" mistake keeps the scheduler's
    own shift(1/T) (the webnn demo's scheduler.js builds its timesteps so, bar the last)."""
    if variant == "default_sigma_min":
        return shift * (1 / T) / (1 + (shift - 1) * (1 / T))
    return 0.0


# ---- golden -----------------------------------------------------------------------------------
LONG_PROMPT = " ".join(["a watercolor painting of a lighthouse on a rocky coast at sunset, with seagulls"] * 40)
PROMPTS = [
    "a photo of a cat sitting on a red sofa",
    "",
    "An Astronaut riding a HORSE on the moon,   digital art!!",
    "It's a dog's life; we're here, they'd've said, IT'S",
    "café crème brûlée, Straße, naïve, ÉCOLE",
    "a photo of 富士山 at sunrise 🌅🌅 and 👩‍❤️‍👨",
    "tab\tnew\nline  multiple   spaces \n\n  end",
    "3.14159 and 1024x1024, 4k, 8k render",
    "a prompt with <|im_end|> and <think> inside",
    "  !!wow  ?? \r\n\t end   ",
    LONG_PROMPT,
]
CONDITIONING_PROMPTS = [0, 2]
RUNS = [  # (name, version, prompt index, params)
    ("v1_64x64", OLD, 0, dict(seed=42, steps=9, width=64, height=64)),
    ("v1_128x128", OLD, 2, dict(seed=7, steps=9, width=128, height=128)),
    ("v2_64x64", NEW, 0, dict(seed=42, steps=9, width=64, height=64)),
    ("v2_128x128", NEW, 2, dict(seed=7, steps=9, width=128, height=128)),
]
SIGMA_CASES = [1, 2, 3, 9, 28]
SENSITIVITY = ("last_hidden_state", "third_to_last_hidden_state", "no_chat_template", "thinking_disabled",
               "t_equals_sigma", "velocity_not_negated", "default_sigma_min", "shift_1")


def graph_layout(out):
    """{file: {inputs/outputs: [{name, dtype, dims}] in order, initializer_dtypes, external_data}}."""
    dt = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.INT64: "int64"}
    rec = {}
    for file in sorted(os.listdir(os.path.join(out, "onnx"))):
        if not file.endswith(".onnx"):
            continue
        m = onnx.load(os.path.join(out, "onnx", file), load_external_data=False)

        def vi(v):
            t = v.type.tensor_type
            return {"name": v.name, "dtype": dt[t.elem_type],
                    "dims": [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]}
        ext = sorted({e.value for t in external_data_helper._get_all_tensors(m) for e in t.external_data if e.key == "location"})
        rec[file] = {"inputs": [vi(v) for v in m.graph.input], "outputs": [vi(v) for v in m.graph.output],
                     "initializer_dtypes": sorted({dt[i.data_type] for i in m.graph.initializer if i.data_type in dt}),
                     "external_data": ext}
    return rec


def golden(rep, root, js):
    """The golden JSON (floats {dims, b64 little-endian float32}, images {dims [H,W,3], b64 uint8}):
      model_files   {"<folder>/<path>": sha256} of both replica folders
      layout        per folder, per graph: inputs/outputs (name, dtype, dims), initializer dtypes, external data
      chat_template the tokenizer_config.json template; max_sequence_length 512
      tokens[]      {prompt, text (chat template applied), ids (<= 512)}, equal to transformers.js'
      conditioning[] {prompt, version, encoder_hidden_states (1,L,D)}: second-to-last hidden state
      sigmas[]      {steps, shift, sigmas (sigma_min 0), t (transformer input)}
      runs[]        {name, version, prompt, negativePrompt "", seed, numInferenceSteps 9, guidanceScale 1,
                     width, height, sigmas, t, transformerPasses, latents, rgb}
      psnr_v1_vs_v2_db  the same run through both contracts (fp16 I/O rounding only)
      sensitivity_psnr_db  the first run against the same run with one known mistake"""
    g = {"model": "zimage-tiny", "generated_by": GENERATED_BY,
         "model_files": {f"{v}/{p}": h for v in (OLD, NEW) for p, h in folder_files(os.path.join(root, v)).items()},
         "layout": {v: graph_layout(os.path.join(root, v)) for v in (OLD, NEW)},
         "chat_template": Q.CHAT_TEMPLATE, "max_sequence_length": Q.MAX_SEQUENCE_LENGTH}
    g["tokens"] = []
    for i, p in enumerate(PROMPTS):
        ids = rep.tokenizer.encode(Q.chat_text(p), Q.MAX_SEQUENCE_LENGTH)
        assert js["ids"][i][:Q.MAX_SEQUENCE_LENGTH] == ids
        g["tokens"].append({"prompt": p, "text": Q.chat_text(p), "ids": ids, "untruncated_length": len(js["ids"][i])})
    g["conditioning"] = [{"prompt": PROMPTS[i], "version": v, "encoder_hidden_states": tensor(encode_prompt(rep, PROMPTS[i], v))}
                         for v in (OLD, NEW) for i in CONDITIONING_PROMPTS]
    T, shift = SCHEDULER_CONFIG["num_train_timesteps"], SCHEDULER_CONFIG["shift"]
    g["sigmas"] = [{"steps": n, "shift": shift, "sigmas": get_sigmas(n, shift, T).tolist(),
                    "t": transformer_t(get_sigmas(n, shift, T), T).tolist()} for n in SIGMA_CASES]
    g["runs"], images = [], {}
    for name, version, pi, kw in RUNS:
        latents, rgb, sigmas, t_in, passes = generate(rep, PROMPTS[pi], version=version, **kw)
        images[name] = rgb
        g["runs"].append({"name": name, "version": version, "prompt": PROMPTS[pi], "negativePrompt": "", "seed": kw["seed"],
                          "numInferenceSteps": kw["steps"], "guidanceScale": 1, "width": kw["width"], "height": kw["height"],
                          "sigmas": sigmas.tolist(), "t": t_in.tolist(), "transformerPasses": passes,
                          "latents": tensor(latents), "rgb": image(rgb)})
    g["psnr_v1_vs_v2_db"] = {s: round(psnr(images[f"v1_{s}"], images[f"v2_{s}"]), 2) for s in ("64x64", "128x128")}
    name, version, pi, kw = RUNS[0]
    g["sensitivity_psnr_db"] = {v: round(psnr(images[name], generate(rep, PROMPTS[pi], version=version, variant=v, **kw)[1]), 2)
                                for v in SENSITIVITY}
    return g


# ---- main -------------------------------------------------------------------------------------
def build(root, golden_path=None, log=print):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    rep = Replica()
    diffs = {}
    for version in (OLD, NEW):
        diffs[version] = build_folder(rep, version, os.path.join(root, version))
        for k, v in diffs[version].items():
            log(f"  {version}/onnx/{k}: onnxruntime vs PyTorch worst diff {v:.2e}")
    js = check_tokenizer_js(rep, os.path.join(root, OLD), PROMPTS)
    if golden_path:
        g = golden(rep, root, js)
        write_json(golden_path, g)
        log(f"  golden: {golden_path} ({os.path.getsize(golden_path) / 1e3:.0f} kB); v1 vs v2 {g['psnr_v1_vs_v2_db']}; "
            f"sensitivity {g['sensitivity_psnr_db']}")
    return rep, diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder that receives zimage-tiny/, zimage-tiny-fp16/ (rewritten)")
    ap.add_argument("--golden", help="golden JSON path (default: <out>/zimage-golden.json)")
    ap.add_argument("--no-golden", action="store_true", help="only the folders and their checks")
    a = ap.parse_args(argv)
    root = os.path.abspath(a.out)
    build(root, None if a.no_golden else (a.golden or os.path.join(root, "zimage-golden.json")))
    for v in (OLD, NEW):
        d = os.path.join(root, v)
        total = sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)
        print(f"wrote {d} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
