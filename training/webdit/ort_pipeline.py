"""The reference pipeline (pipeline.generate) with onnxruntime running a model folder's graphs in
place of the PyTorch modules: a long-lived node process (training/ort_server.mjs) keeps one session
per graph, and small adapters give generate() the modules' call signatures. Same noise, sigmas,
CFG batching and decoding as the PyTorch path, so the two differ only by the graphs' arithmetic.

    with OrtServer() as srv:
        models = ort_models(srv, folder)            # pipeline.Models backed by onnxruntime-node
        latents, rgb = generate(models, prompt, negative, seed, steps, guidance)
        srv.time(...)                                # ms per run, for the compression report
"""
import base64
import json
import os
import subprocess
from types import SimpleNamespace

import numpy as np
import torch

from .config import SchedulerConfig
from .export import GRAPH_NAMES, ROOT, TRAINING, read_json
from .pipeline import Models
from .tokenizer import WordPieceTokenizer


def _encode(inputs):
    out = {}
    for k, v in inputs.items():
        v = np.ascontiguousarray(v.numpy() if isinstance(v, torch.Tensor) else v)
        typ = "int64" if v.dtype == np.int64 else "float32"
        out[k] = {"type": typ, "dims": list(v.shape), "b64": base64.b64encode(v.astype(typ).tobytes()).decode()}
    return out


class OrtServer:
    """training/ort_server.mjs as a context manager; requests are answered in order."""

    def __init__(self):
        self.proc = None
        self.n = 0
        self.open = set()

    def __enter__(self):
        self.proc = subprocess.Popen(["node", os.path.join(TRAINING, "ort_server.mjs")], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)

    def request(self, **req):
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("ort_server.mjs exited (is `npm install` done?)")
        rep = json.loads(line)
        if not rep.pop("ok"):
            raise RuntimeError(f"onnxruntime: {rep['error'][-2000:]}")
        return rep

    def load(self, model, runtime="node", threads=1, optimized=None):
        """Open a session; returns (id, ms to create it)."""
        self.n += 1
        sid = f"s{self.n}"
        rep = self.request(op="load", id=sid, model=os.path.abspath(model), runtime=runtime, threads=threads,
                           **({"optimized": os.path.abspath(optimized)} if optimized else {}))
        self.open.add(sid)
        return sid, rep["ms"]

    def run(self, sid, inputs):
        outs = self.request(op="run", id=sid, inputs=_encode(inputs))["outputs"]
        return {k: np.frombuffer(base64.b64decode(o["b64"]), np.float32).reshape(o["dims"]).copy() for k, o in outs.items()}

    def time(self, sid, inputs, warmup=2, repeats=10):
        return self.request(op="time", id=sid, inputs=_encode(inputs), warmup=warmup, repeats=repeats)["ms"]

    def close(self, sid):
        self.request(op="close", id=sid)
        self.open.discard(sid)

    def close_all(self):
        for sid in sorted(self.open):
            self.close(sid)


class _Graph:
    """A graph called like its PyTorch module: positional tensors in, tensor(s) out."""

    def __init__(self, srv, sid, component, tuple_out=False):
        self.srv, self.sid, self.component, self.tuple_out = srv, sid, component, tuple_out

    def __call__(self, *args):
        names_in, names_out = GRAPH_NAMES[self.component]
        got = self.srv.run(self.sid, dict(zip(names_in, args)))
        outs = tuple(torch.from_numpy(got[n]) for n in names_out)
        return outs if self.tuple_out or len(outs) > 1 else outs[0]


def ort_models(srv, folder, runtime="node", threads=1):
    """pipeline.Models whose modules are the folder's graphs in onnxruntime (tokenizer, scheduler and
    latent factors from the folder's configs)."""
    sess = {c: srv.load(os.path.join(folder, c, "model.onnx"), runtime, threads)[0]
            for c in GRAPH_NAMES if os.path.exists(os.path.join(folder, c, "model.onnx"))}
    t = read_json(os.path.join(folder, "transformer", "config.json"))
    v = read_json(os.path.join(folder, "vae_decoder", "config.json"))
    s = read_json(os.path.join(folder, "scheduler", "scheduler_config.json"))
    dit = _Graph(srv, sess["transformer"], "transformer")
    dit.cfg = SimpleNamespace(in_channels=t["in_channels"], sample_size=t["sample_size"])
    vae = SimpleNamespace(decoder=_Graph(srv, sess["vae_decoder"], "vae_decoder"),
                          encoder=_Graph(srv, sess["vae_encoder"], "vae_encoder", tuple_out=True) if "vae_encoder" in sess else None)
    return Models(transformer=dit, vae=vae, text_encoder=_Graph(srv, sess["text_encoder"], "text_encoder"),
                  tokenizer=WordPieceTokenizer.load(os.path.join(folder, "tokenizer")),
                  scheduler=SchedulerConfig(num_train_timesteps=s["num_train_timesteps"], shift=float(s["shift"])),
                  scaling_factor=float(v["scaling_factor"]), shift_factor=float(v["shift_factor"]))
