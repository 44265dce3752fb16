"""Rebuild PyTorch modules from a model folder's ONNX graphs (for a model whose PyTorch weights are
gone, as public/models/webdit-tiny after relayout_v1.py), check them against the graphs in
onnxruntime, and write a checkpoint the recipe can warm-start from.

How the weights are found. torch.onnx.export keeps a parameter's name when the graph uses it as is
(Conv, Gemm, LayerNorm, Embedding, biases). Constant folding renames the rest:
  - a Linear applied to a 3-D input becomes MatMul(x, W^T) with W^T an initializer `onnx::MatMul_N`,
    followed by Add(bias) where the bias keeps its name;
  - GroupNorm's affine becomes Mul(x, weight[:, None, None]) and Add(bias[:, None, None]) with
    initializers `onnx::Mul_N` / `onnx::Add_N` shaped [C,1,1].
Weights stored as fp16 / int8 by compress.py are read back first (compress.inflate: the exact
float32 values onnxruntime folds them into), so a compressed folder gives its rounded weights.
These are mapped by walking the graph: its nodes are in the order the exporter traced the forward,
so the k-th folded MatMul (or GroupNorm Mul/Add pair) is the k-th Linear (GroupNorm) whose weight has
no name of its own, in the order the PyTorch module calls them (recorded with forward hooks on the
same example inputs). A folded MatMul whose Add has a named bias must agree with that order, and
every shape must agree: any disagreement is an error, not a guess.

    /usr/bin/python3 training/from_onnx.py public/models/webdit-tiny --out training/runs/webdit-tiny-recovered.pt
"""
import os
import shutil
from collections import Counter
from dataclasses import asdict, replace

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from . import data as D
from .compress import inflate
from .config import PRESETS, DiTConfig, TextConfig, VAEConfig
from .export import GRAPH_NAMES, MAX_ABS_DIFF, ort_run, read_json, sha256
from .models import CLIP, DiT, VAE, Decoder, Encoder, GroupNorm, PosteriorMean, TextEncoder
from .tokenizer import WordPieceTokenizer

FORMAT = "webdit-recovered-from-onnx"
COMPONENTS = ("vae_decoder", "vae_encoder", "transformer", "text_encoder")


# ---- configs from the folder ------------------------------------------------------------------
def configs(folder, preset="cpu"):
    """VAEConfig, DiTConfig, TextConfig from the folder's config.json files; what they do not record
    (the DiT's timestep_embed_dim, the image tower) comes from the preset."""
    P = PRESETS[preset]
    v = read_json(os.path.join(folder, "vae_decoder", "config.json"))
    t = read_json(os.path.join(folder, "transformer", "config.json"))
    x = read_json(os.path.join(folder, "text_encoder", "config.json"))
    vae = replace(P.vae, in_channels=v["in_channels"], latent_channels=v["latent_channels"],
                  block_out_channels=tuple(v["block_out_channels"]), sample_size=v["sample_size"])
    dit = replace(P.dit, in_channels=t["in_channels"], sample_size=t["sample_size"], patch_size=t["patch_size"],
                  hidden=t["hidden_size"], depth=t["num_layers"], heads=t["num_attention_heads"],
                  context_dim=t["joint_attention_dim"], pooled_dim=t["pooled_projection_dim"])
    text = replace(P.text, vocab_size=x["vocab_size"], max_length=x["max_position_embeddings"], width=x["hidden_size"],
                   layers=x["num_hidden_layers"], heads=x["num_attention_heads"], proj_dim=x["projection_dim"],
                   pad_id=x["pad_token_id"])
    return vae, dit, text, {"scaling_factor": v["scaling_factor"], "shift_factor": v["shift_factor"],
                            "max_text_length": t["max_text_length"]}


