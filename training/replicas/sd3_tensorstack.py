"""The SD3 replica (same PyTorch modules and weights as sd3-tiny, seed sd3.SEED) in the layout of the
TensorStack/stable-diffusion-3.5-{medium,large,large-turbo}-onnx Hub repos (OnnxStack / Amuse,
"Onnx Olive DirectML Optimized"), with its own PyTorch golden. See training/replicas/README.md.

    /usr/bin/python3 training/replicas/sd3_tensorstack.py \
        --out src/engine/families/sd3/__replica__/sd3-tensorstack-tiny
    (golden: <out>/../sd3-tensorstack-golden.json, or --golden PATH, --no-golden)

What differs from sd3-tiny (optimum layout): unet/ instead of transformer/; every graph's weights in
model.onnx.data (fp16, each initializer Cast to fp32 inside the graph) while inputs/outputs stay fp32;
the unet takes timestep second and answers out_sample, with a batch of exactly 1 (classifier-free
guidance = two passes); vae_encoder answers a 16-channel latent_sample (the mean); CLIP tokenizers
without tokenizer.json but with an onnxruntime-extensions tokenizer model.onnx; a 4-field scheduler
config. The golden is computed in PyTorch with the weights rounded to fp16, so its images equal
sd3-tiny's up to that rounding (the PSNR against sd3-golden.json's images is recorded)."""
import argparse
import base64
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TRAINING not in sys.path:
    sys.path.insert(0, TRAINING)

from replicas import sd3  # noqa: E402
from webdit.export import read_json, sha256, write_json  # noqa: E402
from webdit.pipeline import apply_guidance, euler_step, get_sigmas, get_timesteps, initial_latents, to_uint8  # noqa: E402

MAX_ABS_DIFF = 1e-4  # onnxruntime vs PyTorch (fp16-rounded weights): only fp32 op-order noise is left
DATA = "model.onnx.data"
GENERATED_BY = "training/replicas/sd3_tensorstack.py (PyTorch, fp16-rounded weights)"
B = "batch_size"

# The real scheduler_config.json is 141 bytes: the four fields of Stability's own file.
SCHEDULER_CONFIG = {"_class_name": "FlowMatchEulerDiscreteScheduler", "_diffusers_version": "0.31.0.dev0",
                    "num_train_timesteps": 1000, "shift": 3.0}
# The real model_index.json (706 bytes) is not readable here; diffusers' StableDiffusion3Pipeline
# index is assumed: it names "transformer" although the folder is unet/ (the engine must go by folder).
MODEL_INDEX = {k: v for k, v in sd3.MODEL_INDEX.items() if k not in ("feature_extractor", "image_encoder")}
MODEL_INDEX["_diffusers_version"] = "0.31.0.dev0"


class UNet(nn.Module):
    """SD3Transformer2DModel with TensorStack's input order: timestep second."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, hidden_states, timestep, encoder_hidden_states, pooled_projections):
        return self.transformer(hidden_states, encoder_hidden_states, pooled_projections, timestep)


class VaeEncoderMean(nn.Module):
    """vae_encoder -> latent_sample [1,16,h,w]: OnnxStack allocates a 16-channel output and scales it
    directly ((x - shift) * scale), so the graph gives a latent, not mean+logvar. The replica gives the
    mean (deterministic); a real Olive export may sample inside the graph."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, sample):
        return self.encoder(sample)[:, :16]


# graph -> (inputs, outputs, dynamic axes). unet: batch fixed to 1 (every other axis free, named as
# OnnxStack's free-dimension overrides name them); other graphs keep optimum's names and axes (the
# real ones are not readable here; TensorStack's code reads the text encoders' outputs by position).
GRAPH_IO = {
    "unet": (["hidden_states", "timestep", "encoder_hidden_states", "pooled_projections"], ["out_sample"],
             {"hidden_states": {2: "transformer_sample_height", 3: "transformer_sample_width"},
              "encoder_hidden_states": {1: "transformer_hidden_size"},
              "out_sample": {2: "transformer_sample_height", 3: "transformer_sample_width"}}),
    "text_encoder_3": sd3.GRAPH_IO["text_encoder_3"],
    "vae_decoder": sd3.GRAPH_IO["vae_decoder"],
    "vae_encoder": (["sample"], ["latent_sample"],
                    {"sample": {0: B, 2: "sample_height", 3: "sample_width"},
                     "latent_sample": {0: B, 2: "sample_height / 8", 3: "sample_width / 8"}}),
}
FOLDERS = ("text_encoder", "text_encoder_2", "text_encoder_3", "unet", "vae_decoder", "vae_encoder")


