r"""Free-space propagation of scalar fields: kernels, a planner, and a module.

Two layers (see docs/physics.md):

* pure functions -- :func:`asm_transfer_function`, :func:`fresnel_transfer_function`,
  :func:`rs_impulse_response`, :func:`propagate`, :func:`fraunhofer_lens` -- easy to
  test against closed forms;
* :class:`FreeSpace`, a ``torch.nn.Module`` that plans once and caches its transfer
  function as a non-persistent buffer (never a Parameter).

:func:`plan_propagation` picks the padding from the geometry and refuses sampling that
cannot represent the hop. Light on a grid of pitch :math:`\Delta x` travels at most at
:math:`\sin\theta_{max}=\min(1, \lambda/2\Delta x)`, so over :math:`z` it spreads by
:math:`s = |z|\tan\theta_{max}`: ``padding="auto"`` zero-pads by the spread plus a guard
for the impulse response's tail (:func:`spread_samples`, :func:`guard_samples`, at most
``N``) and band-limits the angular spectrum so that no plane wave moves further than the
padding (Matsushima & Shimobaba 2009, Opt. Express 17, 19662, generalised to any
padding and the exact 2-D displacement): wrap-around then never reaches the window,
and the result is the open-boundary convolution. Where the exact windowed kernel
(``padding="linear"``, :func:`asm_windowed_kernel`: the unbounded impulse response cut
to the offsets a window can see, convolved on ``>= 2N - 1`` samples) is about as small
(``AUTO_LINEAR_AREA``), ``"auto"`` plans that instead -- exact, but built on a fine
lattice per wavelength and distance (see :func:`propagate` for scans over ``z``).
``padding="periodic"`` treats the window as one period of a periodic field. Each rule,
its derivation and its measured accuracy: docs/physics.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypedDict, Unpack

import torch
from torch import nn

from lightgen._checks import require_finite, require_int_range, require_positive
from lightgen.optics.fft import fft2_unscaled, next_fast_size, padded_fft_filter
from lightgen.optics.grid import Grid, centred_start

Method = Literal["asm", "fresnel", "rs"]
Padding = Literal["auto", "linear", "periodic"] | int | tuple[int, int]
METHODS: tuple[str, ...] = ("asm", "fresnel", "rs")


@dataclass(frozen=True)
class PropagationPlan:
    """How one propagation is sampled.

    Attributes:
        method: ``"asm"`` (band-limited angular spectrum), ``"fresnel"`` (Fresnel
            transfer function) or ``"rs"`` (Rayleigh-Sommerfeld direct integration).
        grid: input and output grid (propagation keeps the grid).
        distance_m: propagation distance in metres (negative: backwards).
        padded_shape: ``(Hp, Wp)`` FFT size; the field sits in the top-left corner.
        bandwidth_fraction: for ``asm``, per wavelength, min over axes of
            ``u_lim / min(u_nyquist, 1/lambda)``: the kept part of the band that light can
            use (1.0 when nothing is cut; :func:`propagating_band_limit`).
        periodic: the window is one period of a periodic field (``padding='periodic'``):
            no padding, no band limit, and the circular convolution is the exact answer.
        linear: ``padding='linear'`` (``asm`` only): the kernel is the windowed impulse
            response (:func:`asm_windowed_kernel`) on a ``>= 2N-1`` grid -- the exact
            open-boundary convolution of the window, cropped to the window, over the full
            Nyquist band (no band limit, no wrapped tail).
    """

    method: str
    grid: Grid
    distance_m: float
    padded_shape: tuple[int, int]
    bandwidth_fraction: tuple[float, ...]
    periodic: bool = False
    linear: bool = False

    @property
    def padding(self) -> tuple[int, int]:
        return (
            self.padded_shape[0] - self.grid.shape[0],
            self.padded_shape[1] - self.grid.shape[1],
        )


AUTO_LINEAR_AREA = 1.25
"""``'auto'`` plans ``'linear'`` when its 2N-1 grid is at most this much bigger (in samples):
about that size the exact plan is no slower per step than the periodised one
(measured in docs/performance.md)."""

DEFAULT_TAIL_TOLERANCE = 1e-5
"""Energy fraction of the impulse response that ``padding='auto'`` may leave outside.

