r"""Thin optical elements: phase masks, metasurface layers, amplitude masks, lenses, apertures.

A thin element multiplies the field by a transmission :math:`t(x, y; \lambda)`
(Goodman, *Introduction to Fourier Optics*, 3rd ed., §5.1):
:math:`U_{out} = t\,U_{in}`, with fields ``(B, L, H, W)`` complex and transmissions
``(L, H, W)`` (or ``(1, H, W)`` when the same for every wavelength).

Two layers, as everywhere in :mod:`lightgen.optics`:

* functional kernels -- :func:`apply_phase`, :func:`apply_transmission`,
  :func:`thin_lens_phase`, :func:`circular_aperture`, :func:`rectangular_aperture`,
  :func:`metasurface_transmission` -- testable against closed forms;
* ``nn.Module`` elements -- :class:`PhaseMask`, :class:`MetasurfaceLayer`,
  :class:`AmplitudeMask`, :class:`ThinLens`, :class:`CircularAperture`,
  :class:`RectangularAperture` -- holding trainable parameters or fixed
  non-persistent buffers. Each builds its ``(L, H, W)`` transmission once per
  forward and multiplies it onto the whole batch.

Which element is physical for what:

* :class:`MetasurfaceLayer` is a fabricated structure: ONE height map shared by all
  wavelengths, per-wavelength phase from the material's n(λ).
* :class:`PhaseMask` has an INDEPENDENT phase map per wavelength channel. That is only
  physical for a reprogrammable SLM addressed per wavelength (time- or
  space-multiplexed), or trivially when there is one wavelength.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from lightgen._checks import require_finite, require_positive
from lightgen.optics import fabrication
from lightgen.optics.grid import Grid
from lightgen.optics.materials import Material, get_material, phase_per_height, two_pi_height_m
from lightgen.optics.propagation import propagate

Edge = Literal["area", "hard"]
EDGES: tuple[str, ...] = ("area", "hard")
_SUPERSAMPLE = 16  # sub-samples per axis for the area coverage of circle edge pixels


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def _real_of(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


# --------------------------------------------------------------------- kernels
def apply_transmission(field: torch.Tensor, transmission: torch.Tensor) -> torch.Tensor:
    """``field * transmission``: field ``(B, L, H, W)``, transmission broadcastable
    (``(L, H, W)``, ``(1, H, W)`` or ``(H, W)``), cast to the field's dtype."""
    return field * transmission.to(field.dtype)


def apply_phase(field: torch.Tensor, phase_rad: torch.Tensor) -> torch.Tensor:
    """Multiply ``field`` ``(B, L, H, W)`` by ``exp(i phase_rad)``; phase broadcastable
    (``(L, H, W)`` or ``(H, W)``), real, radians; differentiable in both."""
    phase = phase_rad.to(device=field.device, dtype=_real_of(field.dtype))
    return field * torch.polar(torch.ones_like(phase), phase)


def metasurface_transmission(
    height_m: torch.Tensor,
    material: Material | str,
    wavelengths_m: tuple[float, ...],
    amplitude: torch.Tensor | None = None,
    ambient_index: float = 1.0,
) -> torch.Tensor:
    r"""Transmission of one height map at ``L`` wavelengths, ``(L, H, W)`` complex.

    :math:`t_\lambda = a\,\exp\!\big(i 2\pi (n(\lambda) - n_{amb}) h / \lambda\big)`
    (thin element, Goodman §5.1), ``a`` in [0, 1] an optional ``(H, W)`` amplitude.
    Complex128 when ``height_m`` is float64, else complex64.
    """
    k = phase_per_height(material, wavelengths_m, ambient_index, height_m.device, height_m.dtype)
    phase = k * height_m
    amp = torch.ones_like(phase) if amplitude is None else amplitude.expand_as(phase)
    return torch.polar(amp.to(phase.dtype), phase)


