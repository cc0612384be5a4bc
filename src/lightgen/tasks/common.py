"""What several tasks share: the trained model's image shape and input checks, grey/colour
channel matching, and strict-JSON reports written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightgen.tasks.images import atomic_write

if TYPE_CHECKING:
    from lightgen.train.system import BOGTSystem


def expected_image_shape(system: BOGTSystem) -> tuple[int, int, int]:
    """``(C, S, S)`` images the trained model takes (chip, hybrid or digital VAE)."""
    return tuple(system.model.image_shape)


def check_images(system: BOGTSystem, images, name: str = "images") -> torch.Tensor:
    """Validate ``images`` ``(B, C, S, S)`` in [0, 1] for this model; return them as float32.

    Optical models also take grey ``C = 1`` images on a colour chip (one SLM channel
    drives every wavelength).
    """
    n_cond = system.n_conditions
    if n_cond:
        raise ValueError(
            f"this model injects {n_cond} condition fiber(s) (condition_fibers={n_cond}); "
            "denoise/edit/video do not drive condition fibers. Use a model trained with "
            "condition_fibers=0."
        )
    c, s, _ = expected_image_shape(system)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(
            f"{name} must be a (batch, {c}, {s}, {s}) tensor, got {got}. "
            "Add the batch/channel axes with .unsqueeze()."
        )
    ok_c = (1, c) if system.model.accepts_grey_input else (c,)
    if images.shape[-2:] != (s, s) or images.shape[1] not in ok_c or images.shape[0] < 1:
        raise ValueError(
            f"{name} have shape {tuple(images.shape)}, but this model takes (batch, {c}, {s}, {s}). "
            f"Load the data with size={s} (e.g. load_dataset(..., size={s}))."
        )
    if images.is_complex() or not torch.isfinite(images).all():
        raise ValueError(
            f"{name} must be real, finite intensities in [0, 1]; clip or rescale them."
        )
    return images.float()


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Camera images of a colour chip driven by grey inputs -> grey (channel mean)."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return images.mean(1, keepdim=True)
    return images.expand(-1, channels, -1, -1)


def json_safe(obj):
    """Non-finite floats -> ``None`` (strict JSON has no inf/nan), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: Path, report: dict) -> Path:
    text = json.dumps(json_safe(report), indent=1, allow_nan=False)
    return atomic_write(path, lambda p: p.write_text(text))
