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