def min_lens_focal_length_m(grid: Grid, aperture_radius_m: float | None = None) -> float:
    r"""Shortest focal length a thin lens can have on ``grid`` without aliasing its phase.

    The lens phase :math:`-\pi r^2/(\lambda f)` has local spatial frequency
    :math:`x/(\lambda f)` along x. Nyquist sampling at pitch :math:`\Delta x` needs
    :math:`x_{max}/(\lambda f) \le 1/(2\Delta x)` per axis, i.e.
    :math:`|f| \ge 2\,\Delta x\,x_{max}/\lambda_{min}` (≈ :math:`N\Delta x^2/\lambda` for a
    full grid; Voelz, *Computational Fourier Optics*, 2011, §6.1). ``x_max`` is the
    largest |coordinate| on the grid, or, if smaller, the pupil radius plus one pitch
    (the farthest pixel centre an area-weighted pupil edge still lets light through).
    """
    dx = grid.pixel_pitch_m
    r_max = max(grid.shape[0] // 2, grid.shape[1] // 2) * dx
    if aperture_radius_m is not None:
        r_max = min(r_max, aperture_radius_m + dx)
    return 2 * dx * r_max / min(grid.wavelengths_m)


def thin_lens_phase(
    grid: Grid,
    focal_length_m: float,
    aperture_radius_m: float | None = None,
    device=None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Paraxial thin-lens phase :math:`\phi = -k (x^2 + y^2) / (2 f)`, shape ``(L, H, W)``.

    Goodman eq. 5-10, :math:`t_l = \exp(-i k r^2 / 2f)` with :math:`k = 2\pi/\lambda`;
    ``f < 0`` is a diverging lens. Raises ``ValueError`` when ``|f|`` is below
    :func:`min_lens_focal_length_m` (the phase would alias). Built in float64 (the phase
    reaches thousands of radians) and then cast.
    """
    f = require_finite("focal_length_m", focal_length_m, "Give the focal length in metres.")
    if f == 0:
        raise ValueError("focal_length_m=0 is not a lens; give a non-zero focal length in metres.")
    f_min = min_lens_focal_length_m(grid, aperture_radius_m)
    if abs(f) < f_min:
        raise ValueError(
            f"focal_length_m={f:g} is too short for this grid ({grid.shape[0]}x{grid.shape[1]} at "
            f"pitch {grid.pixel_pitch_m:g} m, shortest wavelength {min(grid.wavelengths_m):g} m): "
            f"the lens phase aliases at the aperture edge. Need |f| >= {f_min:g} m "
            "(rule |f| >= 2*dx*r_max/lambda), or use a finer pitch or a smaller aperture."
        )
    yy, xx = grid.meshgrid(device, torch.float64)
    lam = grid.wavelength_tensor(device, torch.float64)
    return (-math.pi * (xx**2 + yy**2) / (lam * f)).to(dtype)


def _check_edge(edge: str) -> None:
    if edge not in EDGES:
        raise ValueError(f"edge={edge!r} is unknown; choose one of {EDGES}.")


def circular_aperture(
    grid: Grid,
    radius_m: float,
    center_m: tuple[float, float] = (0.0, 0.0),
    edge: Edge = "area",
    device=None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Amplitude transmission ``(H, W)`` of a circular opening of radius ``radius_m``.

    ``edge="hard"``: 1 where the pixel centre is inside, else 0. ``edge="area"``
    (antialiased): the fraction of each pixel's area inside the circle, computed by
    16x16 sub-sampling of the pixels the edge crosses; then :math:`\sum t\,\Delta x^2`
    equals :math:`\pi r^2` to within the sub-sampling error. ``center_m = (y, x)``.
    """
    r = require_positive("radius_m", radius_m, "Give the aperture radius in metres.")
    _check_edge(edge)
    cy = require_finite("center_m[0]", center_m[0])
    cx = require_finite("center_m[1]", center_m[1])
    yy, xx = grid.meshgrid(device, torch.float64)
    dist = torch.hypot(yy - cy, xx - cx)
    if edge == "hard":
        return (dist <= r).to(dtype)
    dx = grid.pixel_pitch_m
    half_diag = dx / math.sqrt(2)
    t = (dist <= r - half_diag).to(torch.float64)
    on_edge = (dist > r - half_diag) & (dist < r + half_diag)
    if on_edge.any():
        off = (
            (torch.arange(_SUPERSAMPLE, device=device, dtype=torch.float64) + 0.5) / _SUPERSAMPLE
            - 0.5
        ) * dx
        sy = yy[on_edge][:, None, None] + off[None, :, None] - cy
        sx = xx[on_edge][:, None, None] + off[None, None, :] - cx
        t[on_edge] = (sy**2 + sx**2 <= r * r).to(torch.float64).mean(dim=(1, 2))
    return t.to(dtype)


def _interval_coverage(centres: torch.Tensor, pitch: float, lo: float, hi: float) -> torch.Tensor:
    """Fraction of each pixel [c - p/2, c + p/2] inside [lo, hi]."""
    overlap = torch.minimum(centres + pitch / 2, torch.full_like(centres, hi)) - torch.maximum(
        centres - pitch / 2, torch.full_like(centres, lo)
    )
    return overlap.clamp(0, pitch) / pitch


def _rect_size(size_m: Any, width_m: float | None, height_m: float | None) -> tuple[float, float]:
    """``(height_m, width_m)`` from ``size_m = (y, x)`` or the keywords, validated."""
    if size_m is not None:
        if width_m is not None or height_m is not None:
            raise ValueError(
                "give the opening either as size_m=(height_m, width_m) or as width_m= and "
                "height_m=, not both."
            )
        try:
            height_m, width_m = size_m
        except (TypeError, ValueError):
            raise ValueError(
                f"size_m={size_m!r} must be (height_m, width_m) in metres, [y, x] like center_m "
                "and Grid.shape; the old positional order rectangular_aperture(grid, width, "
                "height) is gone: pass size_m=(height, width) or width_m=..., height_m=...."
            ) from None
    elif width_m is None or height_m is None:
        raise ValueError("give the opening's size_m=(height_m, width_m) in metres.")
    h = require_positive("height_m", height_m, "Give the opening height (y) in metres.")
    w = require_positive("width_m", width_m, "Give the opening width (x) in metres.")
    return h, w


def rectangular_aperture(
    grid: Grid,
    size_m: tuple[float, float] | None = None,
    center_m: tuple[float, float] = (0.0, 0.0),
    edge: Edge = "area",
    device=None,
    dtype: torch.dtype = torch.float64,
    *,
    width_m: float | None = None,
    height_m: float | None = None,
) -> torch.Tensor:
    """Amplitude transmission ``(H, W)`` of a ``height_m`` (y) by ``width_m`` (x) opening.

    Every pair is ``[y, x]`` like ``Grid.shape`` and the fiber positions:
    ``size_m = (height_m, width_m)``, ``center_m = (y, x)``; or name the sides with the
    keywords ``width_m=`` / ``height_m=``.
    ``edge="area"``: exact pixel-area coverage (separable), so ``Σ t dx²`` equals
    ``width_m * height_m`` exactly while the opening lies inside the grid.
    ``edge="hard"``: pixel centres inside the closed rectangle.
    """
    h, w = _rect_size(size_m, width_m, height_m)
    _check_edge(edge)
    cy = require_finite("center_m[0]", center_m[0])
    cx = require_finite("center_m[1]", center_m[1])
    y, x = grid.axes(device, torch.float64)
    if edge == "hard":
        ty = ((y - cy).abs() <= h / 2).to(torch.float64)
        tx = ((x - cx).abs() <= w / 2).to(torch.float64)
    else:
        dx = grid.pixel_pitch_m
        ty = _interval_coverage(y, dx, cy - h / 2, cy + h / 2)
        tx = _interval_coverage(x, dx, cx - w / 2, cx + w / 2)
    return (ty[:, None] * tx[None, :]).to(dtype)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _open_unit(name: str, value: float) -> float:
    v = require_finite(name, value)
    if not 0 < v < 1:
        raise ValueError(
            f"{name}={value!r} must lie strictly between 0 and 1 (a sigmoid never reaches 0 or 1)."
        )
    return v


# --------------------------------------------------------------------- modules
class TransmissionElement(nn.Module):
    """Base class: a thin element ``U_out = t U_in`` on a fixed :class:`Grid`.

    Subclasses implement :meth:`transmission` (``(L, H, W)`` or ``(1, H, W)``
    complex). An optional :class:`~lightgen.optics.fabrication.Misalignment` perturbs
    the transmission in training mode (lateral shift, rotation) and displaces the
    element axially by ``dz``: the field propagates ``+dz`` (band-limited ASM) before
    the element and ``-dz`` after it, so the planes around it stay where they were.
    """

    def __init__(self, grid: Grid, misalignment: fabrication.Misalignment | None = None) -> None:
        super().__init__()
        if not isinstance(grid, Grid):
            raise ValueError(
                f"grid must be a lightgen.optics.grid.Grid, got {type(grid).__name__}."
            )
        self.grid = grid
        self.misalignment = misalignment

    def transmission(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transmission_for(self, field: torch.Tensor) -> torch.Tensor:
        return self.transmission()

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """``(B, L, H, W)`` complex field in, same shape out."""
        self.grid.check_field(field)
        t = self._transmission_for(field).to(device=field.device, dtype=field.dtype)
        if self.misalignment is None:
            return field * t
        p = self.misalignment.draw()
        t = self.misalignment.apply(t, self.grid, p)
        if p.distance_m == 0.0:
            return field * t
        field = propagate(field, self.grid, p.distance_m)
        return propagate(field * t, self.grid, -p.distance_m)


class PhaseMask(TransmissionElement):
    """SLM-like phase-only mask with an INDEPENDENT trainable phase per wavelength channel.

    ``t_λ = exp(i φ_λ(x, y))``, parameter ``phase_rad`` of shape ``(L, H, W)``. Valid
    only for a reprogrammable SLM addressed separately per wavelength channel (or for a
    single wavelength, ``L == 1``). A fixed fabricated structure cannot do this: use
    :class:`MetasurfaceLayer`, whose phases follow from one height map.

    Args:
        grid: sampling grid.
        init: ``"zeros"`` (flat phase) or ``"uniform"`` (i.i.d. U[0, 2π)).
        generator: ``torch.Generator`` for ``"uniform"``.
    """

    def __init__(
        self,
        grid: Grid,
        init: Literal["zeros", "uniform"] = "zeros",
        generator: torch.Generator | None = None,
        misalignment: fabrication.Misalignment | None = None,
    ) -> None:
        super().__init__(grid, misalignment)
        shape = (grid.n_wavelengths, *grid.shape)
        if init == "zeros":
            phase = torch.zeros(shape)
        elif init == "uniform":
            phase = 2 * math.pi * torch.rand(shape, generator=generator)
        else:
            raise ValueError(
                f"init={init!r} is unknown for PhaseMask; choose 'zeros' or 'uniform'."
            )
        self.phase_rad = nn.Parameter(phase)

    def transmission(self) -> torch.Tensor:
        """``exp(i phase_rad)``, ``(L, H, W)`` complex."""
        return torch.polar(torch.ones_like(self.phase_rad), self.phase_rad)


class AmplitudeMask(TransmissionElement):
    """Trainable passive absorbing mask, amplitude ``sigmoid(raw)`` in (0, 1).

    Passive: ``|t| < 1`` so it never adds power. One map for all wavelengths
    (``(1, H, W)``) unless ``per_wavelength`` (a spectral filter array, ``(L, H, W)``).

    Args:
        init: initial amplitude in (0, 1) everywhere, or ``"uniform"`` (U(0.05, 0.95)).
    """

    def __init__(
        self,
        grid: Grid,
        init: float | Literal["uniform"] = 0.5,
        per_wavelength: bool = False,
        generator: torch.Generator | None = None,
        misalignment: fabrication.Misalignment | None = None,
    ) -> None:
        super().__init__(grid, misalignment)
        shape = (grid.n_wavelengths if per_wavelength else 1, *grid.shape)
        if init == "uniform":
            a = 0.05 + 0.9 * torch.rand(shape, generator=generator)
            raw = torch.log(a / (1 - a))
        else:
            raw = torch.full(shape, _logit(_open_unit("init", init)))
        self.raw_amplitude = nn.Parameter(raw)

    def amplitude(self) -> torch.Tensor:
        """Amplitude transmission in (0, 1), ``(1 or L, H, W)``."""
        return torch.sigmoid(self.raw_amplitude)

    def transmission(self) -> torch.Tensor:
        return self.amplitude().to(_complex_of(self.raw_amplitude.dtype))


#: Raw height value at which the sigmoid rounds to exactly 0 / 1 in float32 and float64.
RAW_SATURATION = 1000.0


class MetasurfaceLayer(TransmissionElement):
    r"""A fabricated diffractive layer: ONE trainable height map for all wavelengths.

    :math:`h = h_{max}\,\sigma(\tilde r)` (bounded, hence fabricable), where
    :math:`\tilde r` is the raw parameter, optionally smoothed by a conic filter of
    radius ``filter_radius_m`` (suppresses features finer than that), then optionally
    quantised to etch depths. Per wavelength :math:`\phi_\lambda = 2\pi(n(\lambda) -
    n_{amb})h/\lambda` and :math:`t_\lambda = a\,e^{i\phi_\lambda}` with an optional
    trainable passive amplitude :math:`a = \sigma(\cdot)\in(0,1)`.

    Args:
        grid: sampling grid (its wavelengths set the channels).
        material: built-in name or :class:`~lightgen.optics.materials.Material`.
        max_height_m: tallest pillar/etch depth; default the 2π height at the longest
            wavelength, :math:`\lambda_{max}/(n(\lambda_{max}) - n_{amb})`.
        amplitude: add a trainable amplitude map (initialised to ``amplitude_init``).
        quantization: ``None``, a number of levels (STE quantiser), or a callable
            ``q(height_m, max_height_m)`` such as
            :class:`~lightgen.optics.fabrication.HeightQuantizer`.
        ambient_index: index of the surrounding medium.
        init: ``"flat"`` (every pixel at ``max_height_m / 2``: a uniform phase plate, the
            sigmoid's steepest point) or ``"uniform"`` (heights i.i.d. U(0.02, 0.98)·h_max).
        filter_radius_m: conic filter radius in metres (``None``: no filter).
        pixel_samples: grid samples per pixel side (default 1). The layer has
            ``(H / pixel_samples) x (W / pixel_samples)`` pixels of one height each, at pitch
            ``pixel_samples * grid.pixel_pitch_m``; :meth:`height_m` returns that pixel map
            and :meth:`transmission` its ``pixel_samples x pixel_samples`` blocks on the grid,
            so the light that height steps between pixels diffract is resolved.
        misalignment: optional :class:`~lightgen.optics.fabrication.Misalignment`.
        generator: ``torch.Generator`` for ``"uniform"`` init.
    """

    def __init__(
        self,
        grid: Grid,
        material: Material | str = "fused_silica",
        max_height_m: float | None = None,
        amplitude: bool = False,
        quantization: int | Callable[[torch.Tensor, float], torch.Tensor] | None = None,
        *,
        ambient_index: float = 1.0,
        init: Literal["flat", "uniform"] = "flat",
        amplitude_init: float = 0.9,
        filter_radius_m: float | None = None,
        pixel_samples: int = 1,
        misalignment: fabrication.Misalignment | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(grid, misalignment)
        if (
            isinstance(pixel_samples, bool)
            or not isinstance(pixel_samples, int)
            or pixel_samples < 1
        ):
            raise ValueError(
                f"pixel_samples={pixel_samples!r}: give a whole number >= 1 of grid samples per "
                "pixel side."
            )
        if any(n % pixel_samples for n in grid.shape):
            raise ValueError(
                f"pixel_samples={pixel_samples} does not divide the grid {tuple(grid.shape)}; "
                "every pixel is pixel_samples x pixel_samples samples: pick a grid that is a "
                "multiple of it."
            )
        self.pixel_samples = pixel_samples
        shape = tuple(n // pixel_samples for n in grid.shape)
        self.material = get_material(material)
        self.ambient_index = require_positive("ambient_index", ambient_index, "Air is 1.0.")
        if max_height_m is None:
            max_height_m = two_pi_height_m(self.material, max(grid.wavelengths_m), ambient_index)
        self.max_height_m = require_positive(
            "max_height_m", max_height_m, "Give the tallest fabricable height in metres."
        )
        # (L, 1, 1) rad/m; also validates every wavelength against the material's range
        self.register_buffer(
            "phase_per_height",
            phase_per_height(self.material, grid.wavelengths_m, ambient_index),
            persistent=False,
        )
        if init == "flat":
            raw = torch.zeros(shape)
        elif init == "uniform":
            u = 0.02 + 0.96 * torch.rand(shape, generator=generator)
            raw = torch.log(u / (1 - u))
        else:
            raise ValueError(
                f"init={init!r} is unknown for MetasurfaceLayer; choose 'flat' or 'uniform'."
            )
        self.raw_height = nn.Parameter(raw)
        self.raw_amplitude = (
            nn.Parameter(torch.full(shape, _logit(_open_unit("amplitude_init", amplitude_init))))
            if amplitude
            else None
        )
        if quantization is None or callable(quantization):
            self.quantizer = quantization
        else:
            self.quantizer = fabrication.HeightQuantizer(int(quantization))
        if filter_radius_m is None:
            self.filter_kernel = None
        else:
            kernel = fabrication.conic_filter_kernel(self.pixel_pitch_m, filter_radius_m)
            self.register_buffer("filter_kernel", kernel, persistent=False)

    @property
    def pixel_pitch_m(self) -> float:
        """Pitch of the layer's pixels (its diffractive neurons) in metres."""
        return self.pixel_samples * self.grid.pixel_pitch_m

    def on_grid(self, pixel_map: torch.Tensor) -> torch.Tensor:
        """A per-pixel map ``(..., H / pixel_samples, W / pixel_samples)`` as the grid sees
        it: each pixel a ``pixel_samples x pixel_samples`` block of its value."""
        k = self.pixel_samples
        if k == 1:
            return pixel_map
        return pixel_map.repeat_interleave(k, -2).repeat_interleave(k, -1)

    @classmethod
    def from_height_m(cls, grid: Grid, height_m: Any, **kwargs: Any) -> MetasurfaceLayer:
        """A layer built with ``kwargs`` (as the constructor) showing the height map
        ``height_m`` ``(H, W)`` in metres; see :meth:`set_height_m`."""
        layer = cls(grid, **kwargs)
        layer.set_height_m(height_m)
        return layer

    @torch.no_grad()
    def set_height_m(self, height_m: Any) -> None:
        r"""Make :meth:`height_m` return ``height_m`` ``(H, W)`` (metres, in
        ``[0, max_height_m]``), before any filter or quantiser.

        Sets the raw parameter to :math:`\mathrm{logit}(h/h_{max})` in float64. Heights of
        exactly 0 and ``max_height_m`` come out exactly (their raw values sit at
        ``-/+ RAW_SATURATION``, where the sigmoid rounds to 0 and 1 in float32 and
        float64); other heights to within rounding. Pixels at exactly 0 or the maximum
        sit on the sigmoid's flat tails and no longer train.
        """
        h = torch.as_tensor(height_m, dtype=torch.float64).detach().cpu()
        if h.shape != self.raw_height.shape:
            raise ValueError(
                f"height_m has shape {tuple(h.shape)}; this layer has "
                f"{tuple(self.raw_height.shape)} pixels."
            )
        if not torch.isfinite(h).all() or h.min() < 0 or h.max() > self.max_height_m:
            raise ValueError(
                f"height_m must be finite and in [0, max_height_m={self.max_height_m:g}] m, got "
                f"[{h.min().item():g}, {h.max().item():g}]; clip it or build the layer with a "
                "larger max_height_m."
            )
        u = h / self.max_height_m
        raw = (torch.log(u) - torch.log1p(-u)).clamp(-RAW_SATURATION, RAW_SATURATION)
        self.raw_height.copy_(raw.to(self.raw_height))

    def height_m(self) -> torch.Tensor:
        """Height map in metres, one value per pixel (``(H, W)`` on a grid of one sample per
        pixel), in ``[0, max_height_m]`` (quantised if set)."""
        raw = self.raw_height
        if self.filter_kernel is not None:
            raw = fabrication.conic_filter(raw, self.filter_kernel)
        h = self.max_height_m * torch.sigmoid(raw)
        if self.quantizer is not None:
            h = self.quantizer(h, self.max_height_m)
        return h

    def amplitude(self) -> torch.Tensor | None:
        """Amplitude map in (0, 1), one value per pixel, or ``None`` for a phase-only layer."""
        return None if self.raw_amplitude is None else torch.sigmoid(self.raw_amplitude)

    def phase_rad(self, height_m: torch.Tensor | None = None) -> torch.Tensor:
        """Per-wavelength phase delay on the grid, ``(L, H, W)`` radians, of the layer's
        heights or of the per-pixel heights ``height_m``."""
        h = self.on_grid(self.height_m() if height_m is None else height_m)
        return self.phase_per_height.to(h.dtype) * h

    def transmission(self) -> torch.Tensor:
        """``a exp(i φ_λ)``, ``(L, H, W)`` complex (complex128 if the parameters are float64)."""
        return self.transmission_of(self.height_m())

    def transmission_of(self, height_m: torch.Tensor) -> torch.Tensor:
        """The transmission on the grid of this layer's amplitude with the per-pixel heights
        ``height_m`` (e.g. its own heights as fabricated, with errors), ``(L, H, W)``."""
        phase = self.phase_rad(height_m)
        amp = self.amplitude()
        amp = torch.ones_like(phase) if amp is None else self.on_grid(amp).expand_as(phase)
        return torch.polar(amp, phase)

    def extra_repr(self) -> str:
        return (
            f"material={self.material.name}, max_height_m={self.max_height_m:g}, "
            f"amplitude={self.raw_amplitude is not None}, grid={self.grid.shape}, "
            f"pixel_samples={self.pixel_samples}, "
            f"wavelengths_m={self.grid.wavelengths_m}"
        )


class _FixedElement(TransmissionElement):
    """A fixed transmission kept as a non-persistent complex buffer, rebuilt in float64
    and cached when a field of another dtype/device arrives (as FreeSpace does)."""

    def _register_fixed(self) -> None:
        """Build the complex64 buffer; subclasses call this once their fields are set."""
        t = self._build(None, torch.complex64)
        self.register_buffer("fixed_transmission", t, persistent=False)

    def _build(self, device, dtype: torch.dtype) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def transmission(self) -> torch.Tensor:
        return self.fixed_transmission

    def _transmission_for(self, field: torch.Tensor) -> torch.Tensor:
        t = self.fixed_transmission
        if t.device != field.device or t.dtype != field.dtype:
            t = self._build(field.device, field.dtype)
            self.fixed_transmission = t
        return t


class ThinLens(_FixedElement):
    r"""Paraxial thin lens :math:`t = \exp(-i k (x^2+y^2)/(2f))` per wavelength (Goodman eq. 5-10).

    Optional circular pupil of radius ``aperture_radius_m`` (area-weighted edge).
    Raises ``ValueError`` if ``|focal_length_m|`` is below
    :func:`min_lens_focal_length_m` (rule ``|f| >= 2 dx r_max / λ_min``).
    """

    def __init__(
        self,
        grid: Grid,
        focal_length_m: float,
        aperture_radius_m: float | None = None,
        misalignment: fabrication.Misalignment | None = None,
    ) -> None:
        super().__init__(grid, misalignment)
        self.focal_length_m = require_finite("focal_length_m", focal_length_m)
        if aperture_radius_m is not None:
            aperture_radius_m = require_positive("aperture_radius_m", aperture_radius_m)
        self.aperture_radius_m = aperture_radius_m
        self._register_fixed()

    def _build(self, device, dtype: torch.dtype) -> torch.Tensor:
        phase = thin_lens_phase(self.grid, self.focal_length_m, self.aperture_radius_m, device)
        amp = torch.ones_like(phase)
        if self.aperture_radius_m is not None:
            amp = amp * circular_aperture(self.grid, self.aperture_radius_m, device=device)
        return torch.polar(amp, phase).to(dtype)

    def extra_repr(self) -> str:
        return f"focal_length_m={self.focal_length_m:g}, aperture_radius_m={self.aperture_radius_m}"


class CircularAperture(_FixedElement):
    """Fixed circular opening (see :func:`circular_aperture`), transmission ``(1, H, W)``."""

    def __init__(
        self,
        grid: Grid,
        radius_m: float,
        center_m: tuple[float, float] = (0.0, 0.0),
        edge: Edge = "area",
        misalignment: fabrication.Misalignment | None = None,
    ) -> None:
        super().__init__(grid, misalignment)
        self.radius_m, self.center_m, self.edge = radius_m, tuple(center_m), edge
        self._register_fixed()

    def _build(self, device, dtype: torch.dtype) -> torch.Tensor:
        t = circular_aperture(self.grid, self.radius_m, self.center_m, self.edge, device)
        return t[None].to(dtype)

    def extra_repr(self) -> str:
        return f"radius_m={self.radius_m:g}, center_m={self.center_m}, edge={self.edge}"


class RectangularAperture(_FixedElement):
    """Fixed rectangular opening (see :func:`rectangular_aperture`: ``size_m = (height_m,
    width_m)``, ``[y, x]``, or the keywords), transmission ``(1, H, W)``."""

    def __init__(
        self,
        grid: Grid,
        size_m: tuple[float, float] | None = None,
        center_m: tuple[float, float] = (0.0, 0.0),
        edge: Edge = "area",
        misalignment: fabrication.Misalignment | None = None,
        *,
        width_m: float | None = None,
        height_m: float | None = None,
    ) -> None:
        super().__init__(grid, misalignment)
        self.height_m, self.width_m = _rect_size(size_m, width_m, height_m)
        self.center_m, self.edge = tuple(center_m), edge
        self._register_fixed()

    def _build(self, device, dtype: torch.dtype) -> torch.Tensor:
        t = rectangular_aperture(
            self.grid, (self.height_m, self.width_m), self.center_m, self.edge, device
        )
        return t[None].to(dtype)

    def extra_repr(self) -> str:
        return (
            f"width_m={self.width_m:g}, height_m={self.height_m:g}, center_m={self.center_m}, "
            f"edge={self.edge}"
        )
