"""The digital ceiling's VAE (benchmarks/emoji_digital_ceiling.py): KL in closed form, shapes."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence


def test_kl_is_the_gaussian_kl_against_the_label_component(load_script):
    torch.manual_seed(0)
    vae = load_script("emoji_digital_ceiling").ConvVAE(32, 6, n_classes=4)
    mu, log_var = torch.randn(5, 6), torch.randn(5, 6)
    labels = torch.tensor([0, 3, 1, 1, 2])
    want = kl_divergence(
        Normal(mu, torch.exp(0.5 * log_var)), Normal(vae.means[labels], torch.ones(5, 6))
    ).sum(1)
    torch.testing.assert_close(vae.kl(mu, log_var, labels), want)


def test_decoder_returns_images_of_the_input_shape_in_0_1(load_script):
    vae = load_script("emoji_digital_ceiling").ConvVAE(64, 8, n_classes=2)
    mu, log_var = vae.posterior(torch.rand(3, 3, 64, 64))
    assert mu.shape == log_var.shape == (3, 8)
    out = vae.decode(mu)
    assert out.shape == (3, 3, 64, 64) and out.min() >= 0 and out.max() <= 1


def test_bad_size_names_the_value(load_script):
    with pytest.raises(ValueError, match="size=40"):
        load_script("emoji_digital_ceiling").ConvVAE(40, 8, n_classes=2)
