r"""Fabrication as parametrisations: quantised heights, feature-size filtering, misalignment.

What a fab can make differs from what gradient descent likes to produce. This module
turns the differences into differentiable (or straight-through) maps applied during
training, so that a design survives them:

* **Quantisation** to ``k`` etch depths with a gradient surrogate: the straight-through
  estimator (Bengio, Léonard & Courville 2013, arXiv:1308.3432) or a Gumbel-softmax
  relaxation with temperature (Jang, Gu & Poole 2017, ICLR; Maddison et al. 2017).
* **Feature-size filtering**: a conic density filter (Bourdin 2001, IJNME 50, 2143;
  Bruns & Tortorelli 2001) that removes structure finer than about its radius.
* **Misalignment**: lateral shift (Fourier shift theorem, exact for band-limited maps),
  in-plane rotation (bilinear resampling), axial distance jitter; sampled from a seeded
  ``torch.Generator`` in training mode, identity in eval mode.

Conventions: maps are ``(..., H, W)``; the optical axis is pixel ``(H//2, W//2)``
(see :class:`lightgen.optics.grid.Grid`); a positive shift moves content towards larger
row/column index (``torch.roll`` convention); a positive rotation takes the feature at
column offset ``x`` and row offset ``y`` to ``(x cos θ - y sin θ, x sin θ + y cos θ)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightgen._checks import require_finite, require_int_range, require_positive
from lightgen.optics.fft import fft2_unscaled, ifft2_unscaled
from lightgen.optics.grid import Grid

Surrogate = Literal["ste", "gumbel"]
SURROGATES: tuple[str, ...] = ("ste", "gumbel")


# ------------------------------------------------------------------ quantisation
def _check_surrogate(surrogate: str, tau: float) -> float:
    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate={surrogate!r} is unknown; choose one of {SURROGATES}.")
    return require_positive("tau", tau, "The Gumbel-softmax temperature must be > 0, e.g. 1.0.")


def _gumbel_like(x: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator | None):
    # sample on the generator's device (CPU generators cannot fill CUDA tensors), then move
    dev = generator.device if generator is not None else x.device
    u = torch.rand(shape, generator=generator, device=dev, dtype=torch.float64)
    u = u.clamp(1e-12, 1 - 1e-12)
    return (-torch.log(-torch.log(u))).to(device=x.device, dtype=x.dtype)


def quantize_levels(
    x: torch.Tensor,
    level_values: torch.Tensor,
    surrogate: Surrogate = "ste",
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    sample_noise: bool = True,
) -> torch.Tensor:
    r"""Snap ``x`` to the nearest of ``k`` equally spaced ``level_values``, surrogate gradient.

    * ``"ste"``: forward ``q = nearest level``; backward identity (``dq/dx = 1``),
      written ``q + (x - x.detach())`` so the forward value is bit-exact ``q``.
    * ``"gumbel"``: per-sample logits :math:`\ell_j = -((x - v_j)/\Delta)^2` over levels
      :math:`v_j` (spacing :math:`\Delta`), soft assignment
      :math:`y = \mathrm{softmax}((\ell + g)/\tau)` with Gumbel noise :math:`g` (when
      ``sample_noise``), forward the hard level :math:`v_{\arg\max y}`, backward through
      :math:`\sum_j y_j v_j` (straight-through Gumbel-softmax, Jang et al. 2017).
      Lower ``tau`` = closer to hard rounding, noisier gradients.

    Args:
        x: real tensor, any shape.
        level_values: 1-D ascending, equally spaced, ``k >= 2`` values.
    Returns:
        tensor like ``x`` whose values are exactly elements of ``level_values``.
    """
    tau = _check_surrogate(surrogate, tau)
    v = level_values.to(device=x.device, dtype=x.dtype)
    k = v.numel()
    step = (v[-1] - v[0]) / (k - 1)
    if surrogate == "ste":
        idx = torch.round((x.detach() - v[0]) / step).clamp(0, k - 1).long()
        return v[idx] + (x - x.detach())
    logits = -(((x.unsqueeze(-1) - v) / step) ** 2)
    if sample_noise:
        logits = logits + _gumbel_like(x, tuple(logits.shape), generator)
    soft_w = torch.softmax(logits / tau, dim=-1)
    soft = (soft_w * v).sum(-1)
    hard = v[soft_w.detach().argmax(-1)]
    return hard + (soft - soft.detach())


def height_levels(
    levels: int, max_height_m: float, device=None, dtype=torch.float64
) -> torch.Tensor:
    """The ``levels`` etch depths ``j * max_height_m / (levels - 1)``, j = 0..levels-1 (metres).

    Both 0 and ``max_height_m`` are levels. For the classic k-level single-wavelength
    DOE (levels ``j·h_2π/k``) pass ``max_height_m = (k - 1) / k * h_2π``.
    """
    k = require_int_range("levels", levels, 2, fix="Quantise to at least 2 levels.")
    h = require_positive("max_height_m", max_height_m, "Give the tallest etch depth in metres.")
    return torch.linspace(0.0, h, k, device=device, dtype=dtype)


def quantize_height(
    height_m: torch.Tensor,
    levels: int,
    max_height_m: float,
    surrogate: Surrogate = "ste",
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    sample_noise: bool = True,
) -> torch.Tensor:
    """Quantise a height map (metres) to ``levels`` depths in ``[0, max_height_m]``.

    See :func:`quantize_levels` for the surrogates and :func:`height_levels` for the
    levels. Heights outside the range snap to the end levels.
    """
    v = height_levels(levels, max_height_m, height_m.device, height_m.dtype)
    return quantize_levels(height_m, v, surrogate, tau, generator, sample_noise)


def quantize_phase(
    phase_rad: torch.Tensor,
    levels: int,
    surrogate: Surrogate = "ste",
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    sample_noise: bool = True,
) -> torch.Tensor:
    """Quantise a phase (rad) to ``levels`` values ``2π j / levels`` mod 2π (SLM grey levels).

    The phase is first wrapped to ``[0, 2π)``; the top level 2π folds back to 0.
    """
    k = require_int_range("levels", levels, 2, fix="Quantise to at least 2 levels.")
    two_pi = 2 * math.pi
    wrapped = phase_rad - two_pi * torch.floor(phase_rad.detach() / two_pi)
    v = torch.linspace(0.0, two_pi, k + 1, device=phase_rad.device, dtype=phase_rad.dtype)
    q = quantize_levels(wrapped, v, surrogate, tau, generator, sample_noise)
    # q == 2π is the same physical phase as 0; fold it without touching the gradient path
    return q - two_pi * (q.detach() >= two_pi - 1e-9 * two_pi).to(q.dtype)


class HeightQuantizer(nn.Module):
    """Module form of :func:`quantize_height`; Gumbel noise is sampled only in training mode.

    In eval mode the ``"gumbel"`` surrogate is deterministic (nearest level), so a
    trained layer always evaluates to the map that would be fabricated.
    """

    def __init__(
        self,
        levels: int,
        surrogate: Surrogate = "ste",
        tau: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.levels = require_int_range("levels", levels, 2, fix="Quantise to at least 2 levels.")
        self.tau = _check_surrogate(surrogate, tau)
        self.surrogate = surrogate
        self.generator = generator

    def forward(self, height_m: torch.Tensor, max_height_m: float) -> torch.Tensor:
        return quantize_height(
            height_m,
            self.levels,
            max_height_m,
            self.surrogate,
            self.tau,
            self.generator,
            sample_noise=self.training,
        )

    def extra_repr(self) -> str:
        return f"levels={self.levels}, surrogate={self.surrogate}, tau={self.tau:g}"


# ------------------------------------------------------------- feature size
def conic_filter_kernel(
    pixel_pitch_m: float, radius_m: float, device=None, dtype=torch.float64
) -> torch.Tensor:
    """Normalised conic weights ``w(r) ∝ max(0, R - r)``, shape ``(2m+1, 2m+1)``, m = ⌊R/Δx⌋."""
    dx = require_positive("pixel_pitch_m", pixel_pitch_m, "Give the pitch in metres.")
    r_px = require_positive("radius_m", radius_m, "Give the filter radius in metres.") / dx
    m = math.floor(r_px)
    off = torch.arange(-m, m + 1, device=device, dtype=torch.float64)
    r = torch.sqrt(off[:, None] ** 2 + off[None, :] ** 2)
    w = (r_px - r).clamp_min(0)
    return (w / w.sum()).to(dtype)


def conic_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Density filter :math:`\tilde x = \sum_j w_j x_j / \sum_j w_j` (Bourdin 2001).

    ``x`` is real ``(..., H, W)``; edges are replicate-padded so a constant map stays
    constant. Structure finer than about the filter radius is averaged out; this does
    *not* by itself guarantee a minimum feature size (that needs projection / robust
    design, Wang, Lazarov & Sigmund 2011, SMO 43, 767).
    """
    m = kernel.shape[-1] // 2
    if m == 0:
        return x
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:])
    padded = F.pad(flat, (m, m, m, m), mode="replicate")
    out = F.conv2d(padded, kernel.to(device=x.device, dtype=x.dtype)[None, None])
    return out.reshape(shape)


