r"""Where electronics meet the light: the laser, the input modulator (SLM / DMD), the camera.

Two layers, as everywhere in lightgen:

* pure kernels -- :func:`normalize_power`, :func:`quantize_ste`, :func:`aperture_weights`,
  :func:`bayer_matrix`, :func:`pixel_overlap_matrix`, :func:`photon_count`,
  :func:`shot_noise`, :func:`adc` -- each tested against a closed form;
* thin modules -- :class:`Laser`, :class:`SLM`, :class:`DMD`, :class:`Camera` -- that
  validate their settings once and hold fixed kernels as non-persistent buffers.

Units: fields are complex ``(B, L, H, W)`` tensors in :math:`\sqrt{W/m^2}`, so
:math:`|E|^2` is an irradiance in W/m^2 and ``lightgen.optics.grid.power`` is in watts.

Placement convention (shared with the FFT-centred :class:`~lightgen.optics.grid.Grid`):
a device whose active area spans ``S`` grid samples starts at sample ``H//2 - S//2``,
i.e. its sample ``S//2`` sits on the optical axis (grid sample ``H//2``, ``x = 0``).
For even ``S`` the geometric centre is therefore half a sample towards ``-x``.

Quantisers use the straight-through estimator (Bengio, Léonard & Courville 2013,
arXiv:1308.3432): the forward pass rounds, the backward pass is the identity, so a
quantised device can sit inside a trained optical path. See ``docs/devices.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightgen._checks import (
    require_finite,
    require_fraction,
    require_int_range,
    require_positive,
)
from lightgen.optics.grid import Grid, power

PLANCK_J_S = 6.62607015e-34  # exact (SI 2019)
SPEED_OF_LIGHT_M_PER_S = 299_792_458.0  # exact (SI 2019)

# Relative tolerance when deciding that one pitch is a whole multiple of another:
# pitches typed in metres (8e-6 / 2e-6) are not exact binary fractions.
_PITCH_RTOL = 1e-6


# --------------------------------------------------------------------------- helpers


def _per_wavelength(
    name: str, value: float | Sequence[float], grid: Grid, fix: str, lo_open: float = 0.0
) -> tuple[float, ...]:
    """A scalar or one value per wavelength channel -> tuple of length L, all > lo_open."""
    try:
        vals = tuple(value)
    except TypeError:
        vals = (value,)
    if len(vals) == 1:
        vals = vals * grid.n_wavelengths
    if len(vals) != grid.n_wavelengths:
        raise ValueError(
            f"{name} has {len(vals)} values but the grid has {grid.n_wavelengths} wavelength "
            f"channel(s) {grid.wavelengths_m} m. Pass one value, or one per wavelength."
        )
    out = tuple(
        require_positive(f"{name}[{i}]" if len(vals) > 1 else name, v, fix)
        for i, v in enumerate(vals)
    )
    return out


def _require_nonnegative(name: str, value: float, fix: str = "") -> float:
    v = require_finite(name, value, fix)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}. {fix}".strip())
    return v


def _whole_pitch_multiple(name: str, pitch_m: float | None, grid: Grid) -> int:
    """Samples per device pixel ``k = pitch / grid pitch``; raise unless k is a whole number."""
    dx = grid.pixel_pitch_m
    if pitch_m is None:
        return 1
    p = require_positive(name, pitch_m, "Give the device pixel pitch in metres, e.g. 8e-6.")
    ratio = p / dx
    if ratio < 1 - _PITCH_RTOL:
        raise ValueError(
            f"{name}={p:g} m is smaller than the grid pixel_pitch_m={dx:g} m; a device pixel "
            f"must span at least one grid sample. Build the Grid with pixel_pitch_m <= {p:g} "
            f"(e.g. {p:g} / an integer) or use a larger {name}."
        )
    k = round(ratio)
    if abs(ratio - k) > _PITCH_RTOL * ratio:
        lo, hi = math.floor(ratio) * dx, math.ceil(ratio) * dx
        raise ValueError(
            f"{name}={p:g} m is not a whole multiple of the grid pixel_pitch_m={dx:g} m "
            f"(ratio {ratio:.6g}). Use {name}={lo:g} or {hi:g}, or build the Grid with "
            f"pixel_pitch_m={p:g} / n for an integer n."
        )
    return k


def _check_images(images: torch.Tensor, grid: Grid, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(images).__name__}.")
    if images.ndim != 4:
        raise ValueError(
            f"{name} has shape {tuple(images.shape)}; expected (batch, channels, H, W). "
            "Add missing axes, e.g. images[:, None] for (batch, H, W)."
        )
    if not images.is_floating_point():
        raise ValueError(
            f"{name} has dtype {images.dtype}; gray levels are floats in [0, 1]. "
            "Convert with images.float() / 255 for 8-bit data."
        )
    if images.shape[1] not in (1, grid.n_wavelengths):
        raise ValueError(
            f"{name} has {images.shape[1]} channels; expected 1 (same image at every wavelength) "
            f"or {grid.n_wavelengths} (one per wavelength {grid.wavelengths_m} m)."
        )
    return images


def _complex_dtype(real_dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if real_dtype == torch.float64 else torch.complex64


def _straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward value ``y``, gradient of ``x`` (straight-through estimator)."""
    return x + (y - x).detach()


