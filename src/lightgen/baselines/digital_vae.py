"""Digital VAE baseline (fully electronic), sized to the chip's trainable parameter count."""

from __future__ import annotations

import torch
from torch import nn


class DigitalVAE(nn.Module):
    """MLP VAE with a real latent of ``latent_dim`` dimensions.

    ``hidden`` is chosen by :func:`hidden_for_budget` so that the parameter count
    matches a budget (the chip's trainable parameters) as closely as possible.
    """

    complex_latent = False
    accepts_grey_input = False
    optical_chip = None  # fully digital

    def __init__(self, image_channels: int, image_size: int, latent_dim: int, hidden: int):
        super().__init__()
        n = image_channels * image_size * image_size
        self.shape = (image_channels, image_size, image_size)
        self.latent_dim = latent_dim
        self.enc = nn.Sequential(
            nn.Flatten(), nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim)
        )
        self.dec = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n), nn.Sigmoid()
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shape

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.enc(images).chunk(2, dim=1)
        return mu, log_var.clamp(-12, 6)

    def decode(self, z: torch.Tensor, generator=0) -> torch.Tensor:
        return self.dec(z).view(-1, *self.shape)


def hidden_for_budget(image_channels: int, image_size: int, latent_dim: int, budget: int) -> int:
    n = image_channels * image_size * image_size
    # params(h) = (n*h + h) + (h*2d + 2d) + (d*h + h) + (h*n + n)
    per_h = 2 * n + 3 * latent_dim + 2
    fixed = 2 * latent_dim + n
    return max(8, round((budget - fixed) / per_h))
