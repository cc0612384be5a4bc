"""Trainable models sharing one interface, :class:`TrainedModel`, for the BOGT trainer
and the tasks.

``posterior(x) -> (mu, log_var)`` gives Q(Z|X); ``decode(z, generator)`` gives the
camera (or decoder) image; ``complex_latent`` says which KL applies.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from lightgen.baselines.digital_vae import DigitalVAE, hidden_for_budget
from lightgen.baselines.hybrid import HybridBaseline
from lightgen.chip.chip import LightGenChip
from lightgen.chip.config import ChipConfig


@runtime_checkable
class TrainedModel(Protocol):
    """What training and the tasks use of a model: the chip, the hybrid or the digital VAE.

    Attributes:
        latent_dim: latent dimensions ``D`` (the chip: ``n_fibers * n_wavelengths``).
        complex_latent: the latent is complex (optical fibers: amplitude and phase) or
            real (digital VAE); it picks the KL and whether phase edits make sense.
        image_shape: ``(C, S, S)`` images the model takes and makes.
        accepts_grey_input: grey ``(B, 1, S, S)`` images are also taken on a colour
            model (one SLM channel drives every wavelength).
        optical_chip: the all-optical :class:`LightGenChip` whose generators decode the
            latent (fiber ports, plane fields, height maps), or ``None`` (hybrid, VAE).
    """

    latent_dim: int
    complex_latent: bool
    accepts_grey_input: bool

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    @property
    def optical_chip(self) -> LightGenChip | None: ...

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(Z|X): ``(mu, log_var)``, each ``(B, D)`` for images ``(B, C, S, S)``."""
        ...

    def decode(self, z: torch.Tensor, generator: int | torch.Tensor = 0) -> torch.Tensor:
        """Images ``(B, C, S, S)`` for latents ``(B, D)``, through generator ``generator``."""
        ...


def _image_shape(config: ChipConfig) -> tuple[int, int, int]:
    return config.image_channels, config.image_size, config.image_size


class ChipModel(nn.Module):
    """The all-optical chip plus Q(Z|X)'s variance.

    Q(Z|X) = CN(encode(x), diag(sigma^2)): the coupled latent plus a learned
    per-fiber noise injection (a calibrated noise source on each fiber's port;
    ``log_var`` holds ln sigma^2 per latent dimension). At generation time the
    injection port drives the fibers with samples of P(Z) instead.
    """

    complex_latent = True
    accepts_grey_input = True

    def __init__(
        self, config: ChipConfig, init_log_var: float = -2.0, activation_checkpointing: bool = False
    ):
        super().__init__()
        self.chip = LightGenChip(config, activation_checkpointing)
        self.log_var = nn.Parameter(torch.full((config.latent_dim,), float(init_log_var)))
        self.latent_dim = config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return _image_shape(self.chip.config)

    @property
    def optical_chip(self) -> LightGenChip:
        return self.chip

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.chip.encode(images), self.log_var.expand(images.shape[0], -1)

    def decode(self, z: torch.Tensor, generator=0) -> torch.Tensor:
        return self.chip.decode(z, generator)


class HybridModel(nn.Module):
    """The hybrid baseline (optical encoder and fibers, digital MLP + SLM generator) plus
    Q(Z|X)'s variance; its latent reaches the decoder digitally, so ``optical_chip`` is
    ``None``."""

    complex_latent = True
    accepts_grey_input = True
    optical_chip = None

    def __init__(self, config: ChipConfig, init_log_var: float = -2.0, hidden: int = 64):
        super().__init__()
        self.net = HybridBaseline(config, hidden)
        self.log_var = nn.Parameter(torch.full((config.latent_dim,), float(init_log_var)))
        self.latent_dim = config.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return _image_shape(self.net.config)

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.encode(images), self.log_var.expand(images.shape[0], -1)

    def decode(self, z: torch.Tensor, generator: int | torch.Tensor = 0) -> torch.Tensor:
        return self.net.decode(z, generator)


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_model(
    kind: str,
    config: ChipConfig,
    init_log_var: float = -2.0,
    activation_checkpointing: bool = False,
) -> TrainedModel:
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