Accuracy first: a field's relative error from the wrapped tail is about the square root
of this fraction where light reaches the window edge (2e-3 left 4e-2 intensity error on
five hops of random phase masks at N = 512; 1e-4 still 2e-2)."""

FAST_TAIL_TOLERANCE = 2e-3
"""The chips' setting (``ChipConfig.propagation_tail_tolerance``): smaller FFTs on short
hops; trained chips move by about 1 % against the exact plan (docs/physics.md)."""


class PlanOptions(TypedDict, total=False):
    """How a hop is sampled: the keyword-only options of :func:`plan_propagation`,
    :func:`propagate` and :class:`FreeSpace` (each optional; defaults in
    :data:`PLAN_DEFAULTS`).

    Keys:
        method: ``"asm"`` (default), ``"fresnel"`` or ``"rs"`` (see :class:`PropagationPlan`).
        padding: ``"auto"`` (default; geometry-based, see the module docstring),
            ``"periodic"`` (the window is one period of a periodic field: no padding, no
            band limit, no sampling limit -- the DFT samples the transfer function exactly
            at the field's harmonics; not for ``rs``), ``"linear"`` (``asm`` only: exact
            open-boundary convolution over the full Nyquist band on a ``>= 2N-1`` grid,
            kernel from :func:`asm_windowed_kernel`; accuracy first, see the module
            docstring), or zero-padding samples ``P`` / ``(Py, Px)``. ``"auto"`` and
            ``"linear"`` may build the windowed kernel, a fine-lattice FFT per wavelength
            and distance (seconds; see :func:`propagate` for scans over ``z``).
        min_bandwidth_fraction: ``asm`` raises when the band limit keeps less than this
            fraction of the grid's Nyquist band (default 0.25).
        tail_tolerance: for ``padding='auto'``, the energy fraction of the impulse
            response allowed outside the padding (:func:`guard_samples`); smaller is more
            accurate and pads more (at 532 nm, 8 um, 5 cm: guard 33 samples at 2e-3, 228 at
            1e-4, 705 at 1e-5, the default). The total padding stays <= N per axis.
    """

    method: Method
    padding: Padding
    min_bandwidth_fraction: float
    tail_tolerance: float


PLAN_DEFAULTS: PlanOptions = {
    "method": "asm",
    "padding": "auto",
    "min_bandwidth_fraction": 0.25,
    "tail_tolerance": DEFAULT_TAIL_TOLERANCE,
}
"""The one defaults table of :class:`PlanOptions`."""


def _with_defaults(options: PlanOptions) -> PlanOptions:
    """``options`` over :data:`PLAN_DEFAULTS`; an unknown key raises ``TypeError`` naming the keys."""
    unknown = sorted(set(options) - set(PLAN_DEFAULTS))
    if unknown:
        raise TypeError(
            f"unknown propagation option(s) {', '.join(map(repr, unknown))}; the options "
            f"(keyword-only, PlanOptions) are {', '.join(PLAN_DEFAULTS)}."
        )
    return {**PLAN_DEFAULTS, **options}


@functools.lru_cache(maxsize=256)
def _guard_for(
    wavelength_m: float, pitch_m: float, distance_m: float, spread: int, tail_tolerance: float
) -> int:
    """Smallest ``m`` whose 1-D tail energy beyond ``spread + m`` samples is at most
    ``tail_tolerance / 2``.

    The tail comes from the unbounded-window kernel
    ``h = IDFT[exp(i 2 pi z sqrt(1/lambda^2 - f^2))]`` over the grid's Nyquist band,
    computed in float64 on a window of >= 8 x the spread (at most 2^20 samples; if the
    tolerance is not reached inside it, the whole half-window is returned).
    """
    size = min(1 << max(12, math.ceil(math.log2(8 * (spread + 512)))), 1 << 20)
    f = torch.fft.fftfreq(size, d=pitch_m, dtype=torch.float64)
    kz = 2 * math.pi * torch.sqrt((1 / wavelength_m**2 - f**2).clamp_min(0))
    h = torch.fft.ifft(torch.polar(torch.ones_like(kz), kz * distance_m))
    energy = h.abs().square()
    x = torch.fft.fftfreq(size, d=1 / size, dtype=torch.float64).abs().long()
    per_offset = torch.bincount(x, weights=energy / energy.sum())  # energy at |x| = j
    beyond = per_offset.flip(0).cumsum(0).flip(0)[1:]  # beyond[j] = energy at |x| > j
    tail = beyond[min(spread, len(beyond) - 1) :]  # tail[m]: energy beyond spread + m
    below = torch.nonzero(tail <= tail_tolerance / 2)
    return int(below[0]) if len(below) else len(tail)


def guard_samples(
    grid: Grid, distance_m: float, tail_tolerance: float = DEFAULT_TAIL_TOLERANCE
) -> int:
    """Extra zero-padding beyond the geometric spread so the impulse response fits.

    The discrete ASM impulse response is a chirp filling ``|x| <= spread`` with Fresnel
    ringing outside that decays only as ~1/x (the hard edge of the sampled band at
    Nyquist). Whatever lies beyond the padding wraps around. The guard is the smallest
    ``m`` for which the 2-D kernel keeps all but ``tail_tolerance`` of its energy inside
    ``|x|, |y| <= spread + m`` (per axis ``tail_tolerance / 2``: the kernel is separable
    to within the paraxial approximation), for the worst wavelength.
    """
    require_positive(
        "tail_tolerance", tail_tolerance, "e.g. 1e-5 (the default) or 2e-3 (the chips')."
    )
    if tail_tolerance >= 1:
        raise ValueError(f"tail_tolerance={tail_tolerance!r} must be < 1, e.g. 1e-5.")
    if distance_m == 0:
        return 0
    spread = spread_samples(grid, distance_m)
    if spread >= 1 << 20:
        return 0
    pitch, z = float(grid.pixel_pitch_m), abs(float(distance_m))
    return max(
        _guard_for(float(lam), pitch, z, spread, float(tail_tolerance))
        for lam in grid.wavelengths_m
    )


def spread_samples(grid: Grid, distance_m: float) -> int:
    """Lateral spread ``|z| tan(theta_max) / pitch`` in samples (longest wavelength)."""
    sin_t = min(1.0, max(grid.wavelengths_m) / (2 * grid.pixel_pitch_m))
    if sin_t >= 1.0:
        return 1 << 30
    return math.ceil(abs(distance_m) * sin_t / math.sqrt(1 - sin_t**2) / grid.pixel_pitch_m)


def plan_propagation(
    grid: Grid, distance_m: float, **options: Unpack[PlanOptions]
) -> PropagationPlan:
    """Choose zero padding and check that the sampling can represent the propagation.

    Args:
        grid: the field's grid (the output keeps it).
        distance_m: propagation distance in metres; negative propagates backwards.
        **options: keyword-only ``method``, ``padding``, ``min_bandwidth_fraction``,
            ``tail_tolerance`` (:class:`PlanOptions`, defaults :data:`PLAN_DEFAULTS`).

    Rules (raise ``ValueError`` naming the fix when broken):
      * ``asm``: see module docstring; band limit keeps >= ``min_bandwidth_fraction``.
      * ``fresnel``: transfer-function sampling needs ``|z| <= L*dx/lambda`` with
        ``L`` the padded width in samples times ``dx`` (Voelz & Roggemann 2009,
        Appl. Opt. 48, 6132).
      * ``rs``: impulse-response sampling needs the kernel's local frequency at the
        window edge below Nyquist: ``L/sqrt(L^2+z^2) <= lambda/(2 dx)`` with
        ``L = max(H, W) dx``; padding is always to ``>= 2N-1`` (linear convolution).
    """
    opts = _with_defaults(options)
    method, padding = opts["method"], opts["padding"]
    min_bandwidth_fraction, tail_tolerance = opts["min_bandwidth_fraction"], opts["tail_tolerance"]
    try:  # require_finite lets float()'s own message through for non-numbers
        z = float(distance_m)
    except (TypeError, ValueError):
        raise ValueError(
            f"distance_m={distance_m!r} is not a number; give metres, e.g. 5e-2."
        ) from None
    z = require_finite("distance_m", z, "Give the distance in metres, e.g. 5e-2.")
    if not 0 < min_bandwidth_fraction <= 1:
        raise ValueError(
            f"min_bandwidth_fraction={min_bandwidth_fraction!r} must be in (0, 1], e.g. 0.25."
        )
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {METHODS}.")
    dx = grid.pixel_pitch_m
    h, w = grid.shape
    # >= 2N-1 per axis: a circular convolution of this size is a linear one on the window
    full = (next_fast_size(2 * h - 1, 4), next_fast_size(2 * w - 1, 4))
    windowed = PropagationPlan(method, grid, z, full, (1.0,) * grid.n_wavelengths, linear=True)
    if method == "rs":
        if z == 0:
            raise ValueError("distance_m=0 with method='rs': the RS kernel is singular; use 'asm'.")
        if padding == "periodic":
            raise ValueError(
                "padding='periodic' with method='rs': direct integration is an open-boundary "
                "method; use method='asm' (or 'fresnel') for periodic fields."
            )
        padded = full
    elif padding == "periodic":
        # the DFT samples the transfer function exactly at the field's own harmonics
        return PropagationPlan(method, grid, z, (h, w), (1.0,) * grid.n_wavelengths, True)
    elif padding == "linear":
        if method != "asm":
            raise ValueError(
                f"padding='linear' with method={method!r}: the windowed impulse response is "
                "built from the angular spectrum; use method='asm' ('rs' always pads to 2N-1)."
            )
        _fine_lattice(grid, z)  # raises when the impulse response is too wide
        return windowed
    elif isinstance(padding, str):
        if padding != "auto":
            raise ValueError(
                f"padding={padding!r} is unknown; pass 'auto', 'linear', 'periodic' or a "
                "sample count."
            )
        p = spread_samples(grid, z) + guard_samples(grid, z, tail_tolerance)
        padded = (next_fast_size(h + min(p, h), 4), next_fast_size(w + min(p, w), 4))
        if method == "asm" and full[0] * full[1] <= AUTO_LINEAR_AREA * padded[0] * padded[1]:
            try:  # the exact kernel at (about) the same FFT size: take it
                _fine_lattice(grid, z)
            except ValueError:
                pass  # the impulse response is too wide for the fine lattice: periodise
            else:
                return windowed
    else:
        fix = "Pass zero-padding samples per axis as an int >= 0 or (ph, pw), or 'auto'."
        pair = tuple(padding) if isinstance(padding, tuple | list) else (padding, padding)
        if len(pair) != 2:
            raise ValueError(f"padding={padding!r} has {len(pair)} entries. {fix}")
        ph, pw = pair
        ph = require_int_range("padding[0]", ph, 0, fix=fix)
        pw = require_int_range("padding[1]", pw, 0, fix=fix)
        padded = (h + ph, w + pw)

    fractions: list[float] = []
    for i, lam in enumerate(grid.wavelengths_m):
        channel = _channel_note(grid, i)
        if method == "asm":
            # measured against the band light can use: propagating waves fill |u| < 1/lambda,
            # so on a sub-half-wavelength grid the rest of the Nyquist band carries only
            # evanescent waves, which the band limit never has to keep
            band = propagating_band_limit(lam, dx)
            frac = min(
                _asm_band_limit(lam, z, (pn - n) * dx) / band
                for pn, n in zip(padded, grid.shape, strict=True)
            )
            frac = min(frac, 1.0)
            if frac < min_bandwidth_fraction:
                why = (
                    f"distance_m={z:g} is too far for band-limited ASM on this grid"
                    if isinstance(padding, str)
                    else f"padding={padding!r} is too small for distance_m={z:g}"
                )
                raise ValueError(
                    f"{why} ({h}x{w} at pitch {dx:g} m, {channel}, padded to "
                    f"{padded[0]}x{padded[1]}): the band limit keeps only {frac:.1%} of the "
                    f"propagating band min(1/(2dx), 1/lambda) (< {min_bandwidth_fraction:.0%}). Use a lens and "
                    "fraunhofer_lens(), a bigger grid, padding='auto', or pass a smaller "
                    "min_bandwidth_fraction if you accept the low-pass."
                )
            fractions.append(frac)
        elif method == "fresnel":
            limit = min(padded) * dx * dx / lam
            if abs(z) > limit:
                raise ValueError(
                    f"distance_m={z:g} exceeds the Fresnel transfer-function sampling limit "
                    f"L*dx/lambda={limit:g} m for this grid ({channel}). Use method='rs' "
                    "(impulse response) or 'asm'."
                )
            fractions.append(1.0)
        else:
            sin_nyq = lam / (2 * dx)
            window = max(h, w) * dx
            if sin_nyq < 1 and window / math.hypot(window, z) > sin_nyq:
                zmin = window * math.sqrt(1 / sin_nyq**2 - 1)
                raise ValueError(
                    f"distance_m={z:g} is too short for Rayleigh-Sommerfeld direct integration on "
                    f"this grid ({channel}; the kernel aliases at the edge); need |z| >= "
                    f"{zmin:g} m. Use method='asm' for short distances."
                )
            fractions.append(1.0)
    return PropagationPlan(method, grid, z, padded, tuple(fractions))


def _channel_note(grid: Grid, index: int) -> str:
    """Which wavelength channel failed, and how to leave out channels not propagated."""
    lam = grid.wavelengths_m[index]
    if grid.n_wavelengths == 1:
        return f"wavelength {lam:g} m"
    return (
        f"wavelength channel {index} ({lam:g} m) of {grid.n_wavelengths}; every channel of the "
        "grid is checked, so plan on a Grid of only the wavelengths you propagate"
    )


def propagating_band_limit(wavelength_m: float, pixel_pitch_m: float) -> float:
    """Largest spatial frequency (1/m) of light on the grid: ``min(1/(2 dx), 1/lambda)``.

    Nyquist bounds what the grid holds; ``1/lambda`` what propagates (beyond it the
    angular spectrum is evanescent). Band-limit fractions are measured against this.
    """
    return min(1.0 / (2.0 * pixel_pitch_m), 1.0 / wavelength_m)


def _asm_band_limit(wavelength_m: float, distance_m: float, padding_m: float) -> float:
    """Largest spatial frequency (1/m) whose plane wave moves <= ``padding_m`` over the distance."""
    if distance_m == 0:
        return math.inf
    if padding_m <= 0:
        return 0.0
    return padding_m / (wavelength_m * math.hypot(distance_m, padding_m))


def _frequencies(n: int, dx: float, device) -> torch.Tensor:
    return torch.fft.fftfreq(n, d=dx, device=device, dtype=torch.float64)


def asm_transfer_function(
    plan: PropagationPlan, device=None, dtype=torch.complex64
) -> torch.Tensor:
    r"""Band-limited angular-spectrum transfer function, shape ``(L, Hp, Wp)``.

    :math:`H(u,v)=\exp\!\big(i2\pi z\sqrt{\lambda^{-2}-u^2-v^2}\big)` for propagating
    waves, :math:`\exp(-2\pi|z|\sqrt{u^2+v^2-\lambda^{-2}})` for evanescent ones (dropped
    when ``z < 0``), zero for plane waves displaced by more than the padding (the band
    limit of the module docstring; Matsushima & Shimobaba 2009). Built in
    float64 (``kz`` reaches ~1e6 rad), then cast; carries the ``1/(Hp*Wp)`` inverse-DFT
    normalisation so that propagation uses unscaled transforms only.
    """
    grid, z = plan.grid, plan.distance_m
    hp, wp = plan.padded_shape
    dx = grid.pixel_pitch_m
    fy = _frequencies(hp, dx, device)[:, None]
    fx = _frequencies(wp, dx, device)[None, :]
    # lateral room each plane wave may use, per axis (the zero padding), in metres
    room_y, room_x = (hp - grid.shape[0]) * dx, (wp - grid.shape[1]) * dx
    out = []
    for lam in grid.wavelengths_m:
        arg = 1.0 / lam**2 - fx**2 - fy**2
        prop = arg > 0
        root = torch.sqrt(arg.abs())
        phase = 2 * math.pi * z * root
        # displacement of plane wave (u, v) over z is z*u/sqrt(1/lam^2-u^2-v^2) along x:
        # keep it <= the padding (squared form, no division; exact in 2-D)
        fits = ((z * fx) ** 2 <= room_x**2 * arg) & ((z * fy) ** 2 <= room_y**2 * arg)
        if plan.periodic:
            fits = torch.ones_like(prop)
        keep = (prop & fits) | (~prop & (z > 0))  # evanescent waves decay, never wrap
        amp = torch.where(prop, torch.ones_like(root), torch.exp(-2 * math.pi * abs(z) * root))
        amp = torch.where(keep | (z == 0), amp, torch.zeros_like(amp))
        out.append(torch.polar(amp / (hp * wp), phase))
    return torch.stack(out).to(dtype)


MAX_FINE_LATTICE = 1 << 14
"""Largest fine lattice (samples per axis) :func:`asm_windowed_kernel` may use."""

FINE_LATTICE_MARGIN = 4096
"""Samples beyond the geometric cone that the fine lattice keeps clear of aliasing."""


def _sub_half_wavelength(grid: Grid, wavelength_m: float) -> bool:
    """The grid's Nyquist band holds every propagating wave of this wavelength (dx <= lambda/2)."""
    return wavelength_m >= 2 * grid.pixel_pitch_m


