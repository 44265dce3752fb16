"""The Z-Image replicas (training/replicas/zimage.py): rebuilt from scratch they must be the committed
ones (configs and tokenizer files byte for byte, the committed graphs computing what the rebuilt
PyTorch modules compute), each graph contract must have its names, ranks, dtypes and weight shards,
and the golden values must follow from the PyTorch pipeline. Needs node + `npm install`."""
import base64
import os

import numpy as np
import pytest
import torch

from replicas import qwen_tokenizer as Q
from replicas import zimage as Z
from webdit.export import read_json

ROOT = os.path.dirname(Z.TRAINING)
COMMITTED = os.path.join(ROOT, "src", "engine", "families", "zimage", "__replica__")
GOLDEN = os.path.join(COMMITTED, "zimage-golden.json")


def _arr(t):
    return np.frombuffer(base64.b64decode(t["b64"]), np.float32).reshape(t["dims"]).copy()


def _files(d):
    return sorted(os.path.relpath(os.path.join(p, f), d) for p, _, fs in os.walk(d) for f in fs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("zimage"))
    rep, diffs = Z.build(root, golden_path=None, log=lambda *_: None)
    return rep, root, diffs


@pytest.fixture(scope="module")
def golden():
    return read_json(GOLDEN)


def test_graphs_match_pytorch(built):
    _, _, diffs = built
    for version in (Z.OLD, Z.NEW):
        assert set(diffs[version]) == {Z.TE, Z.DIT, Z.STEP, Z.PRE, Z.VAE}
    assert max(diffs[Z.OLD].values()) < Z.MAX_ABS_DIFF
    assert max(diffs[Z.NEW].values()) < Z.FP16_REL  # fp16 outputs: relative, about one fp16 step


def test_rebuild_equals_committed(built, golden):
    rep, root, _ = built
    for version in (Z.OLD, Z.NEW):
        out, committed = os.path.join(root, version), os.path.join(COMMITTED, version)
        assert _files(out) == _files(committed)
        for rel in _files(out):
            if rel.endswith(".json"):
                with open(os.path.join(out, rel), "rb") as a, open(os.path.join(committed, rel), "rb") as b:
                    assert a.read() == b.read(), f"{version}/{rel} differs: rerun training/replicas/zimage.py"
        for file, module in rep.graphs(version).items():  # the committed graphs compute what these modules compute
            Z.check_graph(module, os.path.join(committed, "onnx", file), rep.check_inputs(version, file)[:1], Z.GRAPH_IO[version][file])
    for rel, digest in golden["model_files"].items():  # the golden belongs to exactly these files
        assert Z.sha256(os.path.join(COMMITTED, rel)) == digest, rel


def test_layout_of_both_contracts(golden):
    old, new = golden["layout"][Z.OLD], golden["layout"][Z.NEW]
    io = lambda g, k: [(v["name"], v["dtype"], len(v["dims"])) for v in g[k]]  # noqa: E731
    assert io(old[Z.DIT], "inputs") == [("hidden_states", "float32", 5), ("timestep", "float32", 1), ("encoder_hidden_states", "float32", 3)]
    assert io(old[Z.DIT], "outputs") == [("unified_results", "float32", 4)]
    assert old[Z.DIT]["outputs"][0]["dims"][0] == 16  # [16, num_frames, h, w]: no batch axis
    assert io(new[Z.DIT], "inputs") == [("hidden_states", "float16", 4), ("timestep", "float16", 1), ("encoder_hidden_states", "float16", 3)]
    assert io(new[Z.DIT], "outputs") == [("sample", "float16", 4)]
    assert io(old[Z.TE], "inputs") == io(new[Z.TE], "inputs") == [("input_ids", "int64", 2), ("attention_mask", "int64", 2)]
    assert io(old[Z.TE], "outputs") == [("encoder_hidden_state", "float32", 3)]
    assert io(new[Z.TE], "outputs") == [("encoder_hidden_states", "float16", 3)]
    assert io(old[Z.VAE], "inputs") == [("latent_sample", "float32", 4)] and io(new[Z.VAE], "inputs") == [("latent_sample", "float16", 4)]
    assert io(old[Z.PRE], "inputs") == [("latents", "float32", 5)] and io(new[Z.PRE], "inputs") == [("latents", "float16", 4)]
    for g in (Z.TE, Z.DIT):
        assert old[g]["external_data"] == [g + "_data"]
        assert new[g]["external_data"] == [g + "_data", g + "_data_1"]
    for layout in (old, new):
        assert all(v["initializer_dtypes"] in ([], ["float16"]) for v in layout.values())  # fp16 weights everywhere
    for version in (Z.OLD, Z.NEW):
        d = os.path.join(COMMITTED, version)
        assert not os.path.exists(os.path.join(d, "model_index.json"))
        assert read_json(os.path.join(d, "tokenizer", "tokenizer_config.json"))["chat_template"] == Q.CHAT_TEMPLATE
        vae = read_json(os.path.join(d, "vae", "config.json"))
        assert (vae["scaling_factor"], vae["shift_factor"], vae["latent_channels"]) == (0.3611, 0.1159, 16)
        assert read_json(os.path.join(d, "scheduler", "scheduler_config.json"))["shift"] == 3.0
        size = sum(os.path.getsize(os.path.join(d, f)) for f in _files(d))
        assert size < 1.5e6, f"{version} is {size} bytes"


