"""Fabrication errors of a whole chip: height quantisation and layer misalignment.

Used two ways: as training-time augmentation (fabrication-aware training, every
forward pass draws new placement errors) and at evaluation, to measure the quality
of a design once fabricated (each forward pass is one Monte-Carlo fabrication).

:func:`refined` asks the other question a fabricated chip poses: its layers are
piecewise-constant pixels, and a simulation with one grid sample per pixel does not
resolve the light a pixel's edges diffract. The same physical chip on a finer grid must
give the same numbers; where it does not, the coarse numbers are not the device's.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightgen.baselines.hybrid import HybridBaseline
from lightgen.chip.chip import LightGenChip, PhotonicGenerator
from lightgen.chip.config import ChipConfig, finer_grid_fields
from lightgen.optics.elements import MetasurfaceLayer
from lightgen.optics.fabrication import HeightQuantizer, Misalignment

#: What :func:`refined` and :func:`calibrate_camera` take: the all-optical chip, or the
#: hybrid baseline (the chip's encoder and fibers, an MLP, an SLM and an optical decoder).
OpticalModule = LightGenChip | HybridBaseline


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


def refined(chip: OpticalModule, factor: int) -> OpticalModule:
    """The same physical chip (a :class:`LightGenChip`, or a hybrid baseline's optics with
    its MLP, :class:`HybridBaseline`) simulated on a grid ``factor`` times finer.

    Every metasurface layer keeps its pixels (pitch ``layer_pixel_samples * pixel_pitch_m``)
    and their heights: ``layer_pixel_samples`` grows by ``factor``, so each pixel is
    ``factor`` times more grid samples of one height, with the chip's filter and quantiser
    acting on the same pixel map; the SLM and camera keep their pixels
    (``slm_pixel_samples`` and ``camera_pixel_samples`` times ``factor``); distances,
    fibers, ports, camera gain and offset and the laser gain are the chip's (and a hybrid's
    MLP). So ``refined(chip, 2)`` takes the same images and latents and returns what the
    chip returns, up to what the coarse grid does not resolve: light diffracted beyond its
    band ``1 / (2 pixel_pitch_m)`` by height jumps between pixels, and the fiber modes'
    sampling. Misalignment is not carried over. Raises ``ValueError`` for a factor < 1 or
    a fine grid over ``ChipConfig``'s limit.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor={factor!r}: give a whole number >= 1 of samples per pixel side.")
    c = chip.config
    try:
        cfg = ChipConfig(**finer_grid_fields(c.model_dump(), factor))
    except ValidationError as e:
        first = e.errors()[0]
        raise ValueError(
            f"factor={factor}: the finer grid is not a valid chip ({first['loc'][0]}: "
            f"{first['msg']}); use a smaller factor."
        ) from None
    fine = chip.with_config(cfg)
    ref = next(chip.parameters())
    fine = fine.to(device=ref.device)
    fine.load_state_dict(chip.state_dict())  # per-pixel parameters: the same shapes
    pairs = zip(metasurface_layers(chip), metasurface_layers(fine), strict=True)
    for coarse, layer in pairs:  # a quantiser set by apply_fabrication, not the config
        layer.quantizer = coarse.quantizer
    return fine


@torch.no_grad()
def calibrate_camera(
    chip: OpticalModule,
    latents: torch.Tensor,
    images: torch.Tensor,
    routes: int | torch.Tensor = 0,
) -> None:
    """Set each generator's camera gain and offset (per colour) to the least-squares fit of
    the images it makes from ``latents`` ``(B, D)`` to ``images`` ``(B, L, S, S)``: the
    camera calibration a lab repeats on a fabricated chip with known images (the one
    digital step after the camera the chip is allowed). ``routes``: the generator of every
    latent (an index, or a ``(B,)`` tensor); a generator no latent reaches is left alone,
    and a gain that would come out non-positive is kept as it was. A hybrid's one optical
    decoder is fitted on the field its SLM sends for ``latents`` (``routes`` unused)."""
    if isinstance(chip, HybridBaseline):  # one generator, lit by the SLM
        _fit_camera(chip.generator, chip.slm_field(latents), images)
        return
    field = chip.emitted_field(latents)
    routes = torch.as_tensor(routes, device=field.device).expand(len(latents))
    for i, gen in enumerate(chip.generators):
        sel = routes == i
        if sel.any():
            _fit_camera(gen, field[sel], images[sel])


def _fit_camera(gen: PhotonicGenerator, field: torch.Tensor, images: torch.Tensor) -> None:
    rel = gen.relative_intensity(gen.camera_field(field)).double()
    x = images.to(rel)
    for c in range(rel.shape[1]):
        r, t = rel[:, c].flatten(), x[:, c].flatten()
        rc, tc = r - r.mean(), t - t.mean()
        var = rc.square().sum()
        if var <= 0:
            continue
        a = (rc * tc).sum() / var
        if a > 0:
            gen.camera_log_gain[c] = a.log().to(gen.camera_log_gain)
            gen.camera_offset[c] = (t.mean() - a * r.mean()).to(gen.camera_offset)