def _fine_lattice(grid: Grid, distance_m: float) -> tuple[int, int]:
    """Fine-lattice size ``(Qy, Qx)`` for :func:`asm_windowed_kernel`.

    Only wavelengths with ``lambda < 2 dx`` use the fine lattice; on a sub-half-wavelength
    grid the sampled Rayleigh-Sommerfeld kernel is the exact windowed kernel (no cone
    to alias, see :func:`asm_windowed_kernel`), so such a grid never needs one
    (returns ``(0, 0)`` when no wavelength needs it).

    The inverse DFT on ``Q`` samples returns the unbounded-window impulse response
    periodised with period ``Q``, so offsets ``|d| <= N-1`` pick up what lies beyond
    ``Q - N``. Rule: ``Q >= 8N`` and ``Q >= 2(N + s) + FINE_LATTICE_MARGIN`` (``s`` the
    geometric spread, :func:`spread_samples`): the aliased part is the Fresnel tail more
    than ``max(7N, s + 4096)`` samples out (per hop 2.3e-4 relative L2 on a white field
    at 532 nm / 8 um / 5 cm, N = 128, against a 12,000-sample margin; docs/physics.md).
    """
    coarse = [lam for lam in grid.wavelengths_m if not _sub_half_wavelength(grid, lam)]
    if not coarse:
        return 0, 0
    sub = Grid(grid.shape, grid.pixel_pitch_m, tuple(coarse))
    spread = spread_samples(sub, distance_m) if distance_m else 0
    out = []
    for n in grid.shape:
        q = next_fast_size(
            max(8 * n, 2 * (n + min(spread, MAX_FINE_LATTICE)) + FINE_LATTICE_MARGIN), 4
        )
        if q > MAX_FINE_LATTICE:
            raise ValueError(
                f"padding='linear' for distance_m={distance_m:g} on a {n}-sample axis would "
                f"need a {q}-sample fine lattice (> {MAX_FINE_LATTICE}): the impulse response "
                "spreads too far or the window is too big. Use padding='auto', a lens and "
                "fraunhofer_lens(), or a coarser pitch."
            )
        out.append(q)
    return out[0], out[1]