# -------------------------------------------------------------- misalignment
def _as_real_tensor(value, like: torch.Tensor) -> torch.Tensor:
    """A float64 0-d tensor on ``like``'s device; tensors keep their autograd graph."""
    if isinstance(value, torch.Tensor):
        return value.to(device=like.device, dtype=torch.float64)
    return torch.tensor(float(value), device=like.device, dtype=torch.float64)


def fourier_shift(
    x: torch.Tensor,
    shift_y_px: float | torch.Tensor,
    shift_x_px: float | torch.Tensor,
    fill: complex | float | None = None,
) -> torch.Tensor:
    r"""Sub-pixel lateral shift of ``(..., H, W)`` maps by the Fourier shift theorem.

    :math:`x(\mathbf r - \mathbf s) \leftrightarrow X(\mathbf u)\,e^{-i2\pi\mathbf u\cdot\mathbf s}`
    (Goodman §2.1.2). Exact for band-limited content and for integer shifts (then equal
    to ``torch.roll``); hard edges shifted by a fraction of a pixel ring (Gibbs).

    Args:
        x: real or complex tensor ``(..., H, W)``.
        shift_y_px, shift_x_px: shifts in pixels (floats or 0-d tensors, differentiable).
        fill: ``None`` shifts circularly (unitary: power preserved exactly); a value
            fills the uncovered strip with it instead (maps are padded by the shift).
    Returns:
        tensor of the same shape; real input gives real output.
    """
    sy, sx = _as_real_tensor(shift_y_px, x), _as_real_tensor(shift_x_px, x)
    if fill is not None:
        py = math.ceil(abs(float(sy.detach()))) + 1
        px = math.ceil(abs(float(sx.detach()))) + 1
        h, w = x.shape[-2:]
        base = x - fill
        padded = F.pad(base.reshape(-1, h, w), (px, px, py, py)).reshape(
            *x.shape[:-2], h + 2 * py, w + 2 * px
        )
        return fourier_shift(padded, sy, sx)[..., py : py + h, px : px + w] + fill
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, device=x.device, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(w, device=x.device, dtype=torch.float64)[None, :]
    ramp = torch.polar(torch.full_like(fy * fx, 1.0 / (h * w)), -2 * math.pi * (fy * sy + fx * sx))
    cdtype = torch.complex128 if x.dtype in (torch.float64, torch.complex128) else torch.complex64
    out = ifft2_unscaled(fft2_unscaled(x.to(cdtype)) * ramp.to(cdtype))
    return out if x.is_complex() else out.real


