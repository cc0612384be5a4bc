"""benchmarks/decoder_ceiling.py: decoder classes at the chip's latent width (issue 16)."""

import math

import pytest
import torch

from lightgen.data.procedural import make_printed_digits
from lightgen.metrics.image import psnr
from lightgen.metrics.pca import pca_basis, pca_project


def test_a_coherent_pixel_reads_the_summed_intensity_of_its_samples(load_script):
    mod = load_script("decoder_ceiling")
    dec = mod.CoherentDecoder(fibers=2, pixels=1, modes=2, g=torch.Generator().manual_seed(0))
    with torch.no_grad():
        dec.a.copy_(torch.tensor([[1 + 0j], [0 + 2j]]))
        dec.l.copy_(torch.tensor([[[1 + 0j], [0 + 0j]], [[0 + 0j], [1j]]]))
        dec.log_gain.fill_(math.log(3.0))
        dec.offset.fill_(-0.5)
    z = torch.tensor([[2 + 0j, 1 + 0j]])
    # sample 1: |1 + 2|^2 = 9; sample 2: |2j + 1j * 1|^2 = 9; 3 * 18 - 0.5
    assert dec(z).item() == pytest.approx(53.5)


def test_a_strong_reference_makes_the_coherent_pixel_linear_in_the_fibers(load_script):
    # |A + L z|^2 - A^2 = 2 A Re(L z) + |L z|^2: relative error |Lz| / (2A)
    mod = load_script("decoder_ceiling")
    g = torch.Generator().manual_seed(1)
    dec = mod.CoherentDecoder(fibers=4, pixels=10, modes=1, g=g)
    a = 1e3
    with torch.no_grad():
        dec.a.fill_(a)
        dec.log_gain.zero_()
        dec.offset.fill_(-(a**2))
    z = torch.randn(3, 4, dtype=torch.cfloat, generator=g)
    lin = 2 * a * (z @ dec.l[0]).real
    assert torch.allclose(dec(z), lin, rtol=0, atol=1e-2 * lin.abs().max().item())


def test_the_linear_class_trains_to_pca_at_the_same_real_width(load_script):
    # control of the optimiser: the best linear autoencoder of 2F real values is PCA-2F
    # (Baldi & Hornik 1989); the trained linear row must land near it
    mod = load_script("decoder_ceiling")
    x = make_printed_digits(300, size=10, seed=0)[0]
    mean, basis = pca_basis(x, 8)
    pca_db = psnr(pca_project(x, mean, basis, clip=False), x).item()
    g = torch.Generator().manual_seed(0)
    dec = mod.make_decoder("linear", 4, 100, g)
    enc, losses = mod.train_autoencoder(dec, x, 4, 1500, 1e-2, 0.0, g, batch=300)
    with torch.no_grad():
        got = psnr(dec(enc(x)).reshape(x.shape), x).item()
    assert losses[-1] < losses[0]
    assert pca_db - 0.5 < got <= pca_db + 0.05


def test_an_unknown_decoder_class_is_named(load_script):
    mod = load_script("decoder_ceiling")
    with pytest.raises(SystemExit, match="coherent0"):
        mod.make_decoder("coherent0", 4, 10, torch.Generator())


def test_fixed_codes_give_each_image_its_runs_fiber_values(load_script, tmp_path):
    from lightgen.train.config import TrainConfig
    from lightgen.train.expost import encode_means
    from lightgen.train.trainer import Trainer, load_trained

    mod = load_script("decoder_ceiling")
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=2, batch_size=8, checkpoint_every=2)
    Trainer(cfg, tmp_path / "run", images, progress=False).run()
    enc, fibers = mod.run_codes(tmp_path / "run", cfg.dataset, images[:40], images[40:])
    system, _ = load_trained(tmp_path / "run")
    want = encode_means(system.eval(), images[[5, 50]]).to(torch.cfloat)
    assert fibers == system.free_dim
    assert torch.allclose(enc(images[[5, 50]]), want, atol=1e-5)
    assert not list(enc.parameters())
    with pytest.raises(SystemExit, match="give --dataset"):
        mod.run_codes(tmp_path / "run", "not-" + cfg.dataset, images[:40], images[40:])


def test_the_term_split_adds_up_and_reads_linear_and_quadratic_limits(load_script):
    mod = load_script("decoder_ceiling")
    g = torch.Generator().manual_seed(2)
    dec = mod.CoherentDecoder(fibers=3, pixels=20, modes=2, g=g)
    z = torch.randn(50, 3, dtype=torch.cfloat, generator=g)
    with torch.no_grad():
        ref, cross, quad = dec.terms(z)
        assert torch.allclose(ref + cross + quad + dec.offset, dec(z), atol=1e-5)
        dec.a.mul_(1e3)  # strong reference: linear limit
        strong = mod.term_split(*dec.terms(z))
        dec.a.zero_()  # no reference: purely quadratic
        none = mod.term_split(*dec.terms(z))
    assert strong["quadratic_share"] < 1e-2 and strong["reference_to_signal_amplitude"] > 100
    assert none["quadratic_share"] == pytest.approx(1.0)
    assert none["reference_to_signal_amplitude"] == 0.0


def test_chip_terms_split_a_reference_chip_and_refuse_one_without(load_script, tmp_path):
    from lightgen.train.config import TrainConfig
    from lightgen.train.trainer import Trainer

    mod = load_script("decoder_ceiling")
    images = make_printed_digits(32, size=12, seed=0)[0]
    for r in (0.0, 50.0):
        cfg = TrainConfig(
            preset="tiny", steps=1, batch_size=8, checkpoint_every=1, reference_amplitude=r
        )
        Trainer(cfg, tmp_path / f"r{r}", images, progress=False).run()
    with pytest.raises(SystemExit, match="no reference fiber"):
        mod.chip_terms(tmp_path / "r0.0", images)
    split = mod.chip_terms(tmp_path / "r50.0", images)
    # a reference 50x a fiber's unit value: nearly linear
    assert split["reference_to_signal_amplitude"] > 3 and split["quadratic_share"] < 0.2
