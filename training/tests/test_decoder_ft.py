"""webdit/decoder_ft.py: the decoder fine-tune's losses and report on cases whose answers are known,
and a short run on the toy run's latents that checkpoints, resumes and leaves the latent space alone."""
import os

import numpy as np
import pytest
import torch

from webdit import data as D
from webdit import decoder_ft as F
from webdit.quality import laplacian_variance
from webdit.stages import load_all
from conftest import P


def test_grad_loss_is_the_l1_of_finite_differences():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 5, 6, generator=g), torch.rand(2, 3, 5, 6, generator=g)
    assert F.grad_loss(a, a).item() == 0.0
    an, bn = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    want = (np.abs(np.diff(an, axis=3) - np.diff(bn, axis=3)).mean()
            + np.abs(np.diff(an, axis=2) - np.diff(bn, axis=2)).mean())
    assert abs(F.grad_loss(a, b).item() - want) < 1e-6
    # a constant offset has the same gradients: no gradient loss, but a reconstruction loss
    assert F.grad_loss(a + 0.3, a).item() < 1e-6 and F.rec_loss(a + 0.3, a).item() > 0.1


def test_report_of_a_perfect_and_of_a_blurring_decoder(toy):
    base = os.path.join(toy[0], "run")
    imgs, val, emoji, _ = F.load_run(base)
    index = torch.arange(len(imgs), dtype=torch.float32)[:, None, None, None]  # "latents" that name their image
    perfect = lambda z: D.to_tensor_images(imgs[z.flatten().long().numpy()])  # noqa: E731
    rep = F.report(perfect, imgs, val, emoji, index, n=20)
    for kind in ("emoji", "shapes"):
        assert rep[kind]["n"] == min(20, int((val & (emoji if kind == "emoji" else ~emoji)).sum()))
        assert rep[kind]["laplacian_ratio"] == 1.0 and rep[kind]["psnr_db"] > 100
    blur = lambda z: torch.nn.functional.avg_pool2d(perfect(z), 3, 1, 1, count_include_pad=False)  # noqa: E731
    rep = F.report(blur, imgs, val, emoji, index, n=20)
    idx = np.where(val & emoji)[0]
    idx = np.sort(np.random.RandomState(0).choice(idx, min(20, len(idx)), replace=False))
    blurred = ((blur(index[idx]).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    want = laplacian_variance(blurred).mean() / laplacian_variance(imgs[idx]).mean()
    assert abs(rep["emoji"]["laplacian_ratio"] - want) < 1e-9 and want < 0.5


def test_a_short_gan_run_checkpoints_resumes_and_changes_only_the_decoder(toy, tmp_path):
    base = os.path.join(toy[0], "run")
    vae = load_all(base, P)["vae"]
    start = {k: v.clone() for k, v in vae.decoder.state_dict().items()}
    enc = {k: v.clone() for k, v in vae.encoder.state_dict().items()}
    res = F.finetune_decoder(str(tmp_path), "decoder", vae.decoder, "gan", steps=12, batch=4, data_run=base)
    assert res["steps"] == 12 and res["loss"] == "gan" and set(res["after"]) == {"emoji", "shapes"}
    st = torch.load(tmp_path / "decoder.pt")
    assert st["done"] and st["step"] == 12 and "disc" in st and "opt_d" in st
    for k, v in vae.decoder.state_dict().items():
        assert torch.equal(st["decoder"][k], v)
    assert any(not torch.equal(start[k], v) for k, v in vae.decoder.state_dict().items())
    assert all(torch.equal(enc[k], v) for k, v in vae.encoder.state_dict().items())
    # a finished run is not trained again: a fresh module resumes to the same weights and report
    vae2 = load_all(base, P)["vae"]
    again = F.finetune_decoder(str(tmp_path), "decoder", vae2.decoder, "gan", steps=12, batch=4, data_run=base)
    assert again["after"] == res["after"] and again["before"] == res["before"]
    for k, v in vae2.decoder.state_dict().items():
        assert torch.equal(st["decoder"][k], v)


def test_an_unknown_loss_is_refused(toy, tmp_path):
    with pytest.raises(ValueError, match="perceptual.*rec"):
        F.finetune_decoder(str(tmp_path), "d", torch.nn.Conv2d(1, 1, 1), "perceptual", steps=1)


def test_lap_loss_uses_qualitys_laplacian_variance_and_is_zero_for_the_image_itself():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    u8 = ((x + 1) * 127.5).permute(0, 2, 3, 1).numpy()  # quality.py's function on the same values
    assert np.allclose(F.lap_var(x).numpy(), laplacian_variance(u8), rtol=1e-5)
    assert F.lap_loss(x, x).item() == 0.0
    blur = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    want = np.mean((np.log(laplacian_variance(((blur + 1) * 127.5).permute(0, 2, 3, 1).numpy()) + 1)
                    - np.log(laplacian_variance(u8) + 1)) ** 2)
    assert abs(F.lap_loss(blur, x).item() - want) < 1e-4 * want
    # lapm: the batch's ratio of means, as quality.py's sharpness is taken over a set of images
    assert F.lap_mean_loss(x, x).item() == 0.0
    want = np.log(laplacian_variance(((blur + 1) * 127.5).permute(0, 2, 3, 1).numpy()).mean()
                  / laplacian_variance(u8).mean()) ** 2
    assert abs(F.lap_mean_loss(blur, x).item() - want) < 1e-4 * want


def test_the_card_table_lists_every_variant_and_marks_the_shipped_one(tmp_path):
    rep = lambda p, r: {"emoji": {"n": 3, "psnr_db": p, "laplacian_ratio": r}, "shapes": {"n": 4, "psnr_db": p + 6, "laplacian_ratio": r}}  # noqa: E731
    reports = {"decoder-rec": {"loss": "rec", "steps": 10, "batch": 2, "lr": 1e-4, "seconds": 60, "before": rep(30, 0.6), "after": rep(30.5, 0.65)},
               "decoder-lap": {"loss": "lap", "lap_weight": 0.05, "steps": 9, "batch": 2, "lr": 1e-4, "seconds": 60,
                               "before": rep(30, 0.6), "after": rep(30.2, 0.91)}}
    block = F.card_block(reports, chosen="decoder-lap")
    assert block.startswith(F.BEGIN) and block.endswith(F.END + "\n")
    assert "| start (the decoder before this fine-tune) | | | 30.00 / 36.00 | 0.600 / 0.600 |" in block
    assert "| decoder-rec | rec | 10 x 2 (1.0 min) | 30.50 / 36.50 | 0.650 / 0.650 |" in block
    assert "| **decoder-lap** (shipped) | lap, weight 0.05 | 9 x 2 (1.0 min) | 30.20 / 36.20 | 0.910 / 0.910 |" in block
    assert "3 emoji / 4 shape scenes" in block