def roll_with_fill(x: torch.Tensor, shift_y_px: int, shift_x_px: int, fill=0.0) -> torch.Tensor:
    """Integer-pixel shift (``torch.roll`` convention) with the uncovered strip set to ``fill``."""
    sy = require_int_range("shift_y_px", shift_y_px, -(10**9))
    sx = require_int_range("shift_x_px", shift_x_px, -(10**9))
    out = torch.roll(x, shifts=(sy, sx), dims=(-2, -1))
    h, w = x.shape[-2:]
    keep = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    keep[max(sy, 0) : h + min(sy, 0), max(sx, 0) : w + min(sx, 0)] = True
    return torch.where(keep, out, torch.as_tensor(fill, dtype=x.dtype, device=x.device))


def rotate(
    x: torch.Tensor, angle_rad: float | torch.Tensor, fill: complex | float = 0.0
) -> torch.Tensor:
    r"""In-plane rotation of ``(..., H, W)`` maps about the optical axis pixel ``(H//2, W//2)``.

    Output pixel :math:`\mathbf p` samples the input at :math:`R(-\theta)\mathbf p` with
    bilinear interpolation (``torch.nn.functional.grid_sample`` on real and imaginary
    parts, differentiable in ``x`` and ``angle_rad``); points mapped from outside the
    map take ``fill``. Rotation by multiples of 90° on an odd grid is an exact pixel
    permutation (``torch.rot90``).
    """
    h, w = x.shape[-2:]
    theta = _as_real_tensor(angle_rad, x)
    c, s = torch.cos(theta), torch.sin(theta)
    yo = torch.arange(h, device=x.device, dtype=torch.float64) - h // 2
    xo = torch.arange(w, device=x.device, dtype=torch.float64) - w // 2
    yy, xx = torch.meshgrid(yo, xo, indexing="ij")
    x_in = c * xx + s * yy + w // 2
    y_in = -s * xx + c * yy + h // 2
    # align_corners=True: -1 and +1 are the centres of the first and last pixels
    gx = 2 * x_in / max(w - 1, 1) - 1
    gy = 2 * y_in / max(h - 1, 1) - 1
    base = x - fill
    real = torch.view_as_real(base) if base.is_complex() else base.unsqueeze(-1)
    chans = real.reshape(-1, h, w, real.shape[-1]).permute(0, 3, 1, 2).reshape(1, -1, h, w)
    grid = torch.stack((gx, gy), dim=-1)[None].to(chans.dtype)
    out = F.grid_sample(chans, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = out.reshape(-1, real.shape[-1], h, w).permute(0, 2, 3, 1).reshape(real.shape)
    out = torch.view_as_complex(out.contiguous()) if base.is_complex() else out.squeeze(-1)
    return out + fill


def jitter_distance_m(
    distance_m: float, std_m: float, generator: torch.Generator | None = None
) -> float:
    """``distance_m + std_m * N(0, 1)`` drawn from ``generator`` (axial placement error)."""
    d = require_finite("distance_m", distance_m, "Give the distance in metres.")
    std = require_finite("std_m", std_m, "Give the standard deviation in metres.")
    if std < 0:
        raise ValueError(f"std_m must be >= 0, got {std_m!r}. Give a standard deviation in metres.")
    if std == 0:
        return d
    return d + std * float(torch.randn((), generator=generator, dtype=torch.float64))


@dataclass(frozen=True)
class Perturbation:
    """One sampled placement error of a layer (metres, radians)."""

    shift_y_m: float = 0.0
    shift_x_m: float = 0.0
    rotation_rad: float = 0.0
    distance_m: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.shift_y_m == self.shift_x_m == self.rotation_rad == self.distance_m == 0.0


class Misalignment(nn.Module):
    """Random placement errors of a layer, as training-time augmentation.

    In training mode :meth:`forward` samples a :class:`Perturbation` (independent
    zero-mean normals with the given standard deviations) and applies the lateral
    shift and rotation to a transmission ``(..., H, W)``; in eval mode it is the
    identity. The axial error ``distance_m`` cannot act on a transmission: elements
    that own a ``Misalignment`` propagate by ``+dz`` before and ``-dz`` after
    themselves (a layer displaced by ``dz`` between fixed planes), see
    :class:`lightgen.optics.elements.TransmissionElement`.

    Args:
        shift_std_m: lateral standard deviation per axis, metres.
        rotation_std_rad: in-plane rotation standard deviation, radians.
        distance_std_m: axial standard deviation, metres.
        fill: transmission of the region uncovered by a shift or rotation; the
            default 1.0 is unpatterned substrate (height 0, phase 0).
        generator: ``torch.Generator`` for reproducible draws (CPU generator is fine
            for CUDA transmissions: only three scalars are drawn).
    """

    def __init__(
        self,
        shift_std_m: float = 0.0,
        rotation_std_rad: float = 0.0,
        distance_std_m: float = 0.0,
        fill: complex | float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        stds = {
            "shift_std_m": shift_std_m,
            "rotation_std_rad": rotation_std_rad,
            "distance_std_m": distance_std_m,
        }
        for name, v in stds.items():
            if require_finite(name, v, "Give a standard deviation.") < 0:
                raise ValueError(f"{name} must be >= 0, got {v!r}. Pass 0 to disable it.")
        self.shift_std_m = float(shift_std_m)
        self.rotation_std_rad = float(rotation_std_rad)
        self.distance_std_m = float(distance_std_m)
        self.fill = fill
        self.generator = generator
        self.last_perturbation = Perturbation()

    def sample(self) -> Perturbation:
        """Draw one perturbation (consumes four normals from the generator)."""
        z = torch.randn(4, generator=self.generator, dtype=torch.float64).tolist()
        return Perturbation(
            shift_y_m=self.shift_std_m * z[0],
            shift_x_m=self.shift_std_m * z[1],
            rotation_rad=self.rotation_std_rad * z[2],
            distance_m=self.distance_std_m * z[3],
        )

    def apply(self, transmission: torch.Tensor, grid: Grid, p: Perturbation) -> torch.Tensor:
        """Rotate then shift ``transmission`` ``(..., H, W)`` by ``p`` (rotation about the axis)."""
        t = transmission
        if p.rotation_rad != 0.0:
            t = rotate(t, p.rotation_rad, self.fill)
        if p.shift_y_m != 0.0 or p.shift_x_m != 0.0:
            dx = grid.pixel_pitch_m
            t = fourier_shift(t, p.shift_y_m / dx, p.shift_x_m / dx, self.fill)
        return t

    def draw(self) -> Perturbation:
        """The perturbation for this call: sampled in training mode, none in eval mode."""
        p = self.sample() if self.training else Perturbation()
        self.last_perturbation = p
        return p

    def forward(self, transmission: torch.Tensor, grid: Grid) -> torch.Tensor:
        return self.apply(transmission, grid, self.draw())

    def extra_repr(self) -> str:
        return (
            f"shift_std_m={self.shift_std_m:g}, rotation_std_rad={self.rotation_std_rad:g}, "
            f"distance_std_m={self.distance_std_m:g}, fill={self.fill}"
        )
