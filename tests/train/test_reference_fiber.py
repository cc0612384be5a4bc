"""A laser-fed reference fiber (TrainConfig.reference_amplitude): a constant value on the last
fiber, no KL term, and coherent interference with the free fibers at the camera."""

import pytest
import torch

from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.generate import decode, encode, reconstruct, sample
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer

AMP = 3.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images = make_printed_digits(32, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=3, batch_size=8, reference_amplitude=AMP)
    t = Trainer(cfg, tmp_path_factory.mktemp("ref"), images, progress=False)
    t.run()
    return t.system.eval(), images


def test_the_reference_fiber_has_no_prior_and_carries_its_constant(trained):
    system, _ = trained
    d = system.model.latent_dim
    assert system.n_conditions == 0 and system.free_dim == system.prior.dim == d - 1
    _, full = sample(system, 4, seed=0)  # no conditions needed; the full drive values
    assert full.shape == (4, d)
    assert torch.equal(full[:, -1], torch.full((4,), AMP, dtype=full.dtype))
    z = system.free_part(full)
    assert torch.equal(system.with_conditions(z, None), full)


def test_decoding_encoded_latents_replaces_the_coupled_reference_value(trained):
    system, images = trained
    mu = encode(system, images[:3])
    assert not torch.allclose(mu[:, -1], torch.full_like(mu[:, -1], AMP))
    fixed = mu.clone()
    fixed[:, -1] = AMP
    with torch.no_grad():
        want = system.model.decode(fixed, 0).clamp(0, 1)
    assert torch.allclose(decode(system, mu), want)
    assert torch.allclose(reconstruct(system, images[:3]), want)


def test_the_reference_interferes_coherently_with_the_free_fibers(trained):
    """Camera C = g * |E|^2 + o with E = r h_ref + A z linear: the parallelogram law gives
    C(z) + C(-z) - 2 C(0) = 2 (C_no_ref(z) - o) exactly, C_no_ref the camera without the
    reference (its fiber dark)."""
    system, _ = trained
    g = torch.Generator().manual_seed(1)
    z = system.prior.sample(3, g)
    zero = torch.zeros_like(z)
    with torch.no_grad():
        c = [system.model.decode(system.with_conditions(v, None), 0) for v in (z, -z, zero)]
        dark = torch.cat([z, torch.zeros_like(z[:, :1])], 1)
        no_ref = system.model.decode(dark, 0)
        offset = system.model.chip.generators[0].camera_offset.detach().view(1, -1, 1, 1)
    lhs = c[0] + c[1] - 2 * c[2]
    rhs = 2 * (no_ref - offset)
    assert torch.allclose(lhs, rhs, atol=1e-5 * float(c[2].abs().max()))
    # the cross term, which an incoherent (intensity) sum would not have: per camera sample
    # X = C(z) - C(-z) + i (C(iz) - C(-iz)) = 4 g conj(E_ref) E_z, so |X|^2 = 16 (C(0) - o)
    # (C_no_ref(z) - o); over a pixel of several samples it is <= (Cauchy-Schwarz)
    with torch.no_grad():
        ci = [system.model.decode(system.with_conditions(v, None), 0) for v in (1j * z, -1j * z)]
    x2 = (c[0] - c[1]).square() + (ci[0] - ci[1]).square()
    bound = 16 * (c[2] - offset) * (no_ref - offset)
    assert (x2 <= bound * (1 + 1e-4) + 1e-9).all()
    assert float(x2.sum() / bound.sum()) > 0.5  # coherent: near the bound (0 if incoherent)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"model": "hybrid"}, "model='hybrid'"),
        ({"condition_fibers": 2}, "condition fibers is not built"),
    ],
)
def test_a_reference_needs_a_chip_without_condition_fibers(extra, named):
    with pytest.raises(ValueError, match=named):
        TrainConfig(preset="tiny", reference_amplitude=AMP, **extra)


def test_old_configs_have_no_reference():
    assert TrainConfig(preset="tiny").reference_amplitude == 0
