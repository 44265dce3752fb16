"""webdit/from_onnx.py on the toy model folder the smoke test exports (fixture `toy`, conftest.py):
the modules rebuilt from the graphs' initializers hold exactly the weights that were exported, agree
with the graphs in onnxruntime, and a run folder seeded from them warm-starts the recipe's stages."""
import os

import pytest
import torch

from webdit.config import PRESETS
from webdit.from_onnx import COMPONENTS, checkpoint, models_from_checkpoint, recover, seed_run
from webdit.stages import load_all

P = PRESETS["toy"]


@pytest.fixture(scope="module")
def recovered(toy):
    _, out = toy
    return recover(out, preset="toy", seeds=(0,))


def test_recovered_modules_match_the_graphs(recovered):
    modules, info = recovered
    assert set(modules) == set(COMPONENTS)
    assert all(d < 1e-4 for d in info["max_abs_diff"].values()), info["max_abs_diff"]
    # the folded weights were found: every GroupNorm affine and every 3-D Linear
    assert info["mapping"]["vae_decoder"]["folded_groupnorm"] == info["mapping"]["vae_encoder"]["folded_groupnorm"] == 9
    assert info["mapping"]["transformer"]["folded_linear"] == 1 + 8 * P.dit.depth  # out + 8 per block
    assert info["mapping"]["text_encoder"]["folded_linear"] == 1 + 5 * P.text.layers  # proj + 5 per block


def test_recovered_weights_are_the_exported_ones(recovered, models):
    modules, _ = recovered
    ref = {"vae_decoder": models.vae.decoder, "vae_encoder": models.vae.encoder, "transformer": models.transformer,
           "text_encoder": models.text_encoder}
    for comp, m in modules.items():
        got, want = m.state_dict(), ref[comp].state_dict()
        assert set(got) == set(want), comp
        bad = [k for k in want if not torch.equal(got[k], want[k])]
        assert not bad, (comp, bad)


def test_a_seeded_run_warm_starts_from_the_recovered_weights(toy, recovered, tmp_path):
    base, out = toy
    ck = checkpoint(*recovered, out)
    vae, dit, text = models_from_checkpoint(ck)
    run = str(tmp_path / "run")
    seed_run(ck, out, run, preset="toy", train=("transformer",))
    trained = load_all(run, P, cache=os.path.join(base, "data"))
    for a, b in ((trained["vae"], vae), (trained["clip"].text, text)):  # frozen: unchanged
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    st = torch.load(os.path.join(run, "dit.pt"))
    assert st["done"] and st["step"] == P.dit_steps  # trained from step 0 to the end
    assert not all(torch.equal(x, y) for x, y in zip(st["model"].values(), dit.state_dict().values()))
