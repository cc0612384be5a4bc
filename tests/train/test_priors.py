import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.train.priors import (
    GaussianPrior,
    MixturePrior,
    gaussian_kl,
    make_prior,
    standard_normal,
)


@settings(max_examples=25, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 2), st.floats(-2, 2), st.floats(-2, 1))
def test_real_gaussian_kl_matches_torch_distributions(mu, log_var, m, log_s):
    ours = gaussian_kl(torch.tensor([mu]), torch.tensor([log_var]), m, log_s, complex_latent=False)
    p = torch.distributions.Normal(mu, math.exp(0.5 * log_var))
    q = torch.distributions.Normal(m, math.exp(0.5 * log_s))
    assert torch.allclose(ours, torch.distributions.kl_divergence(p, q), atol=1e-5)


def test_complex_kl_equals_two_real_kls_of_half_variance():
    # CN(mu, s) is a 2-D real Gaussian with per-axis variance s/2
    mu = torch.tensor([0.7 - 0.4j])
    lv = torch.tensor([-1.3])
    ours = gaussian_kl(mu, lv, 0.0, 0.0, complex_latent=True)
    half = math.log(0.5)
    re = gaussian_kl(mu.real, lv + half, 0.0, half, complex_latent=False)
    im = gaussian_kl(mu.imag, lv + half, 0.0, half, complex_latent=False)
    assert torch.allclose(ours, re + im, atol=1e-6)


def test_standard_complex_normal_has_unit_power_and_circular_phase():
    z = standard_normal((200_000,), True, torch.Generator().manual_seed(0))
    assert abs(z.abs().square().mean().item() - 1) < 0.01
    assert abs((z * z).mean().abs().item()) < 0.01  # circular: E[z^2] = 0


def test_mixture_kl_reduces_to_single_gaussian_kl_for_one_dominant_component():
    prior = MixturePrior(4, 3, complex_latent=True)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([30.0, 0.0, 0.0]))
        prior.means_ri.zero_()
        prior.means_ri[1:] += 50.0
    mu = standard_normal((5, 4), True, torch.Generator().manual_seed(1))
    lv = torch.full((5, 4), -1.0)
    assert torch.allclose(prior.kl(mu, lv), GaussianPrior(4).kl(mu, lv), atol=1e-4)


def test_mixture_samples_of_a_component_cluster_at_its_mean():
    prior = MixturePrior(8, 4, complex_latent=True, seed=3)
    z = prior.sample(4000, torch.Generator().manual_seed(0), component=2)
    assert (z.mean(0) - prior.means[2].detach()).abs().max() < 0.1
    assert prior.responsibilities(z).argmax(1).eq(2).float().mean() > 0.95


def test_unknown_prior_is_rejected_with_the_choices():
    try:
        make_prior("laplace", 4)
    except ValueError as e:
        assert "laplace" in str(e) and "gaussian" in str(e)
    else:
        raise AssertionError("no error")


def test_zero_temperature_samples_are_the_component_means():
    prior = MixturePrior(6, 3, complex_latent=True, seed=1)
    z = prior.sample(5, torch.Generator().manual_seed(0), component=1, temperature=0.0)
    assert torch.equal(z, prior.means.detach()[1].expand(5, -1))
    g = GaussianPrior(6).sample(4, torch.Generator().manual_seed(0), temperature=0.5)
    g1 = GaussianPrior(6).sample(4, torch.Generator().manual_seed(0))
    assert torch.allclose(g, 0.5 * g1)


# ------------------------------------------------ label-selected components ('components')
def test_label_selected_kl_is_the_closed_form_kl_to_that_component_minus_log_weight():
    # complex: KL(CN(mu, s1) || CN(m, s2)) = |mu - m|^2/s2 + s1/s2 - 1 - ln(s1/s2) per dim
    prior = MixturePrior(3, 4, complex_latent=True, seed=5)
    with torch.no_grad():
        prior.log_var.copy_(torch.tensor([0.3, -0.5, 0.0, 1.0]))
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
    mu = standard_normal((4, 3), True, torch.Generator().manual_seed(2))
    lv = torch.tensor([[-1.0, -2.0, 0.5]]).expand(4, 3)
    comps = torch.tensor([3, 0, 1, 3])
    got = prior.kl(mu, lv, comps)
    pi = torch.softmax(prior.logits.detach(), 0)
    for i, c in enumerate(comps.tolist()):
        s1, s2 = lv[i].exp().double(), math.exp(prior.log_var[c].item())
        d2 = (mu[i] - prior.means[c].detach()).abs().square().double()
        want = (d2 / s2 + s1 / s2 - 1 - torch.log(s1 / s2)).sum() - math.log(pi[c].item())
        assert abs(got[i].item() - want.item()) < 1e-4 * max(1.0, abs(want.item()))