def asm_windowed_kernel(
    plan: PropagationPlan, device=None, dtype=torch.complex64, block_rows: int = 256
) -> torch.Tensor:
    r"""DFT of the windowed impulse response of the angular spectrum, ``(L, Hp, Wp)``.

    The angular spectrum over the grid's whole Nyquist band,
    :math:`H(u,v)=\exp(i2\pi z\sqrt{\lambda^{-2}-u^2-v^2})` (evanescent waves decay for
    ``z > 0``, are dropped for ``z < 0``), has the discrete impulse response
    :math:`h[d_y,d_x]=\int\!\!\int_{\text{band}}H\,e^{i2\pi(u d_x+v d_y)\Delta x}\,du\,dv\,\Delta x^2`
    -- a chirp over the geometric cone with a slowly (~1/d) decaying Fresnel tail. An
    output pixel of the ``N``-sample window only ever sees offsets ``|d| <= N-1``, so
    :math:`h` cut to those offsets and circularly convolved on ``P >= 2N-1`` samples
    *is* the open-boundary convolution, cropped to the window -- exactly, whatever the
    field's spectrum (a white per-sample phase mask included), with no band limit
    (the periodised plan -- what ``padding='auto'`` uses where the 2N-1 grid would cost
    more -- periodises the whole kernel on a smaller grid and band-limits it, so its
    tail wraps). :math:`h` is evaluated as the inverse DFT of
    ``H`` on a fine lattice (:func:`_fine_lattice`), in float64, one block of rows at a
    time (memory ``Qy x (2N-1)``, not ``Qy x Qx``); the result carries the ``1/(Hp Wp)``
    normalisation of the unscaled transforms. Same idea as the Rayleigh-Sommerfeld
    direct integration (:func:`rs_impulse_response`), with the kernel taken from the
    band-limited angular spectrum instead of its closed form, so it stays correct at
    short distances where the sampled RS kernel aliases.
    """
    if not plan.linear:
        raise ValueError("asm_windowed_kernel needs a linear plan (padding='linear' or 'auto').")
    grid, z = plan.grid, plan.distance_m
    (h, w), (hp, wp) = grid.shape, plan.padded_shape
    qy, qx = _fine_lattice(grid, z)
    kernels = []
    for lam in grid.wavelengths_m:
        if _sub_half_wavelength(grid, lam):
            kernels.append(_sub_half_wavelength_kernel(grid, float(lam), z, hp, wp))
        else:
            kernels.append(
                _windowed_kernel(
                    float(lam), grid.pixel_pitch_m, z, h, w, hp, wp, qy, qx, block_rows
                )
            )
    return torch.stack(kernels).to(device=device, dtype=dtype)