# --------------------------------------------------------------------------- laser


def normalize_power(
    field: torch.Tensor, grid: Grid, power_w: float | Sequence[float] | torch.Tensor
) -> torch.Tensor:
    r"""Scale a field so each (batch, wavelength) channel carries ``power_w`` watts.

    :math:`E' = E\sqrt{P/P_0}` with :math:`P_0=\sum|E|^2\Delta x^2` (see
    :func:`lightgen.optics.grid.power`). ``power_w`` is a scalar, one value per wavelength,
    or a tensor broadcastable to ``(B, L)``. Channels that carry no light stay zero
    (no NaN). Differentiable.

    Args:
        field: complex ``(B, L, H, W)`` on ``grid``.
        power_w: target power per channel in watts.
    Returns:
        complex ``(B, L, H, W)``, same dtype and device.
    """
    grid.check_field(field)
    if isinstance(power_w, torch.Tensor):
        target = power_w.to(device=field.device, dtype=field.real.dtype)
    else:
        vals = _per_wavelength("power_w", power_w, grid, "Give the optical power in watts.")
        target = torch.tensor(vals, device=field.device, dtype=field.real.dtype)
    p0 = power(field, grid)
    lit = p0 > 0
    scale = torch.where(lit, torch.sqrt(target / torch.where(lit, p0, torch.ones_like(p0))), 0.0)
    return field * scale[..., None, None]


class Laser(nn.Module):
    """A CW laser of fixed output power per wavelength channel.

    ``laser(field)`` rescales any field to the laser power (:func:`normalize_power`);
    ``laser.plane_wave(batch)`` is a uniform, flat-phase beam filling the grid, to use
    as SLM illumination.

    Args:
        grid: sampling grid.
        power_w: power in watts, one value or one per wavelength.
    """

    def __init__(self, grid: Grid, power_w: float | Sequence[float] = 1e-3) -> None:
        super().__init__()
        self.grid = grid
        self.power_w = _per_wavelength("power_w", power_w, grid, "Give the laser power in watts.")

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        return normalize_power(field, self.grid, self.power_w)

    def plane_wave(
        self, batch_size: int = 1, device=None, dtype: torch.dtype = torch.complex64
    ) -> torch.Tensor:
        r"""Uniform field ``(batch_size, L, H, W)``, :math:`|E|^2 = P / (H W \Delta x^2)`."""
        b = require_int_range("batch_size", batch_size, 1)
        ones = torch.ones(b, self.grid.n_wavelengths, *self.grid.shape, device=device, dtype=dtype)
        return self(ones)

    def extra_repr(self) -> str:
        return f"power_w={self.power_w}, grid={self.grid.shape}"


# --------------------------------------------------------------------------- input modulators