@torch.no_grad()
def round_to_fp16(rep):
    """Every float parameter and buffer of the replica rounded to fp16 (kept as fp32 tensors)."""
    for m in rep.modules().values():
        for t in list(m.parameters()) + list(m.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    return rep


class TensorStackReplica:
    """sd3.Replica (same seed and weights), rounded to fp16, with the TensorStack graph wrappers."""

    def __init__(self):
        self.rep = round_to_fp16(sd3.Replica())
        self.graphs = {"text_encoder": self.rep.text_encoder, "text_encoder_2": self.rep.text_encoder_2,
                       "text_encoder_3": self.rep.text_encoder_3, "unet": UNet(self.rep.transformer),
                       "vae_decoder": self.rep.vae_decoder, "vae_encoder": VaeEncoderMean(self.rep.vae_encoder)}
        for g in self.graphs.values():
            g.eval()
        self.configs = dict(self.rep.configs, unet=self.rep.configs["transformer"])

    def io(self, name):
        return self.rep.io(name) if name in ("text_encoder", "text_encoder_2") else GRAPH_IO[name]

    def check_inputs(self, name):
        if name != "unet":
            return self.rep.check_inputs(name)
        g = torch.Generator().manual_seed(8)
        ct = self.configs["unet"]
        mk = lambda hw, L, t: (torch.randn(1, 16, hw, hw, generator=g), torch.tensor([t]),  # noqa: E731
                               torch.randn(1, L, ct["joint_attention_dim"], generator=g),
                               torch.randn(1, ct["pooled_projection_dim"], generator=g))
        return [mk(8, sd3.CLIP_LEN + sd3.T5_LEN, 1000.0), mk(16, 2 * sd3.CLIP_LEN, 250.5), mk(4, 12, 3.0)]


def fp16_weights(path):
    """Every float initializer stored as fp16 and Cast back to fp32 in front of the graph: fp16 weights,
    fp32 inputs, outputs and arithmetic. The values are already fp16-exact (round_to_fp16) except for
    constants torch folded at export time, which this rounds."""
    model = onnx.load(path)
    g = model.graph
    casts, inits = [], []
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init)
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
            inits.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "_cast"))
        else:
            inits.append(init)
    del g.initializer[:]
    g.initializer.extend(inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return model


def export_graph(module, name, inputs_list, path, io):
    in_names, out_names, dynamic = io
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(module, inputs_list[0], path, input_names=in_names, output_names=out_names,
                      dynamic_axes=dynamic, opset_version=sd3.OPSET, do_constant_folding=True)
    model = fp16_weights(path)
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=DATA,
              size_threshold=100, convert_attribute=True)
    onnx.checker.check_model(path)
    return sd3.check_graph(module, path, inputs_list, io)


def clip_tokenizer_graph(tok):
    """onnxruntime-extensions' CLIPTokenizer custom op (domain ai.onnx.contrib) with the vocabulary and
    merges as attributes: the tokenizer/model.onnx OnnxStack runs. Only present, never run here (it needs
    the extensions library); the engine tokenizes from vocab.json + merges.txt."""
    node = helper.make_node("CLIPTokenizer", ["string_input"], ["input_ids", "attention_mask", "offset_mapping"],
                            domain="ai.onnx.contrib", name="CLIPTokenizer",
                            vocab=json.dumps(tok.vocab, ensure_ascii=False), merges=tok.merges_txt(),
                            padding_length=-1)
    graph = helper.make_graph([node], "clip_tokenizer",
                              [helper.make_tensor_value_info("string_input", TensorProto.STRING, [None])],
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [None, None]),
                               helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [None, None]),
                               helper.make_tensor_value_info("offset_mapping", TensorProto.INT64, [None, None, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", sd3.OPSET),
                                                   helper.make_opsetid("ai.onnx.contrib", 1)],
                             producer_name="training/replicas/sd3_tensorstack.py")


def build_folder(ts, out):
    rep = ts.rep
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    write_json(os.path.join(out, "model_index.json"), MODEL_INDEX)
    write_json(os.path.join(out, "scheduler", "scheduler_config.json"), SCHEDULER_CONFIG)
    for name in ("tokenizer", "tokenizer_2"):  # CLIPTokenizer's files, no tokenizer.json, plus model.onnx
        d = os.path.join(out, name)
        sd3.write_tokenizer(d, getattr(rep, name), slow_files=True)
        os.remove(os.path.join(d, "tokenizer.json"))
        onnx.save(clip_tokenizer_graph(getattr(rep, name)), os.path.join(d, "model.onnx"))
    # T5: tokenizer.json + config files (the real folder adds spiece.model and a SentencePiece model.onnx)
    sd3.write_tokenizer(os.path.join(out, "tokenizer_3"), rep.tokenizer_3, slow_files=False)
    diffs = {}
    for name in FOLDERS:
        write_json(os.path.join(out, name, "config.json"), ts.configs[name])
        diffs[name] = export_graph(ts.graphs[name], name, ts.check_inputs(name), os.path.join(out, name, "model.onnx"),
                                   ts.io(name))
    return diffs