def _sub_half_wavelength_kernel(grid: Grid, lam: float, z: float, hp: int, wp: int) -> torch.Tensor:
    """Windowed kernel of one wavelength with ``dx <= lambda/2``, complex128 ``(Hp, Wp)``.

    The grid's Nyquist band holds every propagating wave, so the sampled first
    Rayleigh-Sommerfeld kernel is the impulse response of the band (its evanescent part
    has decayed as ``exp(-2 pi |z| sqrt(1/(4dx^2) - 1/lambda^2))`` at the band edge; the
    planner's RS rule ``L/sqrt(L^2+z^2) <= lambda/(2dx)`` always holds here). Backwards
    (``z < 0``) it is the conjugate of the forward kernel, the inverse on the
    propagating band.
    """
    if z == 0:
        return torch.full((hp, wp), 1.0 / (hp * wp), dtype=torch.complex128)
    one = PropagationPlan(
        "rs", Grid(grid.shape, grid.pixel_pitch_m, (lam,)), abs(z), (hp, wp), (1.0,)
    )
    # the DFT of the conjugate of a kernel symmetric under x -> -x is the conjugate DFT
    kernel = rs_impulse_response(one, dtype=torch.complex128)[0]
    return kernel if z > 0 else kernel.conj()


@functools.lru_cache(maxsize=12)
def _windowed_kernel(
    lam: float,
    dx: float,
    z: float,
    h: int,
    w: int,
    hp: int,
    wp: int,
    qy: int,
    qx: int,
    block_rows: int,
) -> torch.Tensor:
    """One wavelength of :func:`asm_windowed_kernel`, complex128 on the CPU (cached: a
    chip rebuilt with the same geometry does not pay the fine lattice again)."""
    fy_all = _frequencies(qy, dx, None)
    fx = _frequencies(qx, dx, None)[None, :]
    # signed offsets kept: rows/cols 0..N-1 and -(N-1)..-1, placed at their circular index
    keep_x = torch.cat([torch.arange(w), torch.arange(qx - w + 1, qx)])
    keep_y = torch.cat([torch.arange(h), torch.arange(qy - h + 1, qy)])
    put_x = torch.cat([torch.arange(w), torch.arange(wp - w + 1, wp)])
    put_y = torch.cat([torch.arange(h), torch.arange(hp - h + 1, hp)])
    rows = torch.empty(qy, len(keep_x), dtype=torch.complex128)
    for start in range(0, qy, block_rows):
        fy = fy_all[start : start + block_rows, None]
        arg = 1.0 / lam**2 - fx**2 - fy**2
        prop = arg > 0
        root = torch.sqrt(arg.abs())
        amp = torch.where(prop, torch.ones_like(root), torch.exp(-2 * math.pi * abs(z) * root))
        if z < 0:
            amp = torch.where(prop, amp, torch.zeros_like(amp))
        spectrum = torch.polar(amp, torch.where(prop, 2 * math.pi * z * root, 0.0))
        rows[start : start + block_rows] = torch.fft.ifft(spectrum, dim=-1)[:, keep_x]
    impulse = torch.fft.ifft(rows, dim=0)[keep_y]  # (2N-1, 2N-1), float64 accuracy
    padded = torch.zeros(hp, wp, dtype=torch.complex128)
    padded[put_y[:, None], put_x[None, :]] = impulse
    return fft2_unscaled(padded) / (hp * wp)