def quantize_ste(values: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Clamp to [0, 1] and round to ``n_levels`` equally spaced levels ``m / (n_levels - 1)``.

    Straight-through: the gradient is the identity inside [0, 1] and zero outside (the
    clamp), so quantisation does not block training.
    """
    n = require_int_range("n_levels", n_levels, 2, fix="A quantiser needs at least two levels.")
    x = values.clamp(0.0, 1.0)
    return _straight_through(x, torch.round(x * (n - 1)) / (n - 1))


def aperture_weights(samples_per_pixel: int, fill_factor: float, dtype=torch.float64, device=None):
    r"""1-D transmittance of one device pixel sampled on ``samples_per_pixel`` grid samples.

    The active width is ``fill_factor * k`` samples, centred in the pixel; sample ``j``
    (covering ``[j, j+1)``) gets the fraction of it that is active,
    :math:`w_j=|[j,j+1)\cap[k(1-f)/2,\,k(1+f)/2)|`. The 2-D pixel is the separable square
    aperture :math:`w_y w_x`, so its *mean* transmittance (the zeroth diffraction order)
    is exactly :math:`f^2`. When the dead border is a whole number of samples
    (``k(1-f)/2`` an integer) every ``w_j`` is 0 or 1 and the transmitted power is exactly
    :math:`f^2` too; otherwise edge samples carry their coverage as amplitude and the power
    fraction :math:`(\sum_j w_j^2/k)^2` is slightly below :math:`f^2`.
    """
    k = require_int_range("samples_per_pixel", samples_per_pixel, 1)
    f = require_fraction("fill_factor", fill_factor, "It is the active width / pixel pitch.")
    j = torch.arange(k, dtype=dtype, device=device)
    lo, hi = k * (1 - f) / 2, k * (1 + f) / 2
    return torch.clamp(torch.minimum(j + 1, torch.full_like(j, hi)) - torch.clamp(j, min=lo), 0.0)


def bayer_matrix(n: int = 8) -> torch.Tensor:
    """Bayer ordered-dither index matrix ``(n, n)``, entries a permutation of ``0 .. n^2 - 1``.

    Built by the recursion :math:`B_{2n}=[[4B_n, 4B_n+2], [4B_n+3, 4B_n+1]]`
    (Bayer 1973, IEEE ICC, "An optimum method for two-level rendition of continuous-tone
    pictures"). ``n`` must be a power of two.
    """
    n = require_int_range("n", n, 1)
    if n & (n - 1):
        raise ValueError(f"n={n} must be a power of two (2, 4, 8, 16).")
    b = torch.zeros(1, 1, dtype=torch.int64)
    while b.shape[0] < n:
        b = torch.cat([torch.cat([4 * b, 4 * b + 2], 1), torch.cat([4 * b + 3, 4 * b + 1], 1)], 0)
    return b


def _place_on_grid(
    pixel_values: torch.Tensor, k: int, fill_factor: float, grid: Grid, name: str
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Upsample ``(B, C, h, w)`` device-pixel values to ``k x k`` samples each, return the
    aperture mask ``(h*k, w*k)`` and the zero padding that centres the block on the grid."""
    h, w = pixel_values.shape[-2:]
    sh, sw = h * k, w * k
    gh, gw = grid.shape
    if sh > gh or sw > gw:
        raise ValueError(
            f"{name} of {h}x{w} device pixels covers {sh}x{sw} grid samples ({k} per pixel) "
            f"but the grid is only {gh}x{gw}. Use a Grid of at least {sh}x{sw} samples, "
            "or resize the images / use a smaller device pixel pitch."
        )
    wk = aperture_weights(k, fill_factor, dtype=pixel_values.dtype, device=pixel_values.device)
    mask = wk.repeat(h)[:, None] * wk.repeat(w)[None, :]
    top, left = gh // 2 - sh // 2, gw // 2 - sw // 2
    return mask, (left, gw - left - sw, top, gh - top - sh)


class SLM(nn.Module):
    r"""A pixelated spatial light modulator driven by gray-level images.

    ``slm(images, illumination=None)`` maps images ``(B, C, h, w)`` with gray levels in
    [0, 1] (``C`` = 1, or one per wavelength) to a complex field ``(B, L, H, W)`` on
    ``grid``. Each image pixel drives one SLM pixel; each SLM pixel covers ``k x k`` grid
    samples (``k = slm_pixel_pitch_m / grid.pixel_pitch_m``, a whole number). The SLM
    aperture is placed with the module's centring convention; outside it the field is 0.

    Gray levels are clamped to [0, 1] and quantised to ``2**bit_depth`` drive levels with a
    straight-through gradient:

    * ``mode='phase'``: :math:`E = w\,e^{i\phi}`, :math:`\phi = \phi_{range}\,m/2^b`,
      :math:`m=\min(\mathrm{round}(g\,2^b),\,2^b-1)`: the :math:`2^b` levels split
      ``phase_range_rad`` evenly (the usual 2pi-over-256 calibration; ``g = 1`` gives the top
      level). ``phase_range_rad`` may differ per wavelength (an LCoS retardance scales ~1/lambda).
    * ``mode='amplitude'``: :math:`|E| = w\,m/(2^b-1)`, :math:`m=\mathrm{round}(g(2^b-1))`:
      gray is **proportional to field amplitude** (transmitted power ~ gray^2), both 0 and
      full transmission reachable. For an intensity-linear display pass ``sqrt(gray)``.

    ``w`` is the pixel aperture (:func:`aperture_weights`): ``fill_factor`` is the
    *linear* fraction of the pitch that is active along each axis, so the active *area* is
    ``fill_factor**2`` and a dead border of zero amplitude surrounds each pixel (datasheet
    area fill factors convert as ``fill_factor = sqrt(area_fill)``). The border is only
    resolved when ``k > 1``; with ``k = 1`` the fill factor is a uniform attenuation
    ``fill_factor**2`` of the amplitude (right zeroth order, no pixel-grating orders).

    ``illumination`` (complex, broadcastable to ``(B, L, H, W)``) is the incident beam, e.g.
    :meth:`Laser.plane_wave`; default a unit plane wave (:math:`|E|=1\ \sqrt{W/m^2}`).
    Output dtype: complex128 for float64 images, else complex64 (promoted with the
    illumination's dtype). Model after Goodman, *Introduction to Fourier Optics* (3rd ed.)
    sec. 7.2.
    """

    def __init__(
        self,
        grid: Grid,
        mode: str = "phase",
        bit_depth: int = 8,
        slm_pixel_pitch_m: float | None = None,
        fill_factor: float = 1.0,
        phase_range_rad: float | Sequence[float] = 2 * math.pi,
    ) -> None:
        super().__init__()
        if mode not in ("phase", "amplitude"):
            raise ValueError(f"mode={mode!r} is unknown; choose 'phase' or 'amplitude'.")
        self.grid = grid
        self.mode = mode
        self.bit_depth = require_int_range(
            "bit_depth", bit_depth, 1, 16, "Typical SLMs have 8 to 12 bits."
        )
        self.samples_per_pixel = _whole_pitch_multiple("slm_pixel_pitch_m", slm_pixel_pitch_m, grid)
        self.fill_factor = require_fraction(
            "fill_factor",
            fill_factor,
            "It is the active width / pixel pitch (1.0 = no dead border).",
        )
        self.phase_range_rad = _per_wavelength(
            "phase_range_rad", phase_range_rad, grid, "Give the phase stroke in radians, e.g. 2*pi."
        )

    @property
    def slm_pixel_pitch_m(self) -> float:
        return self.samples_per_pixel * self.grid.pixel_pitch_m

    @property
    def n_levels(self) -> int:
        return 2**self.bit_depth

    @property
    def aperture_power_fraction(self) -> float:
        """Fraction of the incident power one fully-on pixel transmits on this grid sampling
        (``fill_factor**2`` when the dead border is a whole number of samples)."""
        w = aperture_weights(self.samples_per_pixel, self.fill_factor)
        return float((w.square().sum() / self.samples_per_pixel) ** 2)

    def quantize(self, images: torch.Tensor) -> torch.Tensor:
        """Gray images -> quantised modulation values (phase in rad, or amplitude), STE."""
        n = self.n_levels
        g = images.clamp(0.0, 1.0)
        if self.mode == "amplitude":
            return _straight_through(g, torch.round(g * (n - 1)) / (n - 1))
        levels = torch.clamp(torch.round(g * n), max=n - 1) / n
        q = _straight_through(g, levels)
        rng = torch.tensor(self.phase_range_rad, dtype=g.dtype, device=g.device).view(-1, 1, 1)
        return q * rng

    def forward(
        self, images: torch.Tensor, illumination: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_images(images, self.grid)
        if self.mode == "phase" and images.shape[1] == 1 and self.grid.n_wavelengths > 1:
            images = images.expand(-1, self.grid.n_wavelengths, -1, -1)
        values = self.quantize(images)
        up, mask, pad = _upsampled(values, self.samples_per_pixel, self.fill_factor, self.grid)
        if self.mode == "phase":
            field = torch.polar(F.pad(mask.expand_as(up), pad), F.pad(up, pad))
            return _illuminate(field, illumination, self.grid)
        return _illuminate(_amplitude_field(F.pad(up * mask, pad)), illumination, self.grid)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode}, bit_depth={self.bit_depth}, "
            f"slm_pixel_pitch_m={self.slm_pixel_pitch_m:g}, "
            f"fill_factor={self.fill_factor}, grid={self.grid.shape}"
        )


def _upsampled(
    values: torch.Tensor, k: int, fill_factor: float, grid: Grid
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int, int, int]]:
    """Device-pixel ``values`` ``(B, C, h, w)`` as ``k x k`` samples each, with the aperture
    mask and the centring padding of :func:`_place_on_grid`."""
    mask, pad = _place_on_grid(values, k, fill_factor, grid, "images")
    return values.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1), mask, pad