def test_label_selected_kl_trains_the_weights_to_the_class_frequencies():
    # the -ln pi_c term is a categorical likelihood: its minimum is pi = the label frequencies
    prior = MixturePrior(2, 3, complex_latent=True)
    comps = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    mu = prior.means.detach()[comps]
    lv = torch.zeros(len(comps), 2)
    opt = torch.optim.Adam([prior.logits], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        prior.kl(mu, lv, comps).mean().backward()
        opt.step()
    pi = torch.softmax(prior.logits.detach(), 0)
    assert torch.allclose(pi, torch.tensor([0.6, 0.3, 0.1]), atol=0.01)


def test_label_selected_kl_rejects_wrong_shapes_out_of_range_and_a_single_gaussian():
    import pytest

    prior = MixturePrior(2, 3)
    mu, lv = torch.zeros(2, 2, dtype=torch.complex64), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="one component index per image"):
        prior.kl(mu, lv, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        prior.kl(mu, lv, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="prior='mixture'"):
        GaussianPrior(2).kl(mu, lv, torch.tensor([0, 1]))


# ------------------------------------------------ diagonal component covariance
def test_diagonal_component_kl_is_the_per_dimension_closed_form():
    prior = MixturePrior(3, 2, complex_latent=True, seed=1, diagonal=True)
    with torch.no_grad():
        prior.log_var.copy_(torch.tensor([[0.5, -1.0, 0.0], [1.0, 0.2, -0.3]]))
    mu = standard_normal((2, 3), True, torch.Generator().manual_seed(4))
    lv = torch.tensor([[-1.0, 0.0, 0.3], [0.2, -0.4, -2.0]])
    got = prior.component_kl(mu, lv)
    for i in range(2):
        for k in range(2):
            s1, s2 = lv[i].exp(), prior.log_var[k].detach().exp()
            d2 = (mu[i] - prior.means[k].detach()).abs().square()
            want = (d2 / s2 + s1 / s2 - 1 - torch.log(s1 / s2)).sum()
            assert torch.allclose(got[i, k], want, atol=1e-5)


def test_diagonal_component_samples_have_the_per_dimension_variances():
    prior = MixturePrior(3, 2, complex_latent=True, diagonal=True)
    with torch.no_grad():
        prior.log_var[1] = torch.log(torch.tensor([0.01, 1.0, 4.0]))
    z = prior.sample(40_000, torch.Generator().manual_seed(0), component=1)
    var = (z - prior.means[1].detach()).abs().square().mean(0)  # E|z - m|^2 = s (complex)
    assert torch.allclose(var, torch.tensor([0.01, 1.0, 4.0]), rtol=0.05)


def test_diagonal_responsibilities_prefer_the_component_narrow_where_the_point_is_close():
    # same means; component 0 narrow in dim 0, component 1 narrow in dim 1
    prior = MixturePrior(2, 2, complex_latent=False, diagonal=True)
    with torch.no_grad():
        prior.means_ri.zero_()
        prior.log_var.copy_(torch.log(torch.tensor([[0.01, 1.0], [1.0, 0.01]])))
    z = torch.tensor([[0.0, 0.8], [0.8, 0.0]])
    assert prior.responsibilities(z).argmax(1).tolist() == [0, 1]


def test_isotropic_and_diagonal_with_equal_variances_agree():
    iso = MixturePrior(4, 3, complex_latent=True, seed=2)
    diag = MixturePrior(4, 3, complex_latent=True, seed=2, diagonal=True)
    with torch.no_grad():
        iso.log_var.copy_(torch.tensor([0.3, -0.2, 0.7]))
        diag.log_var.copy_(iso.log_var[:, None].expand(3, 4))
    mu = standard_normal((5, 4), True, torch.Generator().manual_seed(3))
    lv = torch.full((5, 4), -1.0)
    assert torch.allclose(iso.kl(mu, lv), diag.kl(mu, lv), atol=1e-5)
    assert torch.allclose(iso.responsibilities(mu), diag.responsibilities(mu), atol=1e-6)