# ---- graph walking ----------------------------------------------------------------------------
class Graph:
    def __init__(self, path):
        self.path = path
        # weights stored as fp16 / int8 (webdit/compress.py) read back as the float32 values onnxruntime uses
        self.model = inflate(onnx.load(path))
        g = self.model.graph
        self.nodes = list(g.node)
        self.inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.consumers = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def init_input(self, node):
        """(index, name) of the node's one initializer input, or None."""
        found = [(k, i) for k, i in enumerate(node.input) if i in self.inits]
        return found[0] if len(found) == 1 else None

    def next_with_init(self, node, op):
        """The node of type op consuming node's output with an initializer input (following no other op)."""
        for c in self.consumers.get(node.output[0], []):
            if c.op_type == op and self.init_input(c):
                return c
        return None

    def folded_linears(self):
        """[(W (out,in), bias name or None)] for every MatMul / Gemm on an unnamed (folded) weight, in node order."""
        out = []
        for n in self.nodes:
            if n.op_type == "MatMul" and n.input[1] in self.inits and n.input[1].startswith("onnx::"):
                w = self.inits[n.input[1]].T  # MatMul(x, W^T)
                add = self.next_with_init(n, "Add")
                bias = self.init_input(add)[1] if add is not None else None
                out.append((w, bias if bias and not bias.startswith("onnx::") else None))
            elif n.op_type == "Gemm" and n.input[1] in self.inits and n.input[1].startswith("onnx::"):
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                b = self.inits[n.input[1]]
                bias = n.input[2] if len(n.input) > 2 and not n.input[2].startswith("onnx::") else None
                out.append((b if attrs.get("transB", 0) else b.T, bias))
        return out

    def folded_affines(self):
        """[(weight (C,), bias (C,))] for every per-channel Mul -> Add pair on [C,1,1] initializers, in node order
        (a GroupNorm's affine, whichever way the norm itself was written)."""
        out = []
        for n in self.nodes:
            if n.op_type != "Mul":
                continue
            wi = self.init_input(n)
            if wi is None or self.inits[wi[1]].ndim != 3 or self.inits[wi[1]].shape[1:] != (1, 1):
                continue
            add = self.next_with_init(n, "Add")
            if add is None:
                raise ValueError(f"{self.path}: {n.name} scales by {wi[1]} with no per-channel Add after it")
            b = self.inits[self.init_input(add)[1]]
            out.append((self.inits[wi[1]].reshape(-1), b.reshape(-1)))
        return out


def _call_order(module, args, kinds):
    """Names of the submodules of the given kinds in the order the forward calls them (each once)."""
    order, hooks = [], []
    for name, m in module.named_modules():
        if isinstance(m, kinds):
            hooks.append(m.register_forward_hook(lambda mod, i, o, name=name: order.append(name)))
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for h in hooks:
            h.remove()
    if len(order) != len(set(order)):
        raise ValueError(f"a module is called more than once: {[k for k, c in Counter(order).items() if c > 1]}")
    return order


def _prefix(graph, keys):
    """The prefix the graph's parameter names carry (e.g. `text.` for a text encoder exported from CLIP)."""
    cands = Counter(name[:len(name) - len(k)] for k in keys for name in graph.inits
                    if name.endswith(k) and (name == k or name[-len(k) - 1] == "."))
    if not cands:
        raise ValueError(f"{graph.path}: no initializer carries a parameter name of the module")
    return cands.most_common(1)[0][0]


