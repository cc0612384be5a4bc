"""Fabrication errors of a whole chip: height quantisation and layer misalignment.

Used two ways: as training-time augmentation (fabrication-aware training, every
forward pass draws new placement errors) and at evaluation, to measure the quality
of a design once fabricated (each forward pass is one Monte-Carlo fabrication).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from pydantic import BaseModel, ConfigDict, Field

from lightgen.optics.elements import MetasurfaceLayer
from lightgen.optics.fabrication import HeightQuantizer, Misalignment


class FabricationModel(BaseModel):
    """Fabrication tolerances. ``levels``: etch depths per layer (None: continuous)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    levels: int | None = Field(default=None, ge=2, le=65536)
    shift_std_m: float = Field(
        default=0.0, ge=0, description="lateral placement std per axis, metres"
    )
    rotation_std_rad: float = Field(default=0.0, ge=0, description="in-plane rotation std, radians")
    distance_std_m: float = Field(default=0.0, ge=0, description="axial placement std, metres")


def metasurface_layers(module: torch.nn.Module) -> list[MetasurfaceLayer]:
    return [m for m in module.modules() if isinstance(m, MetasurfaceLayer)]


def apply_fabrication(module: torch.nn.Module, fab: FabricationModel, seed: int = 0) -> None:
    """Give every metasurface layer of ``module`` the quantiser and a seeded misalignment."""
    for i, layer in enumerate(metasurface_layers(module)):
        if fab.levels is not None:
            layer.quantizer = HeightQuantizer(fab.levels)
        if fab.shift_std_m or fab.rotation_std_rad or fab.distance_std_m:
            layer.misalignment = Misalignment(
                fab.shift_std_m,
                fab.rotation_std_rad,
                fab.distance_std_m,
                generator=torch.Generator().manual_seed(seed * 1000 + i),
            )


@contextmanager
def fabricated(module: torch.nn.Module, fab: FabricationModel | None, seed: int = 0):
    """Evaluate ``module`` as fabricated: quantised heights and freshly drawn placement errors
    on every forward pass (misalignment sampling is switched on even in eval mode)."""
    if fab is None:
        yield module
        return
    layers = metasurface_layers(module)
    saved = [(layer.quantizer, layer.misalignment) for layer in layers]
    try:
        apply_fabrication(module, fab, seed)
        for layer in layers:
            if layer.misalignment is not None:
                layer.misalignment.train()
        yield module
    finally:
        for layer, (q, m) in zip(layers, saved, strict=True):
            layer.quantizer, layer.misalignment = q, m
