"""Trainable models sharing one interface for the BOGT trainer.

``posterior(x) -> (mu, log_var)`` gives Q(Z|X); ``decode(z, generator)`` gives the
camera (or decoder) image; ``complex_latent`` says which KL applies.
"""

from __future__ import annotations

import torch
from torch import nn

from lightgen.baselines.digital_vae import DigitalVAE, hidden_for_budget
from lightgen.baselines.hybrid import HybridBaseline
from lightgen.chip.chip import LightGenChip
from lightgen.chip.config import ChipConfig


class ChipModel(nn.Module):
    """The all-optical chip plus Q(Z|X)'s variance.

    Q(Z|X) = CN(encode(x), diag(sigma^2)): the coupled latent plus a learned
    per-fiber noise injection (a calibrated noise source on each fiber's port;
    ``log_var`` holds ln sigma^2 per latent dimension). At generation time the
    injection port drives the fibers with samples of P(Z) instead.
    """

    complex_latent = True

    def __init__(
        self, config: ChipConfig, init_log_var: float = -2.0, activation_checkpointing: bool = False
    ):
        super().__init__()
        self.chip = LightGenChip(config, activation_checkpointing)
        self.log_var = nn.Parameter(torch.full((config.latent_dim,), float(init_log_var)))
        self.latent_dim = config.latent_dim

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.chip.encode(images), self.log_var.expand(images.shape[0], -1)

    def decode(self, z: torch.Tensor, generator=0) -> torch.Tensor:
        return self.chip.decode(z, generator)


class HybridModel(nn.Module):
    complex_latent = True

    def __init__(self, config: ChipConfig, init_log_var: float = -2.0, hidden: int = 64):
        super().__init__()
        self.net = HybridBaseline(config, hidden)
        self.log_var = nn.Parameter(torch.full((config.latent_dim,), float(init_log_var)))
        self.latent_dim = config.latent_dim

    def posterior(self, images):
        return self.net.encode(images), self.log_var.expand(images.shape[0], -1)

    def decode(self, z, generator=0):
        return self.net.decode(z, generator)


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_model(
    kind: str,
    config: ChipConfig,
    init_log_var: float = -2.0,
    activation_checkpointing: bool = False,
):
    """``kind``: ``chip`` (all-optical), ``hybrid`` (digital MLP + SLM generator), ``vae`` (digital)."""
    if kind == "chip":
        return ChipModel(config, init_log_var, activation_checkpointing)
    if kind == "hybrid":
        return HybridModel(config, init_log_var)
    if kind == "vae":
        budget = trainable_parameters(ChipModel(config))
        d = 2 * config.latent_dim  # same real degrees of freedom as the complex OLS
        h = hidden_for_budget(config.image_channels, config.image_size, d, budget)
        return DigitalVAE(config.image_channels, config.image_size, d, h)
    raise ValueError(f"model={kind!r} is unknown; choose 'chip', 'hybrid' or 'vae'.")