# ---- pipeline: as sd3.generate, but classifier-free guidance as two batch-1 passes -----------------
@torch.no_grad()
def generate(ts, prompt, negative_prompt="", seed=0, steps=4, guidance_scale=7.0, width=64, height=64,
             use_t5=True, no_t5_tokens=sd3.CLIP_LEN):
    rep, unet = ts.rep, ts.graphs["unet"]
    vae = rep.configs["vae_decoder"]
    scale = 2 ** (len(vae["block_out_channels"]) - 1)
    ctx, pooled = sd3.encode_prompt(rep, [prompt], use_t5, no_t5_tokens)
    ctx_un, pooled_un = sd3.encode_prompt(rep, [negative_prompt], use_t5, no_t5_tokens)
    sigmas = get_sigmas(steps, rep.scheduler["shift"], rep.scheduler["num_train_timesteps"])
    timesteps = get_timesteps(sigmas, rep.scheduler["num_train_timesteps"])
    latents = torch.from_numpy(initial_latents(seed, (1, 16, height // scale, width // scale)))
    for i in range(steps):
        t = torch.full((1,), float(timesteps[i]))
        v = unet(latents, t, ctx, pooled)
        if guidance_scale > 1:
            v = apply_guidance(unet(latents, t, ctx_un, pooled_un), v, guidance_scale)
        latents = euler_step(latents, v, float(sigmas[i]), float(sigmas[i + 1]))
    rgb = to_uint8(rep.vae_decoder(latents / vae["scaling_factor"] + vae["shift_factor"]))[0]
    return latents.numpy(), rgb, sigmas, timesteps


def graph_goldens(ts):
    gen = torch.Generator().manual_seed(11)
    ct = ts.configs["unet"]
    args = (torch.randn(1, 16, 8, 8, generator=gen), torch.tensor([500.0]),
            torch.randn(1, 12, ct["joint_attention_dim"], generator=gen), torch.randn(1, ct["pooled_projection_dim"], generator=gen))
    with torch.no_grad():
        res = {"unet": {"inputs": dict(zip(GRAPH_IO["unet"][0], map(sd3.tensor, args))),
                        "outputs": {"out_sample": sd3.tensor(ts.graphs["unet"](*args))}}}
        z = torch.randn(1, 16, 2, 3, generator=gen)
        res["vae_decoder"] = {"inputs": {"latent_sample": sd3.tensor(z)}, "outputs": {"sample": sd3.tensor(ts.rep.vae_decoder(z))}}
        x = torch.rand(1, 3, 16, 24, generator=gen) * 2 - 1
        res["vae_encoder"] = {"inputs": {"sample": sd3.tensor(x)},
                              "outputs": {"latent_sample": sd3.tensor(ts.graphs["vae_encoder"](x))}}
    return res


def graph_io_record(out):
    """{graph: {inputs: [{name, dtype, dims}], outputs: [...], weights: dtype, external_data}} read back
    from the written files (dims: ints are static, strings are free)."""
    dt = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.INT64: "int64",
          TensorProto.INT32: "int32", TensorProto.STRING: "string"}
    rec = {}
    for name in FOLDERS:
        m = onnx.load(os.path.join(out, name, "model.onnx"), load_external_data=False)

        def vi(v):
            t = v.type.tensor_type
            return {"name": v.name, "dtype": dt[t.elem_type],
                    "dims": [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]}
        kinds = sorted({dt[i.data_type] for i in m.graph.initializer})
        rec[name] = {"inputs": [vi(v) for v in m.graph.input], "outputs": [vi(v) for v in m.graph.output],
                     "initializer_dtypes": kinds, "external_data": DATA}
    return rec


def golden(ts, out, reference_golden=None):
    """As sd3-golden.json (floats {dims, b64 float32 LE}, images {dims [H,W,3], b64 uint8}), plus layout:
      model, generated_by, model_files {path: sha256}
      layout        {graph: inputs/outputs name, dtype, dims in ORDER; initializer dtypes; external data}
      tokenizers, tokens   as sd3-golden.json (same tokenizers; ids from the Python reference encoders)
      conditioning  2 prompts (fp16-rounded encoders): encoder_hidden_states, _no_t5, pooled_projections
      sigmas        get_sigmas cases
      graphs        one batch-1 input -> output pair for unet, vae_decoder, vae_encoder
      runs          the sd3-golden runs (same names, prompts, seeds), CFG as two batch-1 unet passes;
                    psnr_vs_sd3_tiny_db: against the same run in sd3-golden.json (fp16 weight rounding)"""
    rep = ts.rep
    g = {"model": "sd3-tensorstack-tiny", "generated_by": GENERATED_BY, "model_files": sd3.folder_files(out),
         "layout": graph_io_record(out)}
    g["tokenizers"] = {
        "tokenizer": {"max_length": sd3.CLIP_LEN, "bos_id": rep.tokenizer.bos_id, "eos_id": rep.tokenizer.eos_id,
                      "pad_id": rep.tokenizer.pad_id, "pad_token": rep.tokenizer.pad_token},
        "tokenizer_2": {"max_length": sd3.CLIP_LEN, "bos_id": rep.tokenizer_2.bos_id, "eos_id": rep.tokenizer_2.eos_id,
                        "pad_id": rep.tokenizer_2.pad_id, "pad_token": rep.tokenizer_2.pad_token},
        "tokenizer_3": {"max_length": sd3.T5_LEN, "eos_id": rep.tokenizer_3.eos_id, "pad_id": rep.tokenizer_3.pad_id,
                        "unk_id": rep.tokenizer_3.unk_id, "pad_token": "<pad>"},
    }
    g["tokens"] = [{"prompt": p, **{n: getattr(rep, n).encode(p, L) for n, L in
                                     (("tokenizer", sd3.CLIP_LEN), ("tokenizer_2", sd3.CLIP_LEN), ("tokenizer_3", sd3.T5_LEN))}}
                   for p in sd3.PROMPTS]
    g["conditioning"] = []
    for i in sd3.CONDITIONING_PROMPTS:
        ctx, pooled = sd3.encode_prompt(rep, [sd3.PROMPTS[i]])
        ctx0, _ = sd3.encode_prompt(rep, [sd3.PROMPTS[i]], use_t5=False)
        g["conditioning"].append({"prompt": sd3.PROMPTS[i], "encoder_hidden_states": sd3.tensor(ctx),
                                  "encoder_hidden_states_no_t5": sd3.tensor(ctx0), "pooled_projections": sd3.tensor(pooled)})
    g["sigmas"] = [{"steps": n, "shift": s, "sigmas": get_sigmas(n, s, 1000).tolist()} for n, s in sd3.SIGMA_CASES]
    g["graphs"] = graph_goldens(ts)
    ref_runs = {r["name"]: r for r in (reference_golden or {}).get("runs", [])}
    g["runs"] = []
    for name, pi, kw in sd3.RUNS:
        latents, rgb, sigmas, timesteps = generate(ts, sd3.PROMPTS[pi], "", **kw)
        run = {"name": name, "prompt": sd3.PROMPTS[pi], "negativePrompt": "", "seed": kw["seed"],
               "numInferenceSteps": kw["steps"], "guidanceScale": kw["guidance_scale"], "width": kw["width"],
               "height": kw["height"], "useT5": kw["use_t5"],
               "noT5Tokens": None if kw["use_t5"] else kw.get("no_t5_tokens", sd3.CLIP_LEN),
               "unetPassesPerStep": 2 if kw["guidance_scale"] > 1 else 1,
               "sigmas": sigmas.tolist(), "timesteps": timesteps.tolist(),
               "latents": sd3.tensor(latents), "rgb": sd3.image(rgb)}
        if name in ref_runs:
            ref = np.frombuffer(base64.b64decode(ref_runs[name]["rgb"]["b64"]), np.uint8).reshape(rgb.shape)
            run["psnr_vs_sd3_tiny_db"] = round(sd3.psnr(ref, rgb), 2)
        g["runs"].append(run)
    return g


def build(out, golden_path=None, log=print):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    ts = TensorStackReplica()
    diffs = build_folder(ts, out)
    for k, v in diffs.items():
        log(f"  {k}: onnxruntime vs PyTorch (fp16-rounded) max abs diff {v:.2e}")
    if golden_path:
        ref_path = os.path.join(os.path.dirname(golden_path), "sd3-golden.json")
        ref = read_json(ref_path) if os.path.isfile(ref_path) else None
        g = golden(ts, out, ref)
        write_json(golden_path, g)
        log(f"  golden: {golden_path} ({os.path.getsize(golden_path) / 1e3:.0f} kB); PSNR vs sd3-tiny "
            f"{ {r['name']: r.get('psnr_vs_sd3_tiny_db') for r in g['runs']} }")
    return ts, diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--golden", help="default: <out>/../sd3-tensorstack-golden.json")
    ap.add_argument("--no-golden", action="store_true")
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out)
    golden_path = None if a.no_golden else (a.golden or os.path.join(os.path.dirname(out), "sd3-tensorstack-golden.json"))
    build(out, golden_path)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
