"""The digital twin: the chip with a set of :class:`~lightgen.lab.errors.ChipErrors`.

:func:`raw_frames` gives the frames a setup with those errors would capture (before the
host's camera calibration, no noise), differentiable in the chip's parameters, its
ports and laser power, and in the errors. The simulated lab runs it with hidden errors;
calibration fits the errors; physics-aware training takes its gradients.
"""

from __future__ import annotations

import torch

from lightgen.chip.chip import LightGenChip
from lightgen.lab.errors import ChipErrors, installed


def raw_frames(
    chip: LightGenChip,
    errors: ChipErrors,
    images: torch.Tensor | None = None,
    latents: torch.Tensor | None = None,
    return_latents: bool = False,
):
    """Frames ``(B, L, S, S)`` for SLM ``images`` (encode -> fibers -> generator) or for
    ``latents`` driven by the injection port (exactly one of them); with
    ``return_latents``, ``(frames, latents)`` (the coupled latents of the SLM path)."""
    if (images is None) == (latents is None):
        raise ValueError("give images (SLM path) or latents (injection port), not both.")
    gen = chip.generators[0]
    with installed(chip, errors):
        z = chip.encode(images) if images is not None else latents
        y = chip.decode(z, 0)
    # undo the design's calibration inside the chip's camera: relative irradiance
    gain = gen.camera_log_gain.exp().view(1, -1, 1, 1)
    rel = (y - gen.camera_offset.view(1, -1, 1, 1)) / gain
    frames = errors.sensor(rel)
    return (frames, z) if return_latents else frames