def test_pre_tokenizer_splits_like_qwen2():
    assert Q.qwen_pre_tokenize("It's a cat!!wow") == ["It", "'s", " a", " cat", "!!", "wow"]
    assert Q.qwen_pre_tokenize("a  b\n\n  c   ") == ["a", " ", " b", "\n\n", " ", " c", "   "]
    assert Q.qwen_pre_tokenize("1024x 12") == ["1", "0", "2", "4", "x", " ", "1", "2"]
    assert Q.qwen_pre_tokenize(" !? 富士山") == [" !?", " 富士山"]
    assert Q.chat_text("cat") == "<|im_start|>user\ncat<|im_end|>\n<|im_start|>assistant\n"
    assert Q.chat_text("cat", enable_thinking=False).endswith("assistant\n<think>\n\n</think>\n\n")


def test_tokens_equal_golden_and_transformers_js(built, golden):
    rep, root, _ = built
    prompts = [t["prompt"] for t in golden["tokens"]]
    js = Z.js_chat(os.path.join(root, Z.OLD), prompts)
    for i, t in enumerate(golden["tokens"]):
        assert t["text"] == Q.chat_text(t["prompt"]) == js["text"][i]
        ids = rep.tokenizer.encode(t["text"], Q.MAX_SEQUENCE_LENGTH)
        assert ids == t["ids"] == js["ids"][i][:Q.MAX_SEQUENCE_LENGTH], t["prompt"][:30]
    assert max(t["untruncated_length"] for t in golden["tokens"]) > Q.MAX_SEQUENCE_LENGTH  # one prompt is truncated


def test_conditioning_and_a_run_equal_golden(built, golden):
    rep, _, _ = built
    for c in golden["conditioning"]:
        got = Z.encode_prompt(rep, c["prompt"], c["version"]).numpy()
        np.testing.assert_allclose(got, _arr(c["encoder_hidden_states"]), atol=1e-5)
    r = golden["runs"][0]
    latents, rgb, sigmas, t, passes = Z.generate(rep, r["prompt"], seed=r["seed"], steps=r["numInferenceSteps"], width=r["width"],
                                                 height=r["height"], version=r["version"])
    np.testing.assert_allclose(latents, _arr(r["latents"]), atol=1e-5)
    assert passes == r["transformerPasses"] == 8 and r["numInferenceSteps"] == 9
    assert sigmas[-2] == sigmas[-1] == 0.0 and t[0] == 0.0 and t[-1] == 1.0
    assert all(v < 45 for v in golden["sensitivity_psnr_db"].values()), golden["sensitivity_psnr_db"]
    assert all(v > 45 for v in golden["psnr_v1_vs_v2_db"].values())


def test_helper_graphs_compute_the_step_and_the_normalisation():
    """scheduler_step (never run by the engine) is the Euler step on the negated output with sigma_min 0;
    vae_pre_process is latents / scaling_factor + shift_factor with the VAE config's values."""
    g = torch.Generator().manual_seed(3)
    sigmas = Z.get_sigmas(9, 3.0, 1000)
    noise, lat = torch.randn(16, 1, 4, 6, generator=g), torch.randn(1, 16, 1, 4, 6, generator=g)
    for i in (0, 4, 8):
        got = Z.ort_run(os.path.join(COMMITTED, Z.OLD, "onnx", Z.STEP),
                        {"noise_pred": noise.numpy(), "latents": lat.numpy(), "step_info": np.array([i, 9], np.float32)})["latents_out"]
        want = lat.numpy() + (float(sigmas[i + 1]) - float(sigmas[i])) * -noise.numpy()[None]
        np.testing.assert_allclose(got, want, atol=1e-6)
    vae = read_json(os.path.join(COMMITTED, Z.OLD, "vae", "config.json"))
    got = Z.ort_run(os.path.join(COMMITTED, Z.OLD, "onnx", Z.PRE), {"latents": lat.numpy()})["scaled_latents"]
    np.testing.assert_allclose(got, lat.numpy()[:, :, 0] / vae["scaling_factor"] + vae["shift_factor"], atol=1e-6)
