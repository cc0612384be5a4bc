r"""The errors that separate a fabricated chip from its design, as one parametrised module.

:class:`LabErrorModel` states how large the errors are (standard deviations, the
tolerances of a fab and a setup); :class:`ChipErrors` holds one set of values of them:

* per metasurface layer (encoder, then every generator): lateral shift ``[y, x]``,
  in-plane rotation, axial displacement, relative height (etch depth) error;
* an aberration phase in the plane of the first encoder layer (low-order Zernike
  modes: defocus, two astigmatisms, two comas; e.g. a bent substrate or the
  illumination's wavefront);
* per fiber: extra insertion loss and phase;
* per camera channel: sensor gain and offset (drift since the design's calibration).

Values are stored in units of the model's standard deviations (``u = value / std``), so
one optimiser step size suits every family and a Gaussian prior on them is ``|u|^2 / 2``.
The simulated lab draws hidden ``u`` from N(0, 1); the twin starts at ``u = 0`` (the
design) and fits them (:mod:`lightgen.lab.calibrate`).

:func:`installed` puts a :class:`ChipErrors` into a chip for the duration of a ``with``:
each layer is wrapped so that its transmission is quantised (``levels``, the fab's
known spec, :func:`lightgen.optics.fabrication.quantize_height` with a straight-through
gradient), scaled in height, rotated and shifted (:func:`~lightgen.optics.fabrication.rotate`,
:func:`~lightgen.optics.fabrication.fourier_shift`, fill: bare substrate), and displaced
axially by ``dz`` (propagate ``+dz``, apply, propagate ``-dz``; a periodic angular-spectrum
step whose transfer function :math:`e^{i k_z dz}` is differentiable in ``dz``). Every
error is differentiable, so the twin can fit them by gradient descent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lightgen.chip.chip import LightGenChip
from lightgen.chip.fabrication import FabricationModel
from lightgen.optics.elements import MetasurfaceLayer
from lightgen.optics.fabrication import fourier_shift, quantize_height, rotate
from lightgen.optics.grid import Grid

#: The parameter families of :class:`ChipErrors`, in the order reports list them.
FAMILIES: tuple[str, ...] = (
    "layer_shift",
    "layer_rotation",
    "layer_distance",
    "height_scale",
    "aberration",
    "fiber_loss",
    "fiber_phase",
    "camera_gain",
    "camera_offset",
)
# the families that belong to one made chip (a new fabrication draws them again); the
# others belong to the setup (its optics' aberration, the fiber array, the camera)
FABRICATION_FAMILIES: tuple[str, ...] = FAMILIES[:4]

N_ZERNIKE = 5  # defocus, astigmatism 0 / 45 deg, coma x / y


class ErrorModelOutOfRangeError(ValueError):
    """A lab error model outside what the simulation can represent for this chip."""


def _default_fabrication() -> FabricationModel:
    return FabricationModel(
        levels=16, shift_std_m=2e-6, rotation_std_rad=2e-3, distance_std_m=20e-6
    )


class LabErrorModel(BaseModel):
    """How large the errors between design and lab are (standard deviations).

    The defaults are the "realistic" levels of ``docs/lab.md``: 16 etch depths, 2 µm
    lateral and 20 µm axial placement, 2 mrad rotation (a good mask aligner and a
    machined spacer stack), 3 % etch-depth error, 0.5 rad rms aberration, 1 µm fiber
    placement, 0.5 dB / 0.5 rad fiber loss / phase spread, 5 % camera gain drift, 1 %
    offset, 1 % read noise (of the design's mean brightness).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    fabrication: FabricationModel = Field(default_factory=_default_fabrication)
    height_scale_std: float = Field(default=0.03, ge=0, le=0.3)
    aberration_rms_rad: float = Field(default=0.5, ge=0, le=2 * math.pi)
    fiber_position_std_m: float = Field(default=1e-6, ge=0)
    fiber_loss_std_db: float = Field(default=0.5, ge=0, le=10)
    fiber_phase_std_rad: float = Field(default=0.5, ge=0, le=2 * math.pi)
    camera_gain_std: float = Field(default=0.05, ge=0, le=0.5)
    camera_offset_std: float = Field(default=0.01, ge=0, le=0.5)
    camera_noise_std: float = Field(default=0.01, ge=0, le=0.5)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    fabrication_seed: int | None = Field(
        default=None,
        ge=0,
        le=2**32 - 1,
        description=(
            "the chip made again in the same setup: the per-fabrication families "
            "(FABRICATION_FAMILIES: layer placement and etch depth) drawn with this seed, the "
            "setup's (aberration, fibers, camera) kept from `seed`; None: all from `seed`"
        ),
    )

    @classmethod
    def none(cls) -> LabErrorModel:
        """No error at all: the lab is the design (a control, and "as designed"): a
        perfect fabrication and every spread (each float field, so a new one too) 0."""
        spreads = {name: 0.0 for name, f in cls.model_fields.items() if f.annotation is float}
        return cls(fabrication=FabricationModel(), **spreads)

    def check_for(self, chip: LightGenChip) -> LabErrorModel:
        """Refuse errors the chip's sampling cannot represent (named, with the fix)."""
        cfg = chip.config
        pitch = cfg.pixel_pitch_m
        fab = self.fabrication
        limits = (
            ("fabrication.shift_std_m", fab.shift_std_m, 4 * pitch, "4 grid pixels"),
            ("fiber_position_std_m", self.fiber_position_std_m, 4 * pitch, "4 grid pixels"),
            (
                "fabrication.distance_std_m",
                fab.distance_std_m,
                0.25 * cfg.layer_spacing_m,
                "a quarter of the layer spacing",
            ),
            ("fabrication.rotation_std_rad", fab.rotation_std_rad, 0.05, "0.05 rad"),
        )
        for name, value, limit, what in limits:
            if value > limit:
                raise ErrorModelOutOfRangeError(
                    f"lab error model {name}={value:g} is out of range for chip "
                    f"{cfg.name!r}: at most {limit:g} ({what}); a setup that far off needs "
                    "re-alignment, not calibration. Give a smaller standard deviation."
                )
        return self

    def scales(self) -> dict[str, float]:
        """Standard deviation of one ``u = 1`` of each family (SI units; aberration per mode)."""
        fab = self.fabrication
        return {
            "layer_shift": fab.shift_std_m,
            "layer_rotation": fab.rotation_std_rad,
            "layer_distance": fab.distance_std_m,
            "height_scale": self.height_scale_std,
            "aberration": self.aberration_rms_rad / math.sqrt(N_ZERNIKE),
            "fiber_loss": self.fiber_loss_std_db,
            "fiber_phase": self.fiber_phase_std_rad,
            "camera_gain": self.camera_gain_std,
            "camera_offset": self.camera_offset_std,
        }


def chip_layers(chip: LightGenChip) -> list[tuple[nn.ModuleList, int]]:
    """Every metasurface layer as ``(its stack's layer list, index)``: encoder, then generators."""
    stacks = [chip.encoder.stack] + [g.stack for g in chip.generators]
    return [(s.layers, i) for s in stacks for i in range(len(s.layers))]


def zernike_modes(grid: Grid) -> torch.Tensor:
    """The 5 low-order Zernike modes (Noll normalisation: unit rms on the disc), ``(5, H, W)``,
    on the disc inscribed in the grid (extended by the same polynomials outside it)."""
    y, x = grid.meshgrid()
    r_max = min(grid.extent_m) / 2
    rho, theta = torch.sqrt(y**2 + x**2) / r_max, torch.atan2(y, x)
    return torch.stack(
        (
            math.sqrt(3) * (2 * rho**2 - 1),
            math.sqrt(6) * rho**2 * torch.cos(2 * theta),
            math.sqrt(6) * rho**2 * torch.sin(2 * theta),
            math.sqrt(8) * (3 * rho**3 - 2 * rho) * torch.cos(theta),
            math.sqrt(8) * (3 * rho**3 - 2 * rho) * torch.sin(theta),
        )
    )


def displace(field: torch.Tensor, grid: Grid, distance_m: torch.Tensor) -> torch.Tensor:
    r"""Propagate ``(B, L, H, W)`` by a small ``distance_m`` (0-d tensor, differentiable):
    :math:`\mathcal F^{-1}[e^{i k_z d}\,\mathcal F U]` on the periodic grid, evanescent
    waves left unchanged in amplitude (for ``|d|`` of tens of µm the wrap-around is
    negligible; the chip's own hops use the padded planner)."""
    h, w = grid.shape
    fy = torch.fft.fftfreq(h, d=grid.pixel_pitch_m, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(w, d=grid.pixel_pitch_m, dtype=torch.float64)[None, :]
    inv_lam2 = 1.0 / grid.wavelength_tensor(dtype=torch.float64) ** 2
    kz = 2 * math.pi * torch.sqrt((inv_lam2 - fy**2 - fx**2).clamp_min(0))  # (L, H, W)
    d = distance_m.to(torch.float64)
    phase = (kz - 2 * math.pi * torch.sqrt(inv_lam2)) * d  # drop the common piston
    h_tf = torch.polar(torch.ones_like(phase), phase).to(device=field.device, dtype=field.dtype)
    return torch.fft.ifft2(torch.fft.fft2(field) * h_tf)


class ChipErrors(nn.Module):
    """One set of error values for a chip (see the module doc), in units of ``model``'s stds.

    ``levels`` is the fab's number of etch depths (known to the user; ``None``: continuous).
    """

    def __init__(self, chip: LightGenChip, model: LabErrorModel) -> None:
        super().__init__()
        n = len(chip_layers(chip))
        cfg = chip.config
        self.model = model
        self.levels = model.fabrication.levels
        self.layer_shift = nn.Parameter(torch.zeros(n, 2, dtype=torch.float64))
        self.layer_rotation = nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.layer_distance = nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.height_scale = nn.Parameter(torch.zeros(n, dtype=torch.float64))
        self.aberration = nn.Parameter(torch.zeros(N_ZERNIKE, dtype=torch.float64))
        self.fiber_loss = nn.Parameter(torch.zeros(cfg.n_fibers, dtype=torch.float64))
        self.fiber_phase = nn.Parameter(torch.zeros(cfg.n_fibers, dtype=torch.float64))
        self.camera_gain = nn.Parameter(torch.zeros(cfg.n_wavelengths, dtype=torch.float64))
        self.camera_offset = nn.Parameter(torch.zeros(cfg.n_wavelengths, dtype=torch.float64))
        self.register_buffer("zernike", zernike_modes(chip.grid), persistent=False)

    @classmethod
    def draw(cls, chip: LightGenChip, model: LabErrorModel) -> ChipErrors:
        """Hidden errors: every ``u`` from N(0, 1) (fiber loss ``|N(0, 1)|``: a passive fiber
        only loses), seeded by ``model.seed``, the :data:`FABRICATION_FAMILIES` by
        ``model.fabrication_seed`` when given (a new chip in the same setup); no gradients."""
        errors = cls(chip, model).redraw(FAMILIES, torch.Generator().manual_seed(model.seed))
        with torch.no_grad():
            errors.fiber_loss.abs_()
        if model.fabrication_seed is not None:  # a new chip in the same setup
            errors.redraw(
                FABRICATION_FAMILIES, torch.Generator().manual_seed(model.fabrication_seed)
            )
        errors.requires_grad_(False)
        return errors

    @torch.no_grad()
    def redraw(self, families: tuple[str, ...], generator: torch.Generator) -> ChipErrors:
        """Draw ``families`` afresh, every ``u`` from N(0, 1) with ``generator``, in place
        (the order of ``families`` is the order of the draws); returns ``self``."""
        for name in families:
            p = getattr(self, name)
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
        return self

    @torch.no_grad()
    def reset(self, families: tuple[str, ...]) -> ChipErrors:
        """Set ``families`` to the design (``u = 0``) in place; returns ``self``. A twin of a
        chip made again keeps the calibrated setup families and resets the
        :data:`FABRICATION_FAMILIES`, which were fitted to another chip."""
        for name in families:
            getattr(self, name).zero_()
        return self

    def value(self, family: str) -> torch.Tensor:
        """The values in SI units (m, rad, relative, dB) of ``family``."""
        return getattr(self, family) * self.model.scales()[family]

    def as_dict(self) -> dict[str, list]:
        """Every family's values in SI units, as nested lists (for JSON reports)."""
        return {f: self.value(f).detach().cpu().tolist() for f in FAMILIES}

    def sensor(self, raw_relative: torch.Tensor) -> torch.Tensor:
        """Camera sensor: relative irradiance ``(B, L, S, S)`` -> frame ``gain * I + offset``."""
        gain = torch.exp(self.value("camera_gain")).view(1, -1, 1, 1)
        offset = self.value("camera_offset").view(1, -1, 1, 1)
        return raw_relative * gain.to(raw_relative.dtype) + offset.to(raw_relative.dtype)


class _FabricatedLayer(nn.Module):
    """A metasurface layer as fabricated and mounted, with the errors of ``errors``[k]."""

    def __init__(self, layer: MetasurfaceLayer, errors: ChipErrors, k: int, aberrate: bool):
        super().__init__()
        self.layer = layer
        self._errors = [errors]  # a plain list: not a submodule of the chip
        self.k, self.aberrate = k, aberrate

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        layer, e, k = self.layer, self._errors[0], self.k
        grid = layer.grid
        h = layer.height_m()
        if e.levels is not None:
            h = quantize_height(h, e.levels, layer.max_height_m)
        if e.model.height_scale_std:
            h = h * (1 + e.value("height_scale")[k]).to(h.dtype)
        t = layer.transmission_of(h).to(field.dtype)
        if e.model.fabrication.rotation_std_rad:
            t = rotate(t, e.value("layer_rotation")[k], fill=1.0)
        if e.model.fabrication.shift_std_m:
            s = e.value("layer_shift")[k] / grid.pixel_pitch_m
            t = fourier_shift(t, s[0], s[1], fill=1.0).to(field.dtype)
        if self.aberrate and e.model.aberration_rms_rad:
            lam = grid.wavelength_tensor(dtype=torch.float64)
            opd = (e.value("aberration").view(-1, 1, 1) * e.zernike).sum(0)  # rad at max lambda
            psi = opd * max(grid.wavelengths_m) / lam
            t = t * torch.polar(torch.ones_like(psi), psi).to(device=t.device, dtype=t.dtype)
        if not e.model.fabrication.distance_std_m:
            return field * t
        dz = e.value("layer_distance")[k]
        return displace(displace(field, grid, dz) * t, grid, -dz)


@contextmanager
def installed(chip: LightGenChip, errors: ChipErrors) -> Iterator[LightGenChip]:
    """Within the ``with``, ``chip`` behaves as fabricated with ``errors`` (layers wrapped,
    fiber loss and phase offset); everything is restored on exit, also after an error."""
    wrapped = []
    fibers = chip.fibers
    saved_fiber = fibers.loss_db, fibers.phase_rad
    try:
        for k, (layers, i) in enumerate(chip_layers(chip)):
            layer = layers[i]
            layers[i] = _FabricatedLayer(layer, errors, k, aberrate=k == 0)
            wrapped.append((layers, i, layer))
        if errors.model.fiber_loss_std_db:
            fibers.loss_db = saved_fiber[0] + errors.value("fiber_loss").to(saved_fiber[0])
        if errors.model.fiber_phase_std_rad:
            fibers.phase_rad = saved_fiber[1] + errors.value("fiber_phase").to(saved_fiber[1])
        yield chip
    finally:
        for layers, i, layer in wrapped:
            layers[i] = layer
        fibers.loss_db, fibers.phase_rad = saved_fiber