def fresnel_transfer_function(
    plan: PropagationPlan, device=None, dtype=torch.complex64
) -> torch.Tensor:
    r"""Fresnel (paraxial) transfer function, ``(L, Hp, Wp)``:
    :math:`H=e^{ikz}\exp(-i\pi\lambda z(u^2+v^2))` (Goodman, *Fourier Optics*, eq. 4-21),
    with the inverse-DFT normalisation folded in."""
    grid, z = plan.grid, plan.distance_m
    hp, wp = plan.padded_shape
    fy = _frequencies(hp, grid.pixel_pitch_m, device)[:, None]
    fx = _frequencies(wp, grid.pixel_pitch_m, device)[None, :]
    out = []
    for lam in grid.wavelengths_m:
        phase = 2 * math.pi * z / lam - math.pi * lam * z * (fx**2 + fy**2)
        out.append(torch.polar(torch.full_like(phase, 1.0 / (hp * wp)), phase))
    return torch.stack(out).to(dtype)


def rs_impulse_response(plan: PropagationPlan, device=None, dtype=torch.complex64) -> torch.Tensor:
    r"""DFT of the first Rayleigh-Sommerfeld impulse response, ``(L, Hp, Wp)``.

    :math:`h(x,y)=\frac{z}{2\pi r^2}\left(\frac{1}{r}-ik\right)e^{ikr}`, :math:`r=\sqrt{x^2+y^2+z^2}`
    (Goodman eq. 3-74 without the far-field approximation), sampled on the linear-
    convolution window and multiplied by the pixel area ``dx^2`` (direct integration
    by FFT convolution; Shen & Wang 2006, Appl. Opt. 45, 1102).
    """
    grid, z = plan.grid, plan.distance_m
    hp, wp = plan.padded_shape
    dx = grid.pixel_pitch_m
    # circular index -> signed offset, so the kernel wraps like a linear convolution
    iy = torch.arange(hp, device=device, dtype=torch.float64)
    ix = torch.arange(wp, device=device, dtype=torch.float64)
    iy = torch.where(iy < hp - grid.shape[0] + 1, iy, iy - hp)[:, None]
    ix = torch.where(ix < wp - grid.shape[1] + 1, ix, ix - wp)[None, :]
    r = torch.sqrt((iy * dx) ** 2 + (ix * dx) ** 2 + z**2)
    out = []
    for lam in grid.wavelengths_m:
        k = 2 * math.pi / lam
        h = torch.polar(z / (2 * math.pi * r**2) * dx * dx / (hp * wp), k * r) * torch.complex(
            1 / r, torch.full_like(r, -k)
        )
        out.append(fft2_unscaled(h))
    return torch.stack(out).to(dtype)


def transfer_function(plan: PropagationPlan, device=None, dtype=torch.complex64) -> torch.Tensor:
    """The frequency-domain kernel of ``plan`` (normalisation folded in), ``(L, Hp, Wp)``."""
    if plan.linear:
        return asm_windowed_kernel(plan, device=device, dtype=dtype)
    build = {
        "asm": asm_transfer_function,
        "fresnel": fresnel_transfer_function,
        "rs": rs_impulse_response,
    }
    return build[plan.method](plan, device=device, dtype=dtype)


def apply_transfer_function(
    field: torch.Tensor, kernel: torch.Tensor, phase_rad: torch.Tensor | None = None
) -> torch.Tensor:
    """``crop(IDFT(DFT(zero_pad(field)) * kernel))`` with unscaled transforms; keeps the shape.

    ``field`` ``(B, L, H, W)``, ``kernel`` ``(L, Hp, Wp)`` from :func:`transfer_function`;
    optional ``phase_rad`` (e.g. ``(H, W)`` or ``(L, H, W)``, radians): propagate
    ``field * exp(i phase_rad)`` -- a thin phase mask right before the hop, fused.
    Runs :func:`lightgen.optics.fft.padded_fft_filter`: its backward is the same filter
    with the conjugate kernel, and it uses the FFT backend chosen with
    :func:`lightgen.optics.fft.set_fft_backend`.
    """
    return padded_fft_filter(field, kernel, phase_rad)