def load_from_graph(module, graph, args):
    """Fill module's parameters (and persistent buffers) from the graph's initializers. Returns a
    report {named, folded_linear, folded_groupnorm}; raises on anything missing or inconsistent."""
    sd = module.state_dict()
    pre = _prefix(graph, sd)
    new = {}
    for k, v in sd.items():
        if pre + k in graph.inits:
            a = graph.inits[pre + k]
            if tuple(a.shape) != tuple(v.shape):
                raise ValueError(f"{graph.path}: {pre + k} is {a.shape}, the module wants {tuple(v.shape)}")
            new[k] = torch.from_numpy(a.copy())
    named = len(new)
    # Linears without a named weight, in call order <-> folded MatMuls in node order
    linears = [n for n in _call_order(module, args, nn.Linear) if f"{n}.weight" not in new]
    folded = graph.folded_linears()
    if len(linears) != len(folded):
        raise ValueError(f"{graph.path}: {len(folded)} folded MatMul weights for {len(linears)} Linear modules")
    for name, (w, bias) in zip(linears, folded):
        if bias is not None and bias != f"{pre}{name}.bias":
            raise ValueError(f"{graph.path}: node order puts {name} where the graph's bias says {bias}")
        if tuple(w.shape) != tuple(sd[f"{name}.weight"].shape):
            raise ValueError(f"{graph.path}: folded weight {w.shape} does not fit {name}.weight {tuple(sd[name + '.weight'].shape)}")
        new[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
    # GroupNorms without named affine params, in call order <-> per-channel Mul/Add pairs in node order
    norms = [n for n in _call_order(module, args, nn.GroupNorm) if f"{n}.weight" not in new]
    affines = graph.folded_affines()
    if len(norms) != len(affines):
        raise ValueError(f"{graph.path}: {len(affines)} folded per-channel affines for {len(norms)} GroupNorms")
    for name, (w, b) in zip(norms, affines):
        if w.shape != tuple(sd[f"{name}.weight"].shape) or b.shape != w.shape:
            raise ValueError(f"{graph.path}: affine of {w.shape} does not fit {name} {tuple(sd[name + '.weight'].shape)}")
        new[f"{name}.weight"], new[f"{name}.bias"] = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
    missing = sorted(set(sd) - set(new))
    if missing:
        raise ValueError(f"{graph.path}: no weights found for {missing}")
    module.load_state_dict(new)
    return {"named": named, "folded_linear": len(linears), "folded_groupnorm": len(norms)}


# ---- the components ---------------------------------------------------------------------------
def example_inputs(component, vae, dit, text, tok, batch=3, seed=0):
    """Random inputs for the checks (batch 3: the graphs were traced at 2, so this also tests the dynamic axis)."""
    g = torch.Generator().manual_seed(seed)
    if component == "vae_decoder":
        return (torch.randn(batch, vae.latent_channels, vae.latent_size, vae.latent_size, generator=g),)
    if component == "vae_encoder":
        scene = D.to_tensor_images(D.render_scene([("star", "red", "large", "in the center")], "white")[None])
        noise = torch.rand(batch - 1, vae.in_channels, vae.sample_size, vae.sample_size, generator=g) * 2 - 1
        return (torch.cat([scene, noise]),)
    if component == "transformer":
        h = dit.sample_size
        return (torch.randn(batch, dit.in_channels, h, h, generator=g), torch.randn(batch, text.max_length, dit.context_dim, generator=g),
                torch.randn(batch, dit.pooled_dim, generator=g), torch.rand(batch, generator=g) * 1000)
    if component == "text_encoder":
        rows = [tok.encode("a small red star at the top left on a white background"), tok.encode("")]
        while len(rows) < batch:  # random ids, then padding
            n = int(torch.randint(1, text.max_length + 1, (1,), generator=g))
            ids = torch.randint(1, text.vocab_size, (n,), generator=g).tolist()
            rows.append(ids + [text.pad_id] * (text.max_length - n))
        return (torch.tensor(rows[:batch]),)
    raise ValueError(component)


def new_module(component, vae, dit, text):
    return {"vae_decoder": lambda: Decoder(vae), "vae_encoder": lambda: PosteriorMean(Encoder(vae)),
            "transformer": lambda: DiT(dit), "text_encoder": lambda: TextEncoder(text)}[component]().eval()


def check_against_graph(module, path, component, args):
    """Max abs difference between the module (PyTorch) and the graph (onnxruntime) on args."""
    names_in, names_out = GRAPH_NAMES[component]
    with torch.no_grad():
        ref = module(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = ort_run(path, {n: a.numpy() for n, a in zip(names_in, args)})
    return max(float(np.abs(r.numpy() - got[n]).max()) for n, r in zip(names_out, ref))


def recover(folder, preset="cpu", check=True, seeds=(0, 1)):
    """Every graph of the folder as a PyTorch module. Returns (modules, info): modules {component:
    nn.Module} (vae_encoder as models.Encoder, when the folder has one), info with the configs,
    the mapping report and the max abs diff against onnxruntime per component (over `seeds`)."""
    vae, dit, text, extra = configs(folder, preset)
    tok = WordPieceTokenizer.load(os.path.join(folder, "tokenizer"))
    modules, info = {}, {"configs": {"vae": asdict(vae), "dit": asdict(dit), "text": asdict(text)}, **extra,
                         "mapping": {}, "max_abs_diff": {}, "model_files": {}}
    for comp in COMPONENTS:
        path = os.path.join(folder, comp, "model.onnx")
        if not os.path.exists(path):
            continue
        m = new_module(comp, vae, dit, text)
        args = example_inputs(comp, vae, dit, text, tok, seed=seeds[0])
        info["mapping"][comp] = load_from_graph(m, Graph(path), args)
        info["model_files"][f"{comp}/model.onnx"] = sha256(path)
        if check:
            info["max_abs_diff"][comp] = max(check_against_graph(m, path, comp, example_inputs(comp, vae, dit, text, tok, seed=s))
                                             for s in seeds)
            if info["max_abs_diff"][comp] >= MAX_ABS_DIFF:
                raise RuntimeError(f"{comp}: recovered module and graph differ by {info['max_abs_diff'][comp]} >= {MAX_ABS_DIFF}")
        modules[comp] = m.encoder if comp == "vae_encoder" else m
    return modules, info


def checkpoint(modules, info, folder):
    """The recovered weights as one dict (torch.save it): state dicts per component, the configs,
    the latent factors and the hashes of the graphs they came from."""
    return {"format": FORMAT, "source": os.path.abspath(folder), **info,
            "state_dicts": {c: m.state_dict() for c, m in modules.items()}}


def models_from_checkpoint(ck, encoder_state=None):
    """(VAE, DiT, TextEncoder) from a checkpoint; encoder_state overrides / supplies the VAE encoder.
    A VAE whose encoder is in neither keeps its random encoder (vae.has_encoder is False)."""
    c = ck["configs"]
    vae = VAE(VAEConfig(**{**c["vae"], "block_out_channels": tuple(c["vae"]["block_out_channels"])}))
    vae.decoder.load_state_dict(ck["state_dicts"]["vae_decoder"])
    enc = encoder_state if encoder_state is not None else ck["state_dicts"].get("vae_encoder")
    if enc is not None:
        vae.encoder.load_state_dict(enc)
    vae.has_encoder = enc is not None
    tc = c["text"]
    text = TextEncoder(TextConfig(**{**tc, "image_tower_channels": tuple(tc["image_tower_channels"])}))
    text.load_state_dict(ck["state_dicts"]["text_encoder"])
    dit = DiT(DiTConfig(**c["dit"]))
    dit.load_state_dict(ck["state_dicts"]["transformer"])
    return vae.eval(), dit.eval(), text.eval()


def pipeline_models_from_checkpoint(ck, folder, encoder_state=None):
    """pipeline.Models for the reference pipeline (fixtures, sampling) from a checkpoint and its folder."""
    from .config import SchedulerConfig
    from .pipeline import Models
    vae, dit, text = models_from_checkpoint(ck, encoder_state)
    sched = read_json(os.path.join(folder, "scheduler", "scheduler_config.json"))
    return Models(transformer=dit, vae=vae, text_encoder=text,
                  tokenizer=WordPieceTokenizer.load(os.path.join(folder, "tokenizer")),
                  scheduler=SchedulerConfig(num_train_timesteps=sched["num_train_timesteps"], shift=float(sched["shift"])),
                  scaling_factor=float(ck["scaling_factor"]), shift_factor=float(ck["shift_factor"]))


# ---- warm start: seed a run folder ------------------------------------------------------------
def _stage_state(model, step, done, ema=None):
    opt = torch.optim.AdamW(model.parameters())  # fresh state: the graphs carry no optimizer
    return {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "done": done, "seconds": 0.0,
            "ema": ema.state_dict() if ema is not None else None}


def seed_run(ck, folder, run, preset="cpu", train=("transformer",)):
    """Write the stage checkpoints of a run folder (stages.py's format) from a recovered checkpoint,
    so `train.py --run <run>` starts from these weights. Components in `train` are written at step 0
    (train_loop resumes them: a warm start over the preset's full step count); the others are
    written finished (kept frozen). The tokenizer is copied from the folder (the text encoder's
    vocabulary). The CLIP image tower is not in any graph: it starts fresh. The data stage runs as
    usual and the latents stage recomputes shift/scaling factors with the (frozen) encoder."""
    P = PRESETS[preset]
    unknown = set(train) - {"vae", "text_encoder", "transformer"}
    if unknown:
        raise ValueError(f"unknown components to train: {sorted(unknown)} (vae, text_encoder, transformer)")
    vae, dit, text = models_from_checkpoint(ck)
    if not vae.has_encoder and "vae" not in train:
        raise ValueError("the checkpoint has no VAE encoder: the VAE stage cannot be frozen (add vae to --train)")
    os.makedirs(os.path.join(run, "tokenizer"), exist_ok=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(folder, "tokenizer", f), os.path.join(run, "tokenizer", f))
    clip = CLIP(text.cfg, vae.cfg.sample_size)
    clip.text.load_state_dict(text.state_dict())
    torch.save(_stage_state(vae, 0 if "vae" in train else P.vae_steps, "vae" not in train), os.path.join(run, "vae.pt"))
    torch.save(_stage_state(clip, 0 if "text_encoder" in train else P.clip_steps, "text_encoder" not in train),
               os.path.join(run, "clip.pt"))
    torch.save(_stage_state(dit, 0 if "transformer" in train else P.dit_steps, "transformer" not in train, ema=dit),
               os.path.join(run, "dit.pt"))
    return {"run": run, "train": list(train)}