def _amplitude_field(amp: torch.Tensor) -> torch.Tensor:
    """A real amplitude as a complex field (zero phase)."""
    return torch.complex(amp, torch.zeros_like(amp))


def _illuminate(field: torch.Tensor, illumination: torch.Tensor | None, grid: Grid) -> torch.Tensor:
    """The modulator's ``field`` on every wavelength channel of ``grid`` (a one-channel
    pattern is shared), times ``illumination`` if given."""
    if field.shape[1] != grid.n_wavelengths:
        field = field.expand(-1, grid.n_wavelengths, -1, -1)
    if illumination is None:
        return field
    if not isinstance(illumination, torch.Tensor) or not illumination.is_complex():
        raise ValueError(
            "illumination must be a complex tensor broadcastable to (B, L, H, W), e.g. "
            "Laser(grid, power_w).plane_wave()."
        )
    try:
        out = field * illumination.to(field.device)
    except RuntimeError:
        raise ValueError(
            f"illumination has shape {tuple(illumination.shape)}, not broadcastable to the "
            f"modulator field {tuple(field.shape)}. Use shape (1 or B, {grid.n_wavelengths}, "
            f"{grid.shape[0]}, {grid.shape[1]})."
        ) from None
    return grid.check_field(out, "illuminated field")


class DMD(nn.Module):
    r"""A digital micromirror device: binary amplitude (mirror on = 1, off = 0).

    ``dmd(images, illumination=None)`` -> complex ``(B, L, H, W)``; pixel layout, centring,
    ``fill_factor`` and ``illumination`` as in :class:`SLM`. Binarisation:

    * ``dither=False``: :math:`a = [g > \text{threshold}]`;
    * ``dither=True``: ordered dithering, :math:`a = [g > (B_{i \bmod 8,\,j \bmod 8}+1/2)/64]`
      with the 8x8 :func:`bayer_matrix` indexed by DMD pixel; a uniform gray ``m/64`` turns on
      exactly ``m`` mirrors per 8x8 tile, so local mean transmittance follows gray level
      (``threshold`` is then unused).

    Straight-through gradient (identity inside [0, 1]), so a DMD can sit in a trained path.
    The tilt-mirror blazed-grating diffraction of a real DMD is not modelled: the output is
    the field in the plane of the mirror array as seen along the "on" direction.
    """

    def __init__(
        self,
        grid: Grid,
        dmd_pixel_pitch_m: float | None = None,
        threshold: float = 0.5,
        dither: bool = False,
        fill_factor: float = 1.0,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.samples_per_pixel = _whole_pitch_multiple("dmd_pixel_pitch_m", dmd_pixel_pitch_m, grid)
        t = require_finite("threshold", threshold, "Give a gray level in [0, 1).")
        if not 0 <= t < 1:
            raise ValueError(
                f"threshold must be in [0, 1), got {threshold!r}; 0.5 is the usual choice."
            )
        self.threshold = t
        self.dither = bool(dither)
        self.fill_factor = require_fraction(
            "fill_factor", fill_factor, "It is the mirror width / pixel pitch (1.0 = no gap)."
        )
        self.register_buffer("bayer", bayer_matrix(8), persistent=False)

    @property
    def dmd_pixel_pitch_m(self) -> float:
        return self.samples_per_pixel * self.grid.pixel_pitch_m

    def binarize(self, images: torch.Tensor) -> torch.Tensor:
        """Gray ``(B, C, h, w)`` -> mirror states in {0, 1}, straight-through gradient."""
        g = images.clamp(0.0, 1.0)
        if self.dither:
            h, w = g.shape[-2:]
            n = self.bayer.shape[0]
            tile = (self.bayer.to(g.device, g.dtype) + 0.5) / (n * n)
            thr = tile.repeat(math.ceil(h / n), math.ceil(w / n))[:h, :w]
        else:
            thr = torch.tensor(self.threshold, dtype=g.dtype, device=g.device)
        return _straight_through(g, (g > thr).to(g.dtype))

    def forward(
        self, images: torch.Tensor, illumination: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_images(images, self.grid)
        states = self.binarize(images)
        up, mask, pad = _upsampled(states, self.samples_per_pixel, self.fill_factor, self.grid)
        return _illuminate(_amplitude_field(F.pad(up * mask, pad)), illumination, self.grid)

    def extra_repr(self) -> str:
        return (
            f"dmd_pixel_pitch_m={self.dmd_pixel_pitch_m:g}, threshold={self.threshold}, "
            f"dither={self.dither}, grid={self.grid.shape}"
        )


# --------------------------------------------------------------------------- camera kernels


def pixel_overlap_matrix(
    n_samples: int, n_pixels: int, samples_per_pixel: float, start_sample: float
) -> torch.Tensor:
    r"""Exact 1-D area-overlap matrix ``(n_pixels, n_samples)``, in units of samples.

    Camera pixel ``p`` spans ``[s + p r, s + (p+1) r)`` in sample-edge coordinates
    (sample ``i`` spans ``[i, i+1)``), ``r = samples_per_pixel``, ``s = start_sample``:
    :math:`A_{pi}=|[s+pr,\,s+(p+1)r)\cap[i,i+1)|`. With the irradiance constant over each
    grid sample, pixel power is :math:`P_{pq}=\Delta x^2\sum_{ij}A_{pi}I_{ij}A_{qj}` and
    every sample inside the sensor distributes exactly all its power (columns sum to 1).
    Built in float64.
    """
    i = torch.arange(n_samples, dtype=torch.float64)[None, :]
    p = torch.arange(n_pixels, dtype=torch.float64)[:, None]
    lo = start_sample + p * samples_per_pixel
    hi = lo + samples_per_pixel
    return torch.clamp(torch.minimum(hi, i + 1) - torch.maximum(lo, i), min=0.0)


def photon_count(
    power_w: torch.Tensor | float, exposure_s: float, wavelength_m: torch.Tensor | float
) -> torch.Tensor | float:
    r"""Mean number of photons :math:`N = P\,t\,\lambda/(h c)` (photon energy :math:`hc/\lambda`,
    Planck-Einstein relation). ``power_w`` in W, ``exposure_s`` in s, ``wavelength_m`` in m;
    tensors broadcast."""
    return power_w * (exposure_s / (PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S)) * wavelength_m


def shot_noise(
    mean_e: torch.Tensor,
    generator: torch.Generator | None = None,
    differentiable: bool | None = None,
) -> torch.Tensor:
    r"""Draw photo-electron counts with Poisson statistics around ``mean_e`` (>= 0).

    * exact: :math:`n\sim\mathrm{Poisson}(\mu)` (``torch.poisson``), integer-valued, no gradient;
    * differentiable: :math:`n=\mu+\sqrt{\mu}\,z`, :math:`z\sim N(0,1)` (reparameterised
      normal approximation: same mean and variance; shape accurate for :math:`\mu\gtrsim 10`;
      may go slightly negative for tiny means -- the camera clips at 0).

    ``differentiable=None`` (auto) picks the normal approximation exactly when a gradient is
    needed (``torch.is_grad_enabled() and mean_e.requires_grad``), otherwise exact sampling.
    ``generator`` must live on ``mean_e``'s device.
    """
    if differentiable is None:
        differentiable = torch.is_grad_enabled() and mean_e.requires_grad
    if not differentiable:
        return torch.poisson(mean_e.detach().clamp(min=0.0), generator=generator)
    lit = mean_e > 0
    std = torch.where(lit, torch.sqrt(torch.where(lit, mean_e, torch.ones_like(mean_e))), 0.0)
    z = torch.randn(mean_e.shape, generator=generator, device=mean_e.device, dtype=mean_e.dtype)
    return mean_e + std * z


def adc(
    electrons: torch.Tensor, full_well_e: float, bit_depth: int, quantize: bool = True
) -> torch.Tensor:
    r"""Saturate and digitise: :math:`DN=\mathrm{round}(\mathrm{clip}(e,0,e_{fw})(2^b-1)/e_{fw})`.

    Linear camera model of EMVA Standard 1288 (release 4.0, 2021) with system gain
    :math:`K=(2^b-1)/e_{fw}` DN per electron, so the full well maps to the top code and
    there are exactly :math:`2^b` codes. Rounding uses a straight-through gradient: the
    derivative is :math:`K` below saturation and 0 above (clipped pixels carry no signal).
    Returns float DN (integer-valued when ``quantize``).
    """
    fw = require_positive("full_well_e", full_well_e, "Give the full-well capacity in electrons.")
    b = require_int_range("bit_depth", bit_depth, 1, 16, "Camera ADCs have 8 to 16 bits.")
    gain = (2**b - 1) / fw
    dn = electrons.clamp(0.0, fw) * gain
    return _straight_through(dn, torch.round(dn)) if quantize else dn


# --------------------------------------------------------------------------- camera


class Camera(nn.Module):
    r"""An intensity camera: field on ``grid`` -> image ``(B, L, Hc, Wc)``.

    One image per wavelength channel (an ideal filter per channel; for a monochrome sensor
    under several wavelengths, sum :meth:`electrons` over ``L`` yourself). Pipeline, units in
    brackets:

    1. irradiance :math:`I=|E|^2` [W/m^2];
    2. pixel integration :math:`P_{pq}=\int_{pixel} I\,dA` [W], with :math:`I` constant over
       each grid sample: sum pooling of ``k x k`` samples when the camera pitch is ``k``
       grid pitches, else the exact separable area-overlap matrices of
       :func:`pixel_overlap_matrix`. Light outside the grid is zero;
    3. photons :math:`N=P t\lambda/(hc)` [photons] (:func:`photon_count`);
    4. mean electrons :math:`\mu=\eta N + D t` [e-] (quantum efficiency, dark current);
    5. noise (``noise=True``): shot noise on :math:`\mu` (:func:`shot_noise`: exact Poisson
       when no gradient is needed, reparameterised normal approximation when one is) plus
       Gaussian read noise :math:`\sigma_r` [e-]; variances add;
    6. saturation: clip to :math:`[0, e_{fw}]` [e-];
    7. ADC (:func:`adc`): :math:`DN=\mathrm{round}(e(2^b-1)/e_{fw})` [DN], straight-through.

    ``camera(field)`` returns the normalised image :math:`DN/(2^b-1)\in[0,1]`;
    :meth:`digital_numbers` returns raw DN; :meth:`electrons`, :meth:`mean_electrons`,
    :meth:`pixel_power_w` expose the earlier stages. Noise draws use ``generator`` (on the
    field's device) for reproducibility; each call draws fresh noise. With ``noise=False``
    the camera is deterministic (for training) but still integrates, saturates and, if
    ``quantize``, digitises. Model: EMVA Standard 1288 (2021); Janesick, *Photon Transfer*
    (SPIE 2007).

    Placement: the sensor (``n_pixels * camera_pixel_pitch_m`` wide) is centred on the
    optical axis (grid sample ``H//2``); when the camera pitch is ``k`` grid pitches it is
    shifted by at most half a sample toward ``-x`` so that pixel edges fall on sample edges
    (same convention as :class:`SLM`). ``n_pixels=None`` picks the fewest pixels that cover
    the whole grid.
    """

    def __init__(
        self,
        grid: Grid,
        camera_pixel_pitch_m: float,
        n_pixels: tuple[int, int] | int | None = None,
        quantum_efficiency: float | Sequence[float] = 0.7,
        exposure_s: float = 1e-3,
        full_well_e: float = 10_000,
        read_noise_e: float = 2.0,
        bit_depth: int = 8,
        noise: bool = True,
        dark_current_e_per_s: float = 0.0,
        quantize: bool = True,
    ) -> None:
        super().__init__()
        self.grid = grid
        dx = grid.pixel_pitch_m
        pc = require_positive(
            "camera_pixel_pitch_m",
            camera_pixel_pitch_m,
            "Give the camera pixel pitch in metres, e.g. 5.5e-6.",
        )
        ratio = pc / dx
        if ratio < 1 - _PITCH_RTOL:
            raise ValueError(
                f"camera_pixel_pitch_m={pc:g} m is smaller than the grid pixel_pitch_m={dx:g} m: "
                "the simulation cannot resolve detail finer than its grid. Use "
                f"camera_pixel_pitch_m >= {dx:g}, or build the Grid with pixel_pitch_m <= {pc:g}."
            )
        k = round(ratio)
        self.samples_per_pixel: float = float(k) if abs(ratio - k) <= _PITCH_RTOL * ratio else ratio
        self.integer_ratio = self.samples_per_pixel == k
        self.camera_pixel_pitch_m = pc

        if n_pixels is None:
            # fewest pixels covering [0, n) when centred on sample n//2 (+0.5 sample edge):
            # the far edge of an even grid is n/2 + 1/2 samples from the axis, unless the
            # sensor can snap to sample edges (whole-sample pixels)
            n_pixels = tuple(
                math.ceil(n / k) if self.integer_ratio else math.ceil((n + 1 - n % 2) / ratio)
                for n in grid.shape
            )
        elif isinstance(n_pixels, int):
            n_pixels = (n_pixels, n_pixels)
        n_pixels = tuple(n_pixels)
        if len(n_pixels) != 2:
            raise ValueError(f"n_pixels must be (H, W), an int, or None, got {n_pixels!r}.")
        self.n_pixels = tuple(
            require_int_range(f"n_pixels[{i}]", n, 1, fix="Give the sensor size in pixels.")
            for i, n in enumerate(n_pixels)
        )

        self.quantum_efficiency = _per_wavelength(
            "quantum_efficiency", quantum_efficiency, grid, "It is a fraction in (0, 1]."
        )
        for i, q in enumerate(self.quantum_efficiency):
            if q > 1:
                raise ValueError(
                    f"quantum_efficiency={quantum_efficiency!r} has a value {q} > 1 (channel {i}); "
                    "it is electrons per photon, a fraction in (0, 1], e.g. 0.7."
                )
        self.exposure_s = require_positive(
            "exposure_s", exposure_s, "Give the exposure time in seconds, e.g. 1e-3."
        )
        self.full_well_e = require_positive(
            "full_well_e", full_well_e, "Give the full-well capacity in electrons, e.g. 10000."
        )
        self.read_noise_e = _require_nonnegative(
            "read_noise_e", read_noise_e, "Give the read noise in electrons rms, e.g. 2.0."
        )
        self.dark_current_e_per_s = _require_nonnegative(
            "dark_current_e_per_s",
            dark_current_e_per_s,
            "Give the dark current in electrons per second, e.g. 0.",
        )
        self.bit_depth = require_int_range(
            "bit_depth", bit_depth, 1, 16, "Camera ADCs have 8 to 16 bits."
        )
        self.noise = bool(noise)
        self.quantize = bool(quantize)

        # sensor start in sample-edge coordinates: centred on sample H//2, snapped to sample
        # edges when pixels are whole samples
        self.start_samples = tuple(
            self._start(n_grid, n_pix)
            for n_grid, n_pix in zip(grid.shape, self.n_pixels, strict=True)
        )
        if not self.integer_ratio:
            ay = pixel_overlap_matrix(grid.shape[0], self.n_pixels[0], ratio, self.start_samples[0])
            ax = pixel_overlap_matrix(grid.shape[1], self.n_pixels[1], ratio, self.start_samples[1])
            self.register_buffer("overlap_y", ay, persistent=False)
            self.register_buffer("overlap_x", ax, persistent=False)

    def _start(self, n_grid: int, n_pix: int) -> float:
        width = n_pix * self.samples_per_pixel
        start = n_grid // 2 + 0.5 - width / 2
        return float(math.floor(start)) if self.integer_ratio else start

    @property
    def n_levels(self) -> int:
        return 2**self.bit_depth

    def pixel_axes(self, device=None, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera pixel-centre coordinates ``(y_m, x_m)`` in metres, in the grid's frame."""
        out = []
        for n_grid, n_pix, s in zip(
            self.grid.shape, self.n_pixels, self.start_samples, strict=True
        ):
            p = torch.arange(n_pix, device=device, dtype=dtype)
            centre = s + (p + 0.5) * self.samples_per_pixel - 0.5 - n_grid // 2
            out.append(centre * self.grid.pixel_pitch_m)
        return out[0], out[1]

    # --- stages -----------------------------------------------------------------
    def pixel_power_w(self, field: torch.Tensor) -> torch.Tensor:
        """Optical power on each camera pixel in watts, real ``(B, L, Hc, Wc)``."""
        self.grid.check_field(field)
        irr = field.real.square() + field.imag.square()  # W/m^2
        area = self.grid.pixel_pitch_m**2
        if self.integer_ratio:
            return self._sum_pool(irr) * area
        ay, ax = self.overlap_y, self.overlap_x
        if ay.device != irr.device or ay.dtype != irr.dtype:
            ay, ax = ay.to(irr.device, irr.dtype), ax.to(irr.device, irr.dtype)
            self.overlap_y, self.overlap_x = ay, ax  # cache the cast
        return torch.einsum("pi,blij,qj->blpq", ay, irr, ax) * area

    def _sum_pool(self, irr: torch.Tensor) -> torch.Tensor:
        k = int(self.samples_per_pixel)
        (hc, wc), (gh, gw) = self.n_pixels, self.grid.shape
        t, left = (int(s) for s in self.start_samples)
        # crop to the sensor, zero-pad where it overhangs the grid, then sum k x k blocks
        y0, y1, x0, x1 = max(t, 0), min(t + hc * k, gh), max(left, 0), min(left + wc * k, gw)
        block = irr[..., y0:y1, x0:x1]
        block = F.pad(block, (x0 - left, left + wc * k - x1, y0 - t, t + hc * k - y1))
        return block.reshape(*irr.shape[:-2], hc, k, wc, k).sum(dim=(-3, -1))

    def mean_photons(self, field: torch.Tensor) -> torch.Tensor:
        """Expected photons per pixel during the exposure, ``(B, L, Hc, Wc)``."""
        p = self.pixel_power_w(field)
        lam = self.grid.wavelength_tensor(p.device, p.dtype)
        return photon_count(p, self.exposure_s, lam)

    def mean_electrons(self, field: torch.Tensor) -> torch.Tensor:
        r"""Expected electrons :math:`\eta N + D t` (no noise, no clipping), ``(B, L, Hc, Wc)``."""
        n = self.mean_photons(field)
        qe = torch.tensor(self.quantum_efficiency, device=n.device, dtype=n.dtype).view(-1, 1, 1)
        return n * qe + self.dark_current_e_per_s * self.exposure_s

    def electrons(
        self, field: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Collected electrons after noise (if enabled) and clipping to [0, full well]."""
        e = self.mean_electrons(field)
        if self.noise:
            e = shot_noise(e, generator)
            if self.read_noise_e > 0:
                z = torch.randn(e.shape, generator=generator, device=e.device, dtype=e.dtype)
                e = e + self.read_noise_e * z
        return e.clamp(0.0, self.full_well_e)

    def digital_numbers(
        self, field: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Raw ADC output in DN, float ``(B, L, Hc, Wc)`` in ``[0, 2**bit_depth - 1]``."""
        return adc(
            self.electrons(field, generator), self.full_well_e, self.bit_depth, self.quantize
        )

    def forward(
        self, field: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Normalised image ``DN / (2**bit_depth - 1)`` in [0, 1], ``(B, L, Hc, Wc)``."""
        return self.digital_numbers(field, generator) / (self.n_levels - 1)

    def extra_repr(self) -> str:
        return (
            f"camera_pixel_pitch_m={self.camera_pixel_pitch_m:g}, n_pixels={self.n_pixels}, "
            f"qe={self.quantum_efficiency}, exposure_s={self.exposure_s:g}, "
            f"full_well_e={self.full_well_e:g}, "
            f"read_noise_e={self.read_noise_e:g}, bit_depth={self.bit_depth}, noise={self.noise}"
        )