def propagate(
    field: torch.Tensor, grid: Grid, distance_m: float, **options: Unpack[PlanOptions]
) -> torch.Tensor:
    """Propagate a ``(B, L, H, W)`` complex field by ``distance_m`` metres (functional form).

    Builds the transfer function every call; use :class:`FreeSpace` in loops.
    ``options``: keyword-only ``method``, ``padding``, ``min_bandwidth_fraction`` and
    ``tail_tolerance`` of :func:`plan_propagation` (:class:`PlanOptions`).

    Cost of ``padding="auto"``: where it plans the exact windowed kernel (most hops with
    the default tail tolerance) that kernel is built on a fine lattice once per
    wavelength and distance -- seconds for a few hundred samples per side, about 100x
    an explicit padding (``benchmarks/padding_cost.py``, docs/physics.md). Only the last
    few geometries are cached, so for a scan over many distances pass an explicit
    ``padding`` (e.g. ``N``) or ``"periodic"``.
    """
    grid.check_field(field)
    plan = plan_propagation(grid, distance_m, **options)
    return apply_transfer_function(field, transfer_function(plan, field.device, field.dtype))


class FocalPlane(NamedTuple):
    """What :func:`fraunhofer_lens` returns; unpacks as ``field, pitches_m = ...``.

    Attributes:
        field: ``(B, L, M, M)`` complex, centred (pixel ``M // 2`` on the axis).
        pitches_m: output pitch ``lambda f / (M dx)`` per wavelength, metres.
    """

    field: torch.Tensor
    pitches_m: tuple[float, ...]


def fraunhofer_lens(
    field: torch.Tensor, grid: Grid, focal_length_m: float, padded_size: int | None = None
) -> FocalPlane:
    r"""Field in the back focal plane of a thin lens, input in the front focal plane (2f system).

    :math:`U_f(x',y')=\frac{1}{i\lambda f}\iint U(x,y)\,e^{-i2\pi(xx'+yy')/\lambda f}dx\,dy`
    (Goodman eq. 5-19). Returns a :class:`FocalPlane` ``(field, pitches_m)``: the output
    pitch is :math:`\lambda f/(M\Delta x)` per wavelength, with ``M`` the (optionally
    padded) FFT size, so each wavelength channel lives on its own output grid.

    The output is always square, ``(B, L, M, M)`` with ``M = padded_size or max(H, W)``,
    centred, also for a non-square ``(H, W)`` input: the input is zero-padded to
    ``M x M`` so that x and y share one output pitch per wavelength (a :class:`Grid` has
    one pitch). Crop the result if you need the input's aspect ratio. For an output on
    a grid of your choice (any pitch, same for every wavelength) use
    :class:`FourierLens`.
    """
    grid.check_field(field)
    f = require_positive("focal_length_m", focal_length_m, "Give the focal length in metres.")
    h, w = grid.shape
    m = int(padded_size or max(h, w))
    if m < max(h, w):
        raise ValueError(
            f"padded_size={m} is smaller than the field ({h}x{w}); pass >= {max(h, w)}."
        )
    dx = grid.pixel_pitch_m
    # centre the input on an M x M window (pixel n//2 at the optical axis), then DFT
    top, left = centred_start(m, h), centred_start(m, w)
    padded = field.new_zeros(*field.shape[:-2], m, m)
    padded[..., top : top + h, left : left + w] = field
    spec = torch.fft.fftshift(
        fft2_unscaled(torch.fft.ifftshift(padded, dim=(-2, -1))), dim=(-2, -1)
    )
    lam = torch.tensor(grid.wavelengths_m, dtype=torch.float64).view(-1, 1, 1)
    scale = (dx * dx / (lam * f)).to(field.device)  # 1/(i lambda f) * dx^2
    out = spec * (scale * -1j).to(field.dtype)
    return FocalPlane(out, tuple(lam_i * f / (m * dx) for lam_i in grid.wavelengths_m))


class FreeSpace(nn.Module):
    """Propagation over a fixed distance on a fixed grid, transfer function cached.

    The kernel is a non-persistent buffer: built once in float64, cast, reused every
    call, never saved in checkpoints (it is derivable). A field of another device or
    dtype rebuilds it from float64 (a complex64 kernel is never up-cast) and keeps that.
    ``options``: keyword-only ``method``, ``padding``, ``min_bandwidth_fraction`` and
    ``tail_tolerance`` of :func:`plan_propagation` (:class:`PlanOptions`).
    """

    def __init__(self, grid: Grid, distance_m: float, **options: Unpack[PlanOptions]) -> None:
        super().__init__()
        self.grid = grid
        self.plan = plan_propagation(grid, distance_m, **options)
        self.register_buffer("kernel", transfer_function(self.plan), persistent=False)

    @property
    def distance_m(self) -> float:
        return self.plan.distance_m

    def _kernel_for(self, field: torch.Tensor) -> torch.Tensor:
        k = self.kernel
        if k.device != field.device or k.dtype != field.dtype:
            k = transfer_function(self.plan, field.device, field.dtype)
            self.kernel = k  # cache the cast (e.g. complex128 for gradcheck)
        return k

    def forward(self, field: torch.Tensor, phase_rad: torch.Tensor | None = None) -> torch.Tensor:
        """Propagate ``field`` ``(B, L, H, W)``; with ``phase_rad`` (radians, broadcastable,
        ending in ``(H, W)``) propagate ``field * exp(i phase_rad)`` instead, fused: the
        mask is applied while zero-padding (a phase-mask layer followed by this hop costs
        one pass and one stored tensor fewer than ``fs(field * mask)``)."""
        self.grid.check_field(field)
        return apply_transfer_function(field, self._kernel_for(field), phase_rad)

    def extra_repr(self) -> str:
        p = self.plan
        return f"method={p.method}, distance_m={p.distance_m:g}, grid={p.grid.shape}, padded={p.padded_shape}"


