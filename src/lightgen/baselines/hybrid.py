"""Hybrid baseline in the style of Ozcan et al. (Nature 2025): a shallow digital MLP
maps the latent to an SLM phase seed, and a diffractive decoder (same optical
generator as the chip: passive layers + camera) makes the image.

Encoder and optical latent space are the chip's own (optical), so the comparison
isolates the generator: fiber emission (all-optical) versus digital MLP + SLM
(hybrid). Optical neuron count is equal by construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightgen.chip.chip import LightGenChip, PhotonicGenerator, phase_modulator
from lightgen.chip.config import ChipConfig


class HybridBaseline(nn.Module):
    """HYBRID (not all-optical): optical encoder + fibers -> digital MLP -> SLM phase -> optical decoder."""

    complex_latent = True

    def __init__(self, config: ChipConfig, hidden: int = 64):
        super().__init__()
        self.chip = LightGenChip(config, generators=False)  # its own SLM-seeded generator below
        self.config = config
        s = config.image_size
        self.mlp = nn.Sequential(
            nn.Linear(2 * config.latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, s * s)
        )
        self.generator = PhotonicGenerator(config, self.chip.grid)
        self.slm = phase_modulator(config, self.chip.grid)  # None: ideal, continuous phase
        self.latent_dim = config.latent_dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.chip.encode(images)

    @property
    def hidden(self) -> int:
        """Width of the MLP's hidden layer."""
        return int(self.mlp[0].out_features)

    def with_config(self, config: ChipConfig) -> HybridBaseline:
        """A new, untrained hybrid of this one's structure on ``config``."""
        return HybridBaseline(config, self.hidden)

    def decode(self, z: torch.Tensor, generator=0) -> torch.Tensor:
        return self.generator(self.slm_field(z))

    def slm_field(self, z: torch.Tensor) -> torch.Tensor:
        """The field the SLM sends into the optical decoder ``(B, L, N, N)`` for latents ``z``
        (the MLP's phase seed on the SLM, lit at ``generator_power_w``)."""
        cfg = self.config
        s, k, n = cfg.image_size, cfg.slm_pixel_samples, cfg.grid_samples
        seed = torch.tanh(self.mlp(torch.view_as_real(z).flatten(1))).view(-1, 1, s, s)
        side = s * k
        amp = math.sqrt(cfg.generator_power_w / (side * cfg.pixel_pitch_m) ** 2)
        if self.slm is not None:
            # phase pi * seed as grey (seed + 1) / 2 on a 2 pi stroke: the same field up to
            # a global phase of pi, quantised to the SLM's drive levels
            return self.slm((seed + 1) / 2) * amp
        phase = math.pi * seed
        phase = phase.repeat_interleave(k, -2).repeat_interleave(k, -1)
        field = torch.polar(torch.full_like(phase, amp), phase).expand(
            -1, cfg.n_wavelengths, -1, -1
        )
        top = n // 2 - side // 2
        return F.pad(field, (top, n - top - side, top, n - top - side))
