r"""Single-mode fiber array: the chip's optical latent space.

A single-mode fiber guides only its fundamental LP01 mode, which is close to a
Gaussian (Marcuse 1977). Fiber ``k`` therefore turns the whole field arriving at its
facet into *one* complex number per wavelength -- the overlap integral with its mode
(Snyder & Love, *Optical Waveguide Theory*, 1983, ch. 20):

.. math::

    \psi_k(x,y)=\sqrt{\tfrac{2}{\pi w^2}}\exp\!\Big(-\tfrac{(x-x_k)^2+(y-y_k)^2}{w^2}\Big),
    \qquad c_k=\iint E(x,y)\,\psi_k^*(x,y)\,dx\,dy,

with :math:`w` = MFD/2 the mode-field radius. On the grid the mode is normalised
numerically, :math:`\sum|\psi_k|^2\Delta x^2=1`, so the discrete overlap
:math:`c_k=\sum E\,\psi_k\,\Delta x^2` is exactly energy-consistent: with ``E`` in
sqrt(W/m^2), ``c_k`` is in sqrt(W) and :math:`|c_k|^2` is the power (W) launched into
fiber ``k``. At the output facet each fiber re-emits its mode,
:math:`E_{out}=\sum_k t_k c_k\,\psi_k(x-x'_k,y-y'_k)`, with the fiber's transmission
:math:`t_k=10^{-\mathrm{loss}_k/20}e^{i\phi_k}`.

Speed: the mode is separable, :math:`\psi_k=g_k(y)h_k(x)`, so the overlap is one real
GEMM over ``y`` on the field viewed as real pairs, then a short sum over ``x``
(cost :math:`O(HWM)`, no ``(M, H, W)`` mode stack); emission is the transpose.
The 1-D tables are non-persistent buffers (derivable, never saved).

Sampling rule: the mode-field radius must span at least ``MIN_WAIST_PIXELS`` = 1.5
pixels on both grids (measured: coupling efficiencies of Gaussian beams at least as
wide as the mode then match the continuous closed forms to ~2e-4 relative at 1.5 px,
~4e-8 at 2 px; Poisson-summation aliasing falls as exp(-pi^2 w^2 / 2 dx^2)), and
every mode centre +- 2w must lie inside its grid (power beyond 2w
along an axis is erfc(2*sqrt(2)) ~ 6e-5 and is removed by the numerical
normalisation).

Overlapping modes. Fibers a distance ``d`` apart have modes that overlap by
:math:`G_{jk}=\langle\psi_j|\psi_k\rangle=e^{-d^2/2w^2}` (1.1 % at 3w, 4.4 % at 2.5w).
Non-orthogonal modes would make :math:`\sum_k|c_k|^2` exceed the arriving power (1.036x
at a pitch of 3w), so whenever some :math:`|G_{jk}|` exceeds ``OVERLAP_TOLERANCE`` the
array couples into and emits from the symmetrically orthonormalised modes
:math:`\phi=\psi G^{-1/2}` (Loewdin 1950, the orthonormal set closest to the fiber
modes): :math:`a=G^{-1/2}c` and :math:`E_{out}=\sum_j\psi_j(G^{-1/2}a)_j`. Then
:math:`\sum_k|a_k|^2=c^HG^{-1}c` is the power of the field's projection onto the
modes' span -- never more than arrives -- and emit-then-couple returns the latent.
Fibers closer than 2w (overlap > 13.5 %) are also warned about: their latent channels
are mixtures (supermodes) of neighbouring fibers (see :meth:`FiberArray.mode_overlap`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lightgen._checks import require_int_range, require_positive, require_positive_all
from lightgen.optics.grid import Grid, power

#: Smallest mode-field radius, in pixels, that a grid must resolve.
MIN_WAIST_PIXELS = 1.5
#: Mode centres must sit this many mode-field radii inside the grid.
EDGE_WAISTS = 2.0
#: LP11 cutoff: first zero of J0 (single-mode below it).
V_SINGLE_MODE_CUTOFF = 2.405
#: Below this V the Marcuse fit is no longer valid (Marcuse 1977, Fig. 1).
V_MARCUSE_MIN = 0.8
LAYOUTS = ("square", "hex")
#: Largest mode overlap |G_jk| treated as orthogonal (above it: the exact projection).
OVERLAP_TOLERANCE = 1e-6  # below float32 resolution of the coupled power


def marcuse_mode_field_diameter_m(
    core_radius_m: float, numerical_aperture: float, wavelength_m: float
) -> float:
    r"""Mode-field diameter (m) of a step-index single-mode fiber's LP01 mode.

    :math:`V=2\pi a\,\mathrm{NA}/\lambda`, :math:`w/a=0.65+1.619V^{-3/2}+2.879V^{-6}`,
    MFD :math:`=2w` (Marcuse 1977, Bell Syst. Tech. J. 56, 703, eq. 10; better than
    1% for 1.2 < V < 2.4). Raises ``ValueError`` for V > 2.405 (multimode: LP11 is
    guided) and for V < 0.8 (weakly guided; the fit is invalid there).

    Note: datasheet NAs are nominal. SMF-28 (a = 4.1 um, NA = 0.14) gives V = 2.33 and
    MFD = 9.2 um at 1550 nm here, while Corning quotes 10.4 um -- its graded-index
    profile behaves like a step index with NA ~0.12. Pass the datasheet MFD directly
    when you have it.
    """
    a = require_positive(
        "core_radius_m", core_radius_m, "Give the core radius in metres, e.g. 4.1e-6."
    )
    na = require_positive("numerical_aperture", numerical_aperture, "Typical SMF: 0.1-0.2.")
    if na >= 1:
        raise ValueError(
            f"numerical_aperture={numerical_aperture!r} must be < 1 for a fiber in air; "
            "typical single-mode fibers have 0.1-0.2."
        )
    lam = require_positive(
        "wavelength_m", wavelength_m, "Give the wavelength in metres, e.g. 1.55e-6."
    )
    if lam > 1e-3:
        raise ValueError(
            f"wavelength_m={wavelength_m!r} is over 1 mm; use metres (1550 nm = 1.55e-6)."
        )
    v = 2 * math.pi * a * na / lam
    if v > V_SINGLE_MODE_CUTOFF:
        cutoff = 2 * math.pi * a * na / V_SINGLE_MODE_CUTOFF
        raise ValueError(
            f"V = 2*pi*a*NA/lambda = {v:.3f} > {V_SINGLE_MODE_CUTOFF} for core_radius_m={a:g}, "
            f"numerical_aperture={na:g}, wavelength_m={lam:g}: the fiber is multimode. Use "
            f"wavelengths above the cutoff {cutoff:g} m, or a smaller core_radius_m or "
            "numerical_aperture."
        )
    if v < V_MARCUSE_MIN:
        raise ValueError(
            f"V = 2*pi*a*NA/lambda = {v:.3f} < {V_MARCUSE_MIN} for core_radius_m={a:g}, "
            f"numerical_aperture={na:g}, wavelength_m={lam:g}: the mode is barely guided and "
            "the Marcuse fit is invalid. Use a shorter wavelength, a larger core or NA, or pass "
            "mode_field_diameter_m directly."
        )
    w_over_a = 0.65 + 1.619 * v**-1.5 + 2.879 * v**-6
    return 2 * a * w_over_a


def fiber_positions_m(n_fibers: int, pitch_m: float, layout: str = "square") -> torch.Tensor:
    """Fiber centres ``(M, 2)`` as ``[y, x]`` in metres (float64), centred on 0.

    Both layouts fill ``ceil(sqrt(M))`` columns row by row (fiber 0 top-left, row-major)
    and keep the first ``M`` sites; the bounding box of the kept sites is centred on
    the optical axis. ``"square"``: rows and columns ``pitch_m`` apart. ``"hex"``:
    rows ``pitch_m*sqrt(3)/2`` apart, odd rows shifted by ``pitch_m/2``, so every
    nearest neighbour is ``pitch_m`` away (close-packed bundle).
    """
    m = require_int_range("n_fibers", n_fibers, 1, fix="Give the number of fibers, e.g. 100.")
    p = require_positive("pitch_m", pitch_m, "Give the fiber spacing in metres, e.g. 127e-6.")
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is unknown; choose one of {LAYOUTS}.")
    cols = math.isqrt(m - 1) + 1  # ceil(sqrt(m))
    idx = torch.arange(m, dtype=torch.float64)
    row, col = torch.div(idx, cols, rounding_mode="floor"), torch.remainder(idx, cols)
    if layout == "square":
        y, x = row * p, col * p
    else:
        y, x = row * (p * math.sqrt(3) / 2), (col + 0.5 * torch.remainder(row, 2)) * p
    pos = torch.stack([y, x], dim=-1)
    return pos - (pos.amax(0) + pos.amin(0)) / 2


@dataclass(frozen=True)
class FiberSpec:
    """Physical parameters of one (identical) single-mode fiber type.

    Give either ``mode_field_diameter_m`` (one value for all wavelengths, or one per
    wavelength, in metres), or ``core_radius_m`` and ``numerical_aperture`` to derive
    the MFD at each wavelength with :func:`marcuse_mode_field_diameter_m`.
    """

    mode_field_diameter_m: float | tuple[float, ...] | None = None
    core_radius_m: float | None = None
    numerical_aperture: float | None = None

    def __post_init__(self) -> None:
        mfd = self.mode_field_diameter_m
        step = self.core_radius_m is not None or self.numerical_aperture is not None
        if mfd is None and not step:
            raise ValueError(
                "FiberSpec needs mode_field_diameter_m, or core_radius_m and numerical_aperture "
                "(e.g. FiberSpec(mode_field_diameter_m=10.4e-6))."
            )
        if mfd is not None and step:
            raise ValueError(
                f"FiberSpec got mode_field_diameter_m={mfd!r} and core_radius_m/"
                "numerical_aperture; give one description, not both."
            )
        if mfd is not None:
            vals = (mfd,) if isinstance(mfd, int | float) else tuple(mfd)
            vals = require_positive_all(
                "mode_field_diameter_m", vals, "Give the MFD in metres, e.g. 10.4e-6."
            )
            object.__setattr__(self, "mode_field_diameter_m", vals[0] if len(vals) == 1 else vals)
            return
        if self.core_radius_m is None or self.numerical_aperture is None:
            raise ValueError(
                f"FiberSpec got core_radius_m={self.core_radius_m!r}, numerical_aperture="
                f"{self.numerical_aperture!r}; the Marcuse MFD needs both."
            )
        a = require_positive("core_radius_m", self.core_radius_m, "Give metres, e.g. 4.1e-6.")
        na = require_positive("numerical_aperture", self.numerical_aperture, "Typical: 0.1-0.2.")
        object.__setattr__(self, "core_radius_m", a)
        object.__setattr__(self, "numerical_aperture", na)

    def mode_field_diameters_m(self, wavelengths_m: Sequence[float]) -> tuple[float, ...]:
        """MFD (m) at each of ``wavelengths_m`` (validated against their number)."""
        wls = tuple(float(w) for w in wavelengths_m)
        if self.mode_field_diameter_m is None:
            return tuple(
                marcuse_mode_field_diameter_m(self.core_radius_m, self.numerical_aperture, w)
                for w in wls
            )
        return _per_wavelength(self.mode_field_diameter_m, len(wls))


def _per_wavelength(mfd: float | Sequence[float], n_wavelengths: int) -> tuple[float, ...]:
    vals = (mfd,) if isinstance(mfd, int | float) else tuple(mfd)
    vals = require_positive_all(
        "mode_field_diameter_m", vals, "Give the MFD in metres, e.g. 10.4e-6."
    )
    if len(vals) == 1:
        return vals * n_wavelengths
    if len(vals) != n_wavelengths:
        raise ValueError(
            f"mode_field_diameter_m has {len(vals)} values {vals} but the grid has "
            f"{n_wavelengths} wavelength(s); give one MFD for all or one per wavelength."
        )
    return vals


def gaussian_mode_table(
    coords_m: torch.Tensor, centres_m: torch.Tensor, waist_m: float, pixel_pitch_m: float
) -> torch.Tensor:
    r"""1-D LP01 factors ``(N, M)``: :math:`g_k(x_n)\propto\exp(-(x_n-x_k)^2/w^2)`.

    Normalised on the grid, :math:`\sum_n g_k(x_n)^2\,\Delta x=1` (the continuous value
    is :math:`(2/\pi w^2)^{1/4}`), so :math:`\psi_k=g_k(y)h_k(x)` has unit discrete
    power. ``coords_m`` ``(N,)``, ``centres_m`` ``(M,)``, ``waist_m`` = MFD/2, metres;
    computed in the dtype of ``coords_m``.
    """
    g = torch.exp(-(((coords_m[:, None] - centres_m[None, :]) / waist_m) ** 2))
    return g / torch.sqrt((g * g).sum(0, keepdim=True) * pixel_pitch_m)


def fourier_mode_table(
    coords_m: torch.Tensor,
    centres_m: torch.Tensor,
    waist_m: float,
    wavelength_m: float,
    focal_length_m: float,
    sign: int,
) -> torch.Tensor:
    r"""1-D factors ``(N, M)`` of a fiber mode seen through a 2f lens, complex128.

    A facet at one focal plane of a thin lens of focal length ``f``, the grid at the
    other (Goodman eq. 5-19, the unitary Fourier transform
    :math:`\frac{1}{i\lambda f}\iint\psi(\xi)e^{-i2\pi x\cdot\xi/\lambda f}d\xi`): the
    Gaussian mode of radius ``w`` centred at :math:`\xi_k` becomes, per axis,

    .. math::

        \tilde g_k(x)=\Big(\frac{2}{\pi W^2}\Big)^{1/4}e^{-x^2/W^2}
        e^{\mp i2\pi x\xi_k/\lambda f}e^{\mp i\pi/4},\qquad W=\frac{\lambda f}{\pi w},

    a broad beam of radius ``W`` over the aperture, tilted by :math:`\xi_k/f`.
    ``sign=-1``: the facet emits through the lens onto the grid (:math:`F\psi`);
    ``sign=+1``: the facet receives from the grid, and its coupling is the overlap
    with :math:`F^H\psi`. The normalisation is the continuous one, so beam power
    outside the grid is really lost at the aperture.
    """
    big_w = wavelength_m * focal_length_m / (math.pi * waist_m)
    x = coords_m.double()[:, None]
    amp = (2 / (math.pi * big_w**2)) ** 0.25 * torch.exp(-((x / big_w) ** 2))
    tilt = 2 * math.pi * x * centres_m.double()[None, :] / (wavelength_m * focal_length_m)
    phase = sign * (tilt + math.pi / 4)
    return torch.polar(amp.expand_as(phase).contiguous(), phase)


def couple_separable(
    field: torch.Tensor, mode_y: torch.Tensor, mode_x: torch.Tensor, pixel_pitch_m: float
) -> torch.Tensor:
    r"""Overlap integrals :math:`c_k=\sum_{y,x}E(y,x)\,g_k(y)h_k(x)\,\Delta x^2`.

    Args:
        field: complex ``(B, L, H, W)``, sqrt(W/m^2).
        mode_y: ``(L, H, M)`` factors :math:`g_k(y)`; mode_x: ``(L, W, M)``; real for
            facets on the grid, complex for lens-coupled facets (then :math:`\psi^*`
            is used, :func:`fourier_mode_table`).
        pixel_pitch_m: grid pitch (m).

    Returns:
        complex ``(B, L, M)`` in sqrt(W). The modes are real, so :math:`\psi^*=\psi`.
        One real GEMM over ``y`` on ``view_as_real(field)`` (no copy for a contiguous
        field), then a sum over ``x``: :math:`O(HWM)` work.
    """
    b, n_l, h, w = field.shape
    m = mode_y.shape[-1]
    if mode_y.is_complex():  # lens-coupled facets (tilted waves): c_k = sum E conj(psi_k)
        partial = mode_y.conj().transpose(-1, -2) @ field  # (B, L, M, W)
        return (partial * mode_x.conj().transpose(-1, -2)).sum(-1) * pixel_pitch_m**2
    pairs = torch.view_as_real(field).reshape(b, n_l, h, 2 * w)
    partial = mode_y.transpose(-1, -2) @ pairs  # (B, L, M, 2W): sum_y g_k(y) E(y, x)
    partial = torch.view_as_complex(partial.view(b, n_l, m, w, 2))
    return (partial * mode_x.transpose(-1, -2)).sum(-1) * pixel_pitch_m**2


def emit_separable(
    latent: torch.Tensor, mode_y: torch.Tensor, mode_x: torch.Tensor
) -> torch.Tensor:
    r"""Superposed output spots :math:`E(y,x)=\sum_k c_k\,g_k(y)h_k(x)`.

    Args:
        latent: complex ``(B, L, M)`` mode amplitudes, sqrt(W).
        mode_y: ``(L, H, M)``; mode_x: ``(L, W, M)`` (unit-power modes; real, or complex
            for lens-coupled facets).

    Returns:
        complex ``(B, L, H, W)`` in sqrt(W/m^2); its power is :math:`c^H G c` with
        :math:`G` the mode Gram matrix (:math:`\sum|c_k|^2` for separated spots).
    """
    b, n_l, m = latent.shape
    h, w = mode_y.shape[-2], mode_x.shape[-2]
    rows = latent[..., None] * mode_x.transpose(-1, -2)  # (B, L, M, W): c_k h_k(x)
    if mode_y.is_complex():
        return mode_y @ rows
    pairs = torch.view_as_real(rows).reshape(b, n_l, m, 2 * w)
    out = mode_y @ pairs  # (B, L, H, 2W)
    return torch.view_as_complex(out.view(b, n_l, h, w, 2))


def _as_positions(name: str, positions, n_fibers: int | None = None) -> torch.Tensor:
    try:
        pos = torch.as_tensor(positions, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"{name} must be an (M, 2) array of [y, x] metres, got {positions!r}."
        ) from None
    if pos.ndim != 2 or pos.shape[-1] != 2 or pos.shape[0] < 1:
        raise ValueError(
            f"{name} has shape {tuple(pos.shape)}; expected (M, 2) [y, x] in metres with M >= 1 "
            "(see fiber_positions_m)."
        )
    if not torch.isfinite(pos).all():
        raise ValueError(f"{name} contains non-finite values; give finite [y, x] metres.")
    if n_fibers is not None and pos.shape[0] != n_fibers:
        raise ValueError(
            f"{name} has {pos.shape[0]} fibers but positions_m has {n_fibers}; give one output "
            "position per fiber (same order)."
        )
    return pos


def _check_sampling(name: str, grid: Grid, pos: torch.Tensor, waists_m: tuple[float, ...]) -> None:
    dx = grid.pixel_pitch_m
    w_min, w_max = min(waists_m), max(waists_m)
    if w_min < MIN_WAIST_PIXELS * dx:
        raise ValueError(
            f"mode_field_diameter_m: the mode-field radius {w_min:g} m is {w_min / dx:.2f} "
            f"pixels of the {name} grid (pitch {dx:g} m); need >= {MIN_WAIST_PIXELS}. Use a finer "
            f"{name} grid (pixel_pitch_m <= {w_min / MIN_WAIST_PIXELS:g}) or a larger MFD."
        )
    y, x = grid.axes()
    lo = torch.tensor([y[0].item(), x[0].item()], dtype=torch.float64) + EDGE_WAISTS * w_max
    hi = torch.tensor([y[-1].item(), x[-1].item()], dtype=torch.float64) - EDGE_WAISTS * w_max
    tol = 1e-6 * dx  # a fiber exactly on the limit must not fail on rounding
    bad = ((pos < lo - tol) | (pos > hi + tol)).any(-1).nonzero().flatten()
    if len(bad):
        k = int(bad[0])
        pname = "positions_m" if name == "input" else "output_positions_m"
        yk, xk = pos[k].tolist()
        (ylo, xlo), (yhi, xhi) = lo.tolist(), hi.tolist()
        raise ValueError(
            f"{pname}[{k}] = [{yk:g}, {xk:g}] m puts fiber {k}'s mode (+- {EDGE_WAISTS:g}w = "
            f"{EDGE_WAISTS * w_max:g} m) outside the {name} grid: centres must lie in "
            f"y [{ylo:g}, {yhi:g}], x [{xlo:g}, {xhi:g}] m ({len(bad)} fiber(s) out). "
            f"Move the fibers (smaller pitch) or enlarge the {name} grid."
        )


def _warn_overlap(name: str, pos: torch.Tensor, waist_m: float) -> None:
    if pos.shape[0] < 2:
        return
    d = torch.cdist(pos, pos).fill_diagonal_(math.inf)
    d_min = d.min().item()
    if d_min < 2 * waist_m:
        overlap = math.exp(-(d_min**2) / (2 * waist_m**2))
        warnings.warn(
            f"{name}: fibers {d_min:g} m apart, closer than 2w = {2 * waist_m:g} m; their modes "
            f"overlap by exp(-d^2/2w^2) = {overlap:.3f}, so latent channels are not independent. "
            "Increase the spacing if that is not intended.",
            stacklevel=3,
        )


def _optional_focal_length(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    return require_positive(
        name, value, "Give the lens focal length in metres, e.g. 0.05, or None."
    )


def _check_lens_sampling(
    name: str, grid: Grid, pos: torch.Tensor, waists_m: tuple[float, ...], focal_length_m: float
) -> None:
    """Sampling rule of lens-coupled facets (:func:`fourier_mode_table`).

    Per wavelength the beam radius ``W = lambda f / (pi w)`` must span
    ``MIN_WAIST_PIXELS`` pixels, and the highest spatial frequency of each fiber's
    tilted beam, ``|xi_k| / (lambda f) + 2 / (pi W)`` (its tilt plus the Gaussian's
    spectrum down to exp(-4)), must stay below Nyquist ``1/(2 dx)`` on each axis.
    """
    dx = grid.pixel_pitch_m
    far = pos.abs().max().item()
    for lam, w in zip(grid.wavelengths_m, waists_m, strict=True):
        big_w = lam * focal_length_m / (math.pi * w)
        if big_w < MIN_WAIST_PIXELS * dx:
            raise ValueError(
                f"{name} lens: the beam radius lambda*f/(pi*w) = {big_w:g} m at {lam:g} m is "
                f"below {MIN_WAIST_PIXELS} pixels of the {name} grid (pitch {dx:g} m); use a "
                "longer focal length."
            )
        u_max = far / (lam * focal_length_m) + 2 / (math.pi * big_w)
        if u_max > 1 / (2 * dx):
            f_min = (far / lam + 2 * w / lam) * 2 * dx
            raise ValueError(
                f"{name} lens: a fiber {far:g} m off axis tilts its beam to {u_max:g} 1/m at "
                f"{lam:g} m, above the grid's Nyquist frequency {1 / (2 * dx):g} 1/m; use a "
                f"focal length >= {f_min:g} m, a smaller fiber pitch, or a finer grid."
            )


def _inverse_sqrt_if_overlapping(gram: torch.Tensor) -> torch.Tensor | None:
    """``G^(-1/2)`` ``(L, M, M)`` float64 when an off-diagonal ``|G_jk|`` exceeds
    ``OVERLAP_TOLERANCE``; ``None`` for (numerically) orthogonal modes."""
    m = gram.shape[-1]
    off = gram - torch.diag_embed(torch.diagonal(gram, dim1=-2, dim2=-1))
    if m < 2 or off.abs().max().item() <= OVERLAP_TOLERANCE:
        return None
    vals, vecs = torch.linalg.eigh(gram)
    if vals.min().item() <= 1e-9:
        raise ValueError(
            f"the fiber modes are nearly linearly dependent (smallest Gram eigenvalue "
            f"{vals.min().item():.2e}): two fibers (almost) coincide. Move the fibers apart "
            "(positions_m / fiber pitch)."
        )
    return vecs @ torch.diag_embed(vals.rsqrt()) @ vecs.transpose(-1, -2)


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.complex128 else torch.float32


class FiberArray(nn.Module):
    """An array of ``M`` single-mode fibers: input facet -> latent -> output facet.

    Args:
        input_grid: grid of the field arriving at the input facets.
        output_grid: grid of the emitted field (same wavelengths; any pitch / shape).
        positions_m: ``(M, 2)`` input-facet centres ``[y, x]`` in metres (grid coordinates).
        output_positions_m: ``(M, 2)`` output-facet centres; defaults to ``positions_m``.
        mode_field_diameter_m: MFD (m), one for all wavelengths or one per wavelength
            (required; ``None`` raises -- see :meth:`from_spec` to derive it).
        loss_db: per-fiber insertion loss in dB, scalar or ``(M,)``, >= 0.
        phase_rad: per-fiber phase ``(M,)`` (e.g. from length differences); default 0.
        input_lens_focal_length_m, output_lens_focal_length_m: ``None`` (the facets sit
            on the grid's plane), or the focal length of a thin lens forming a 2f system
            between the grid's plane and the facets (:func:`fourier_mode_table`): each
            fiber then couples from / emits onto the whole aperture a broad beam tilted by
            its position over ``f``. Positions stay facet coordinates.

    ``loss_db`` and ``phase_rad`` are persistent buffers (a device's calibration);
    the 1-D mode tables are non-persistent buffers rebuilt for the field's
    device / precision. Latents are ``(B, L, M)`` complex, sqrt(W).
    """

    def __init__(
        self,
        input_grid: Grid,
        output_grid: Grid,
        positions_m: torch.Tensor,
        output_positions_m: torch.Tensor | None = None,
        mode_field_diameter_m: float | Sequence[float] | None = None,
        loss_db: float | torch.Tensor = 0.0,
        phase_rad: torch.Tensor | None = None,
        input_lens_focal_length_m: float | None = None,
        output_lens_focal_length_m: float | None = None,
    ) -> None:
        super().__init__()
        self.lens_focal_lengths_m: dict[str, float | None] = {
            "in": _optional_focal_length("input_lens_focal_length_m", input_lens_focal_length_m),
            "out": _optional_focal_length("output_lens_focal_length_m", output_lens_focal_length_m),
        }
        if mode_field_diameter_m is None:
            raise ValueError(
                "mode_field_diameter_m is required (no default: it depends on fiber and "
                "wavelength); pass e.g. mode_field_diameter_m=10.4e-6 (SMF-28 at 1550 nm) or use "
                "FiberArray.from_spec(..., FiberSpec(core_radius_m=..., numerical_aperture=...))."
            )
        if tuple(output_grid.wavelengths_m) != tuple(input_grid.wavelengths_m):
            raise ValueError(
                f"output_grid wavelengths {output_grid.wavelengths_m} differ from input_grid "
                f"wavelengths {input_grid.wavelengths_m}; fibers keep each wavelength, so build "
                "both grids with the same wavelengths_m."
            )
        self.input_grid = input_grid
        self.output_grid = output_grid
        mfd = _per_wavelength(mode_field_diameter_m, input_grid.n_wavelengths)
        self.mode_field_diameters_m: tuple[float, ...] = mfd
        waists = tuple(d / 2 for d in mfd)
        self.positions_m = _as_positions("positions_m", positions_m)
        m = self.positions_m.shape[0]
        out_pos = positions_m if output_positions_m is None else output_positions_m
        self.output_positions_m = _as_positions("output_positions_m", out_pos, m)
        for tag, name, grid, pos in (
            ("in", "input", input_grid, self.positions_m),
            ("out", "output", output_grid, self.output_positions_m),
        ):
            f = self.lens_focal_lengths_m[tag]
            if f is None:
                _check_sampling(name, grid, pos, waists)
            else:
                _check_lens_sampling(name, grid, pos, waists, f)
        _warn_overlap("positions_m", self.positions_m, max(waists))
        if output_positions_m is not None:
            _warn_overlap("output_positions_m", self.output_positions_m, max(waists))

        self.register_buffer("loss_db", self._per_fiber("loss_db", loss_db, m, nonneg=True))
        phase = 0.0 if phase_rad is None else phase_rad
        self.register_buffer("phase_rad", self._per_fiber("phase_rad", phase, m, nonneg=False))
        for key, table in self._build_tables(torch.device("cpu"), torch.float32).items():
            self.register_buffer(key, table, persistent=False)
        self._tables_dtype = torch.float32  # precision the tables were computed in
        # exact projection for overlapping modes: G^(-1/2) per facet and wavelength, or None
        self._orthonormalisers = {
            tag: _inverse_sqrt_if_overlapping(self.mode_overlap(facet))
            for tag, facet in (("in", "input"), ("out", "output"))
        }

    @classmethod
    def from_spec(
        cls,
        input_grid: Grid,
        output_grid: Grid,
        positions_m: torch.Tensor,
        spec: FiberSpec,
        output_positions_m: torch.Tensor | None = None,
        loss_db: float | torch.Tensor = 0.0,
        phase_rad: torch.Tensor | None = None,
    ) -> FiberArray:
        """Build from a :class:`FiberSpec` (MFD per wavelength of ``input_grid``)."""
        mfd = spec.mode_field_diameters_m(input_grid.wavelengths_m)
        return cls(
            input_grid, output_grid, positions_m, output_positions_m, mfd, loss_db, phase_rad
        )

    @staticmethod
    def _per_fiber(name: str, value, m: int, nonneg: bool) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=torch.float64).detach().cpu().clone()
        if t.ndim == 0:
            t = t.expand(m).clone()
        if t.shape != (m,):
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}; give a scalar or one value per fiber ({m},)."
            )
        if not torch.isfinite(t).all():
            raise ValueError(
                f"{name} contains non-finite values {t.tolist()}; give finite numbers."
            )
        if nonneg and (t < 0).any():
            k = int((t < 0).nonzero()[0])
            raise ValueError(
                f"{name}[{k}]={t[k].item():g} dB is negative; a passive fiber cannot amplify. "
                "Give insertion losses >= 0 dB."
            )
        return t

    @property
    def n_fibers(self) -> int:
        return self.positions_m.shape[0]

    def _build_tables(self, device, dtype) -> dict[str, torch.Tensor]:
        tables: dict[str, list[torch.Tensor]] = {
            "mode_y_in": [],
            "mode_x_in": [],
            "mode_y_out": [],
            "mode_x_out": [],
        }
        lams = self.input_grid.wavelengths_m
        for mfd, lam in zip(self.mode_field_diameters_m, lams, strict=True):
            for tag, grid, pos in (
                ("in", self.input_grid, self.positions_m),
                ("out", self.output_grid, self.output_positions_m),
            ):
                y, x = grid.axes()
                y, x = y.double(), x.double()
                f = self.lens_focal_lengths_m[tag]
                if f is None:
                    dx = grid.pixel_pitch_m
                    ty = gaussian_mode_table(y, pos[:, 0], mfd / 2, dx)
                    tx = gaussian_mode_table(x, pos[:, 1], mfd / 2, dx)
                else:
                    sign = 1 if tag == "in" else -1
                    ty = fourier_mode_table(y, pos[:, 0], mfd / 2, lam, f, sign)
                    tx = fourier_mode_table(x, pos[:, 1], mfd / 2, lam, f, sign)
                tables[f"mode_y_{tag}"].append(ty)
                tables[f"mode_x_{tag}"].append(tx)
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        return {
            k: torch.stack(v).to(device=device, dtype=cdtype if v[0].is_complex() else dtype)
            for k, v in tables.items()
        }

    def _tables_for(self, like: torch.Tensor, tag: str) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = _real_dtype(like.dtype)
        gy, hx = getattr(self, f"mode_y_{tag}"), getattr(self, f"mode_x_{tag}")
        table_dtype = gy.real.dtype if gy.is_complex() else gy.dtype
        if gy.device != like.device or table_dtype != dtype or self._tables_dtype != dtype:
            # rebuilt from float64, never up-cast from float32 (e.g. after module.double()),
            # so complex128 runs keep the exact discrete normalisation
            for key, table in self._build_tables(like.device, dtype).items():
                setattr(self, key, table)
            self._tables_dtype = dtype
            gy, hx = getattr(self, f"mode_y_{tag}"), getattr(self, f"mode_x_{tag}")
        return gy, hx

    def check_latent(self, latent: torch.Tensor, name: str = "latent") -> torch.Tensor:
        """Validate a complex ``(B, L, M)`` latent; return it unchanged."""
        if not isinstance(latent, torch.Tensor) or not latent.is_complex():
            got = latent.dtype if isinstance(latent, torch.Tensor) else type(latent).__name__
            raise ValueError(
                f"{name} must be a complex tensor (B, L, M), got {got}; use couple() output."
            )
        n_l, m = self.input_grid.n_wavelengths, self.n_fibers
        if latent.ndim != 3 or latent.shape[1] != n_l or latent.shape[2] != m:
            raise ValueError(
                f"{name} has shape {tuple(latent.shape)}; expected (batch, {n_l}, {m}) = "
                f"(batch, wavelengths, fibers) for this FiberArray."
            )
        return latent

    def _orthonormalise(self, latent: torch.Tensor, tag: str) -> torch.Tensor:
        """``G^(-1/2) latent`` on facet ``tag`` when its modes overlap, else ``latent``."""
        t = self._orthonormalisers[tag]
        if t is None:
            return latent
        t = t.to(device=latent.device, dtype=latent.dtype)
        return torch.einsum("lkj,blj->blk", t, latent)

    def couple(self, field: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, L, M)`` (sqrt(W)) of a ``(B, L, H, W)`` field on ``input_grid``.

        The overlap with each mode, orthonormalised when modes overlap (module docstring),
        so ``sum |latent|^2`` is the power coupled into the array.
        """
        self.input_grid.check_field(field)
        gy, hx = self._tables_for(field, "in")
        c = couple_separable(field, gy, hx, self.input_grid.pixel_pitch_m)
        return self._orthonormalise(c, "in")

    def transmission(self, device=None, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        r"""Per-fiber amplitude transmission :math:`t_k=10^{-loss_k/20}e^{i\phi_k}`, ``(M,)``."""
        amp = torch.pow(10.0, -self.loss_db.double() / 20)
        return torch.polar(amp, self.phase_rad.double()).to(device=device, dtype=dtype)

    def transmit(self, latent: torch.Tensor) -> torch.Tensor:
        """Apply per-fiber loss and phase: ``latent * t`` (power scales by ``10^(-dB/10)``)."""
        self.check_latent(latent)
        return latent * self.transmission(latent.device, latent.dtype)

    def emit(self, latent: torch.Tensor) -> torch.Tensor:
        """Field ``(B, L, H', W')`` on ``output_grid``: each fiber's mode times its latent."""
        self.check_latent(latent)
        gy, hx = self._tables_for(latent, "out")
        return emit_separable(self._orthonormalise(latent, "out"), gy, hx)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """couple -> transmit -> emit."""
        return self.emit(self.transmit(self.couple(field)))

    def coupling_efficiency(self, field: torch.Tensor) -> torch.Tensor:
        """Fraction ``sum_k |c_k|^2 / P_in`` of input power coupled in, ``(B, L)`` (0 if dark)."""
        c = self.couple(field)
        coupled = (c.real.square() + c.imag.square()).sum(-1)
        p_in = power(field, self.input_grid)
        return torch.where(p_in > 0, coupled / torch.where(p_in > 0, p_in, 1.0), 0.0)

    def mode_fields(self, facet: str = "input") -> torch.Tensor:
        """The unit-power modes as this array samples them, ``(M, L, H, W)`` float64 (real
        for facets on the grid, complex128 behind a lens): ``couple`` of mode ``k`` (as a
        field, e.g. via :func:`lightgen.optics.grid.as_field`) gives 1 in fiber ``k``
        (before orthonormalisation of overlapping modes)."""
        tag = self._facet_tag(facet)
        t = self._build_tables(torch.device("cpu"), torch.float64)
        gy, hx = t[f"mode_y_{tag}"], t[f"mode_x_{tag}"]  # (L, H, M), (L, W, M)
        return torch.einsum("lhm,lwm->mlhw", gy, hx)

    def _facet_tag(self, facet: str) -> str:
        if facet not in ("input", "output"):
            raise ValueError(f"facet={facet!r} is unknown; choose 'input' or 'output'.")
        return "in" if facet == "input" else "out"

    def mode_overlap(self, facet: str = "input") -> torch.Tensor:
        r"""Gram matrix :math:`G_{jk}=\sum\psi_j\psi_k\Delta x^2`, ``(L, M, M)`` float64.

        Identity for well-separated fibers; for equal waists the continuous value is
        :math:`e^{-d_{jk}^2/2w^2}`. When an off-diagonal entry exceeds
        ``OVERLAP_TOLERANCE``, ``couple``/``emit`` use the orthonormalised modes
        :math:`\psi G^{-1/2}` (module docstring), so ``emit`` then ``couple`` on the same
        grid returns the latent itself.
        """
        tag = self._facet_tag(facet)
        grid = self.input_grid if facet == "input" else self.output_grid
        if self.lens_focal_lengths_m[tag] is not None:
            # the 2f lens is unitary: the overlap is the facet spots' own, exp(-d^2 / 2w^2)
            pos = self.positions_m if tag == "in" else self.output_positions_m
            d2 = torch.cdist(pos, pos).square()
            return torch.stack(
                [torch.exp(-d2 / (2 * (mfd / 2) ** 2)) for mfd in self.mode_field_diameters_m]
            )
        t = self._build_tables(torch.device("cpu"), torch.float64)
        gy, hx = t[f"mode_y_{tag}"], t[f"mode_x_{tag}"]
        dx = grid.pixel_pitch_m
        return (gy.transpose(-1, -2) @ gy) * (hx.transpose(-1, -2) @ hx) * dx * dx

    def extra_repr(self) -> str:
        mfd = ", ".join(f"{d:g}" for d in self.mode_field_diameters_m)
        return (
            f"n_fibers={self.n_fibers}, mode_field_diameter_m=({mfd}), "
            f"input={self.input_grid.shape}@{self.input_grid.pixel_pitch_m:g}m, "
            f"output={self.output_grid.shape}@{self.output_grid.pixel_pitch_m:g}m"
        )