def _chirp_z_axis_kernels(
    n_in: int, n_out: int, alphas: tuple[float, ...], device, dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Bluestein factors for ``out[J] = sum_n a[n] exp(-i 2 pi alpha J' n')`` along one axis,
    ``n' = n - n_in//2``, ``J' = J - n_out//2``: pre-chirp ``(L, n_in)``, the chirp kernel's
    DFT ``(L, P)``, post-chirp ``(L, n_out)`` and the FFT length ``P >= n_in + n_out - 1``.
    Built in float64 (the chirp phases reach ~1e5 rad), then cast."""
    p = next_fast_size(n_in + n_out - 1)
    ci, co = n_in // 2, n_out // 2
    n = torch.arange(n_in, dtype=torch.float64) - ci
    j = torch.arange(n_out, dtype=torch.float64) - co
    m = torch.arange(p, dtype=torch.float64)
    m = torch.where(m < n_out, m, m - p)  # circular index -> offset J - n in [-(n_in-1), n_out-1]
    pre, ker, post = [], [], []
    for a in alphas:
        pre.append(torch.polar(torch.ones_like(n), -math.pi * a * n**2))
        ker.append(torch.fft.fft(torch.polar(torch.ones_like(m), math.pi * a * (m + ci - co) ** 2)))
        post.append(torch.polar(torch.ones_like(j), -math.pi * a * j**2))
    cast = lambda ts: torch.stack(ts).to(device=device, dtype=dtype)  # noqa: E731
    return cast(pre), cast(ker), cast(post), p


class FourierLens(nn.Module):
    r"""A 2f system: a thin lens of focal length ``f`` with the input grid in its front
    focal plane and ``output_grid`` in its back focal plane (Goodman eq. 5-19):

    .. math::

        U_f(x',y')=\frac{1}{i\lambda f}\iint U(x,y)\,e^{-i2\pi(xx'+yy')/\lambda f}\,dx\,dy,

    evaluated exactly on ``output_grid`` for every wavelength by the chirp-z (Bluestein)
    transform, so all wavelengths land on one camera-pitch grid (the red image is
    larger than the blue one, as in a real 2f system). Unlike
    :func:`fraunhofer_lens` (whose output pitch ``lambda f / (M dx)`` differs per
    wavelength) it needs no choice of FFT size. Cost: one FFT pair of length
    ``P >= N + N' - 1`` per axis (about half a padded free-space hop).

    Sampling rule (checked): the input field's spectrum is periodic in ``x'`` with period
    ``lambda f / dx``, so the output window must fit in one period,
    ``N' dx' <= lambda f / dx`` for every wavelength (equivalently ``dx' <= lambda f /
    (N' dx)``: then the output also resolves the finest features ``lambda f / (N dx)``
    when ``N' >= N``). Light of the spectrum outside the output window is lost (the
    camera or layer aperture), so power is conserved only when the window holds the whole
    spectrum.
    """

    def __init__(self, grid: Grid, focal_length_m: float, output_grid: Grid) -> None:
        super().__init__()
        f = require_positive("focal_length_m", focal_length_m, "Give the focal length in metres.")
        if tuple(output_grid.wavelengths_m) != tuple(grid.wavelengths_m):
            raise ValueError(
                f"output_grid wavelengths {output_grid.wavelengths_m} differ from the input's "
                f"{grid.wavelengths_m}; a lens keeps each wavelength, build both grids alike."
            )
        dx, dxo = grid.pixel_pitch_m, output_grid.pixel_pitch_m
        for lam in grid.wavelengths_m:
            period = lam * f / dx
            for n_out in output_grid.shape:
                if n_out * dxo > period * (1 + 1e-12):
                    f_min = n_out * dxo * dx / lam
                    raise ValueError(
                        f"focal_length_m={f:g}: at {lam:g} m the spectrum repeats every "
                        f"lambda*f/dx = {period:g} m but the output window is {n_out * dxo:g} m "
                        f"wide; use focal_length_m >= {f_min:g}, a coarser input pitch, or a "
                        "smaller output window."
                    )
        self.grid, self.output_grid, self.focal_length_m = grid, output_grid, f
        self._alphas = tuple(dx * dxo / (lam * f) for lam in grid.wavelengths_m)
        self._factors: dict = {}

    def _axis(self, n_in: int, n_out: int, device, dtype):
        key = (n_in, n_out, device, dtype)
        if key not in self._factors:
            self._factors[key] = _chirp_z_axis_kernels(n_in, n_out, self._alphas, device, dtype)
        return self._factors[key]

    def _transform_last_axis(self, x: torch.Tensor, n_out: int) -> torch.Tensor:
        n_in = x.shape[-1]
        pre, ker, post, p = self._axis(n_in, n_out, x.device, x.dtype)
        lead = (1,) * (x.ndim - 3)
        a = x * pre.view(*lead, -1, 1, n_in)
        y = torch.fft.ifft(torch.fft.fft(a, n=p) * ker.view(*lead, -1, 1, p))
        return y[..., :n_out] * post.view(*lead, -1, 1, n_out)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """``(B, L, H, W)`` on ``grid`` -> ``(B, L, H', W')`` on ``output_grid``."""
        self.grid.check_field(field)
        ho, wo = self.output_grid.shape
        out = self._transform_last_axis(field, wo)
        out = self._transform_last_axis(out.transpose(-1, -2), ho).transpose(-1, -2)
        lam = torch.tensor(self.grid.wavelengths_m, dtype=torch.float64)
        scale = self.grid.pixel_pitch_m**2 / (lam * self.focal_length_m)  # dx^2 / (lambda f)
        scale = (scale.to(field.device) * -1j).to(field.dtype)  # 1/i = -i
        return out * scale.view(*(1,) * (field.ndim - 3), -1, 1, 1)

    def extra_repr(self) -> str:
        return (
            f"focal_length_m={self.focal_length_m:g}, input={self.grid.shape}@"
            f"{self.grid.pixel_pitch_m:g}m, output={self.output_grid.shape}@"
            f"{self.output_grid.pixel_pitch_m:g}m"
        )
