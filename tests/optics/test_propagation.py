"""Free-space propagation against closed forms (Gaussian beams, Fresnel integrals, Airy,
Talbot), against each other where both are valid (RS vs ASM), conservation laws, the
planner's sampling rules and its error messages, and gradients.

Precision-sensitive checks run in complex128 so that the tolerance measures the
physics / sampling error, not float32 round-off.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import scipy.special as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.optics import fft as lfft
from lightgen.optics.grid import Grid, intensity, power
from lightgen.optics.propagation import (
    FAST_TAIL_TOLERANCE,
    PLAN_DEFAULTS,
    FourierLens,
    FreeSpace,
    PlanOptions,
    apply_transfer_function,
    asm_transfer_function,
    fraunhofer_lens,
    guard_samples,
    plan_propagation,
    propagate,
    spread_samples,
    transfer_function,
)

C128 = torch.complex128
needs_pyfftw = pytest.mark.skipif(not lfft.pyfftw_available(), reason="pyfftw not installed")
BACKENDS = ["torch", pytest.param("pyfftw", marks=needs_pyfftw)]


def gaussian(grid: Grid, w0_m: float, x0_m: float = 0.0, y0_m: float = 0.0, tilt_rad=(0.0, 0.0)):
    """exp(-r^2/w0^2) (1/e^2 intensity radius w0) with an optional tilt, ``(1, L, H, W)``."""
    y, x = grid.meshgrid()
    k = 2 * math.pi / torch.tensor(grid.wavelengths_m, dtype=torch.float64).view(-1, 1, 1)
    env = torch.exp(-((x - x0_m) ** 2 + (y - y0_m) ** 2) / w0_m**2)
    return (env * torch.exp(1j * k * (tilt_rad[0] * x + tilt_rad[1] * y)))[None].to(C128)


def rayleigh_range(w0_m: float, wavelength_m: float) -> float:
    return math.pi * w0_m**2 / wavelength_m


# ----------------------------------------------------------------- Gaussian beam

GAUSS_GRID = Grid((128, 128), 4e-6, (532e-9,))
GAUSS_W0 = 30e-6
GAUSS_ZR = rayleigh_range(GAUSS_W0, 532e-9)
# ASM is exact Helmholtz: it differs from the paraxial beam formulas by O(theta^2) ~ 1e-5.
# The Fresnel transfer function solves the paraxial equation the formulas solve: ~1e-12.
GAUSS_CASES = [("asm", 0.5, 1e-4), ("asm", 1.0, 1e-4), ("asm", 2.0, 1e-4)]
GAUSS_CASES += [("fresnel", 0.5, 1e-9), ("fresnel", 1.0, 1e-9)]
# padding='linear': the windowed impulse response of the same angular spectrum
GAUSS_CASES += [("asm-linear", 0.5, 1e-4), ("asm-linear", 2.0, 1e-4)]


@cache
def _gaussian_at(method: str, z_over_zr: float) -> torch.Tensor:
    method, _, linear = method.partition("-")
    padding = "linear" if linear else "auto"
    field = gaussian(GAUSS_GRID, GAUSS_W0)
    return propagate(field, GAUSS_GRID, z_over_zr * GAUSS_ZR, method=method, padding=padding)


@pytest.mark.parametrize(("method", "z_over_zr", "rtol"), GAUSS_CASES)
def test_gaussian_beam_waist_grows_as_rayleigh_formula(method, z_over_zr, rtol):
    i = intensity(_gaussian_at(method, z_over_zr))[0, 0]
    y, x = GAUSS_GRID.meshgrid()
    # second moment of exp(-2 r^2 / w^2) is w^2 / 4 per axis
    w_x = 2 * torch.sqrt((x**2 * i).sum() / i.sum())
    w_y = 2 * torch.sqrt((y**2 * i).sum() / i.sum())
    expected = GAUSS_W0 * math.sqrt(1 + z_over_zr**2)
    assert w_x.item() == pytest.approx(expected, rel=rtol)
    assert w_y.item() == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize(("method", "z_over_zr", "rtol"), GAUSS_CASES)
def test_gaussian_beam_on_axis_amplitude_and_gouy_phase_follow_rayleigh_formulas(
    method, z_over_zr, rtol
):
    z = z_over_zr * GAUSS_ZR
    n = GAUSS_GRID.shape[0] // 2
    centre = _gaussian_at(method, z_over_zr)[0, 0, n, n].item()
    # remove the plane-wave phase k z; what is left is w0/w(z) * exp(-i atan(z/zR))
    reduced = centre * np.exp(-2j * math.pi * z / 532e-9)
    assert abs(reduced) == pytest.approx(1 / math.sqrt(1 + z_over_zr**2), rel=rtol)
    assert np.angle(reduced) == pytest.approx(-math.atan(z_over_zr), abs=rtol)


# ----------------------------------------------------------------- square aperture


@pytest.mark.parametrize(
    ("method", "padding"), [("asm", "auto"), ("asm", "linear"), ("fresnel", 768)]
)
def test_square_aperture_line_cut_matches_fresnel_integrals(method, padding):
    # Fresnel number a^2/(lambda z) = 2.5; half-width a on pixel edges (49.5 pitches).
    lam, dx, n = 500e-9, 2e-6, 256
    a = 49.5 * dx
    z = a**2 / (2.5 * lam)
    grid = Grid((n, n), dx, (lam,))
    y, x = grid.meshgrid()
    field = ((x.abs() < a) & (y.abs() < a)).to(C128)[None, None]
    out = intensity(propagate(field, grid, z, method=method, padding=padding))[0, 0, n // 2].numpy()

    s = math.sqrt(2 / (lam * z))

    def one_axis(u):  # integral over the aperture of exp(i pi (u-u')^2 / lambda z) / sqrt(2 i)
        s1, c1 = sp.fresnel(-s * (a + u))
        s2, c2 = sp.fresnel(s * (a - u))
        return (c2 - c1) + 1j * (s2 - s1)

    xs = grid.axes()[1].numpy()
    expected = np.abs(one_axis(xs) * one_axis(0.0) / 2j) ** 2
    near = np.abs(xs) <= 2 * a
    # the sampled hard edge converges at second order in the pitch (1.0e-2 at 4 um,
    # 2.5e-3 at 2 um); a 5 % error in z gives ~1e-1 here
    err = np.abs(out - expected)[near].max() / expected.max()
    assert err < 5e-3


# ----------------------------------------------------------------- Airy pattern


def _airy_setup(m=512):
    lam, dx, n, f = 500e-9, 5e-6, 128, 0.1
    grid = Grid((n, n), dx, (lam,))
    y, x = grid.meshgrid()
    hole = x**2 + y**2 <= (30 * dx) ** 2
    area = hole.sum().item() * dx * dx
    field = hole.to(C128)[None, None]
    out, pitches = fraunhofer_lens(field, grid, f, padded_size=m)
    return lam, dx, f, area, field, grid, out, pitches


def test_airy_pattern_matches_bessel_formula_and_first_zero_at_1_22_lambda_f_over_d():
    lam, _, f, area, _, _, out, (pitch,) = _airy_setup()
    m = out.shape[-1]
    a_eff = math.sqrt(area / math.pi)  # the pixelated disc's equal-area radius
    r = (np.arange(m) - m // 2) * pitch
    v = 2 * math.pi / lam * a_eff * np.abs(r) / f
    with np.errstate(invalid="ignore", divide="ignore"):
        airy = np.where(v == 0, 1.0, (2 * sp.j1(v) / v) ** 2)
    peak = (area / (lam * f)) ** 2  # |A / (i lambda f)|^2
    cut = intensity(out)[0, 0, m // 2].numpy() / peak
    first_zero_m = 1.22 * lam * f / (2 * a_eff)
    near = np.abs(r) <= 3 * first_zero_m
    assert np.abs(cut - airy)[near].max() < 3e-3
    # intensity at the first dark ring (interpolated) is ~0, and the maximum is on axis
    assert np.interp(first_zero_m, r[m // 2 :], cut[m // 2 :]) < 3e-3
    assert cut.argmax() == m // 2


def test_fraunhofer_lens_output_pitch_is_lambda_f_over_m_dx_per_wavelength():
    grid = Grid((32, 32), 4e-6, (450e-9, 650e-9))
    field = torch.ones(1, 2, 32, 32, dtype=C128)
    out, pitches = fraunhofer_lens(field, grid, 0.05, padded_size=100)
    assert out.shape == (1, 2, 100, 100)
    assert pitches == pytest.approx((450e-9 * 0.05 / (100 * 4e-6), 650e-9 * 0.05 / (100 * 4e-6)))


def test_fraunhofer_lens_centre_field_is_area_over_i_lambda_f_and_power_is_conserved():
    lam, _, f, area, field, grid, out, (pitch,) = _airy_setup(m=256)
    centre = out[0, 0, 128, 128].item()
    assert centre == pytest.approx(area / (1j * lam * f), rel=1e-12)
    # Parseval: the lens is lossless, sum |U_f|^2 dx_out^2 = sum |U|^2 dx^2
    assert (intensity(out).sum() * pitch**2).item() == pytest.approx(
        power(field, grid).item(), rel=1e-12
    )


# ----------------------------------------------------------------- Talbot effect

TALBOT = {"lam": 0.5e-6, "dx": 2e-6, "period": 32e-6}  # z_T = 2 d^2 / lambda = 4.096 mm


def _cosine_grating(n: int, envelope_m: float | None = None):
    grid = Grid((n, n), TALBOT["dx"], (TALBOT["lam"],))
    y, x = grid.meshgrid()
    t = 1 + 0.5 * torch.cos(2 * math.pi * x / TALBOT["period"])
    if envelope_m is not None:  # smooth flat-top window: its edges barely diffract
        t = t * torch.exp(-((x / envelope_m) ** 12 + (y / envelope_m) ** 12))
    return grid, t.to(C128)[None, None]


def _talbot_distance() -> float:
    return 2 * TALBOT["period"] ** 2 / TALBOT["lam"]


def test_periodic_cosine_grating_self_images_at_talbot_distance():
    grid, t = _cosine_grating(128)
    out = propagate(t, grid, _talbot_distance(), padding="periodic")
    # exact up to the non-paraxial shift of z_T, (lambda/d)^2/4 ~ 6e-5 relative
    assert torch.allclose(intensity(out), intensity(t), atol=1e-6)
    # and the image is not trivially present at every distance
    quarter = propagate(t, grid, _talbot_distance() / 4, padding="periodic")
    assert (intensity(quarter) - intensity(t)).abs().max() > 0.5


def test_periodic_cosine_grating_is_contrast_reversed_at_half_talbot_distance():
    grid, t = _cosine_grating(128)
    out = propagate(t, grid, _talbot_distance() / 2, padding="periodic")
    half_period = round(TALBOT["period"] / TALBOT["dx"] / 2)
    assert torch.allclose(intensity(out), intensity(t.roll(half_period, -1)), atol=1e-6)


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_finite_grating_self_images_in_an_open_window(fraction):
    grid, t = _cosine_grating(256, envelope_m=200e-6)
    out = intensity(propagate(t, grid, fraction * _talbot_distance()))[0, 0]
    shift = 0 if fraction == 1.0 else round(TALBOT["period"] / TALBOT["dx"] / 2)
    ref = intensity(t.roll(shift, -1))[0, 0]
    y, x = grid.meshgrid()
    centre = (x.abs() <= 64e-6) & (y.abs() <= 64e-6)
    # the envelope's edges diffract into the centre at the 1e-3 level
    assert (out - ref).abs()[centre].max() / ref[centre].max() < 2e-3


# ----------------------------------------------------------------- conservation laws

beam_cases = st.fixed_dictionaries(
    {
        "pitch_m": st.floats(2e-6, 10e-6),
        "wavelength_m": st.floats(400e-9, 1000e-9),
        "z_over_zr": st.floats(0.0, 2.0),
        "x0_px": st.floats(-5, 5),
        "y0_px": st.floats(-5, 5),
    }
)


def _beam_case(c):
    """A 5-pitch-waist beam on 128^2: band-limited, and inside the window up to 2 z_R."""
    grid = Grid((128, 128), c["pitch_m"], (c["wavelength_m"],))
    w0 = 5 * c["pitch_m"]
    field = gaussian(grid, w0, c["x0_px"] * c["pitch_m"], c["y0_px"] * c["pitch_m"])
    return grid, field, c["z_over_zr"] * rayleigh_range(w0, c["wavelength_m"])


@settings(max_examples=6, deadline=None)
@given(beam_cases)
def test_band_limited_asm_conserves_power_of_a_beam_inside_the_window(c):
    grid, field, z = _beam_case(c)
    out = propagate(field, grid, z)
    assert power(out, grid).item() == pytest.approx(power(field, grid).item(), rel=1e-9)


@settings(max_examples=6, deadline=None)
@given(beam_cases)
def test_propagating_forward_then_back_returns_the_field(c):
    grid, field, z = _beam_case(c)
    back = propagate(propagate(field, grid, z), grid, -z)
    assert ((back - field).norm() / field.norm()).item() < 1e-9


@settings(max_examples=6, deadline=None)
@given(beam_cases, st.floats(0.1, 0.9))
def test_two_steps_equal_one_step_of_the_summed_distance(c, split):
    grid, field, z = _beam_case(c)
    one = propagate(field, grid, z)
    two = propagate(propagate(field, grid, split * z), grid, (1 - split) * z)
    assert ((two - one).norm() / one.norm()).item() < 1e-9


# ----------------------------------------------------------------- RS vs ASM

RS_GRID = Grid((128, 128), 2e-6, (0.5e-6,))  # RS valid from |z| >= 2.03 mm


def test_rs_direct_integration_agrees_with_asm_for_a_smooth_beam():
    field = gaussian(RS_GRID, 20e-6)
    asm = propagate(field, RS_GRID, 3e-3, method="asm")
    rs = propagate(field, RS_GRID, 3e-3, method="rs")
    assert ((asm - rs).norm() / rs.norm()).item() < 1e-9


def test_asm_has_no_wraparound_for_a_corner_source_half_of_whose_light_leaves_the_window():
    field = gaussian(RS_GRID, 6e-6, -100e-6, -100e-6)  # 14 um from two edges
    rs = propagate(field, RS_GRID, 3e-3, method="rs")  # linear convolution: open boundaries
    assert power(rs, RS_GRID).item() < 0.7 * power(field, RS_GRID).item()
    asm = propagate(field, RS_GRID, 3e-3, method="asm")
    assert ((asm - rs).norm() / rs.norm()).item() < 1e-4
    # the same transfer function without padding wraps the escaping light back in
    wrapped = propagate(field, RS_GRID, 3e-3, method="asm", padding="periodic")
    assert ((wrapped - rs).norm() / rs.norm()).item() > 0.5


def test_asm_padded_to_the_full_spread_matches_rs_when_light_reaches_the_band_edge():
    # at 5 mm the spread (315 samples) exceeds N: a periodised kernel padded by N cuts the
    # band at 41 % of Nyquist, where this 4.2 um spot still has light; the plan says so
    # ('auto' plans the windowed kernel here instead: same 2N grid, no cut)
    field = gaussian(RS_GRID, 4.2e-6, -100e-6, -100e-6)
    assert plan_propagation(RS_GRID, 5e-3, padding=128).bandwidth_fraction[0] < 0.5
    assert plan_propagation(RS_GRID, 5e-3).linear
    full = propagate(field, RS_GRID, 5e-3, padding=spread_samples(RS_GRID, 5e-3))
    rs = propagate(field, RS_GRID, 5e-3, method="rs")
    assert ((full - rs).norm() / rs.norm()).item() < 5e-5


# ----------------------------------------------------------------- wavelengths, modules


def test_each_wavelength_channel_propagates_with_its_own_wavelength():
    both = Grid((64, 64), 4e-6, (450e-9, 650e-9))
    field = gaussian(both, 20e-6)
    out = propagate(field, both, 2e-3)
    for i, lam in enumerate(both.wavelengths_m):
        one = Grid((64, 64), 4e-6, (lam,))
        alone = propagate(
            field[:, i : i + 1], one, 2e-3, padding=plan_propagation(both, 2e-3).padding
        )
        assert torch.allclose(out[:, i : i + 1], alone, atol=1e-12)


def test_zero_distance_is_the_identity():
    grid = Grid((32, 48), 4e-6, (532e-9,))
    field = torch.randn(2, 1, 32, 48, dtype=C128)
    assert torch.allclose(propagate(field, grid, 0.0), field, atol=1e-12)


def test_freespace_kernel_is_a_non_persistent_buffer_not_a_parameter():
    fs = FreeSpace(Grid((32, 32), 4e-6), 1e-3)
    assert list(fs.parameters()) == []
    assert "kernel" in dict(fs.named_buffers())
    assert fs.state_dict() == {}


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_freespace_equals_functional_propagation(dtype):
    grid = Grid((48, 48), 4e-6, (532e-9,))
    fs = FreeSpace(grid, 2e-3)
    field = torch.randn(3, 1, 48, 48, dtype=dtype)
    out = fs(field)
    assert out.dtype == dtype
    # a complex128 field rebuilds the kernel from float64 instead of up-casting complex64
    assert torch.equal(out, propagate(field, grid, 2e-3))


# ----------------------------------------------------------------- gradients


def _small_case(method: str) -> FreeSpace:
    # gradcheck perturbs every input: 8x8 keeps it to seconds (linearity makes size moot)
    grid = Grid((8, 8), 4e-6, (0.5e-6,))
    z = {"asm": 1e-4, "fresnel": 1e-4, "rs": 2e-3}[method]  # rs valid from 0.51 mm here
    return FreeSpace(grid, z, method=method)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["asm", "fresnel", "rs"])
def test_propagation_gradient_wrt_the_input_field_matches_finite_differences(method, backend):
    fs = _small_case(method)
    field = torch.randn(1, 1, 8, 8, dtype=C128, requires_grad=True)
    with lfft.fft_backend(backend, planner_effort="FFTW_ESTIMATE"):
        assert torch.autograd.gradcheck(fs, (field,))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_propagation_gradient_wrt_a_phase_mask_matches_finite_differences(backend, fused):
    fs = _small_case("asm")
    field = torch.randn(2, 1, 8, 8, dtype=C128, requires_grad=True)
    phase = torch.rand(8, 8, dtype=torch.float64, requires_grad=True)

    def camera(field_in, phase_rad):
        if fused:
            return intensity(fs(fs(field_in), phase_rad=phase_rad))
        return intensity(fs(fs(field_in) * torch.polar(torch.ones_like(phase_rad), phase_rad)))

    with lfft.fft_backend(backend, planner_effort="FFTW_ESTIMATE"):
        assert torch.autograd.gradcheck(camera, (field, phase))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("phase_shape", [(24, 24), (2, 24, 24), (3, 2, 24, 24)])
def test_fused_phase_mask_equals_multiplying_the_field_first(backend, phase_shape):
    grid = Grid((24, 24), 4e-6, (450e-9, 650e-9))
    fs = FreeSpace(grid, 1e-3)
    gen = torch.Generator().manual_seed(3)
    field = torch.randn(3, 2, 24, 24, dtype=C128, generator=gen)
    phase = 2 * math.pi * torch.rand(phase_shape, dtype=torch.float64, generator=gen)
    with lfft.fft_backend(backend, planner_effort="FFTW_ESTIMATE"):
        fused = fs(field, phase_rad=phase)
        first = fs(field * torch.polar(torch.ones_like(phase), phase))
    assert torch.allclose(fused, first, atol=1e-12)


def test_propagation_second_derivative_matches_finite_differences():
    fs = _small_case("asm")
    field = torch.randn(1, 1, 8, 8, dtype=C128, requires_grad=True)
    assert torch.autograd.gradgradcheck(fs, (field,))


def test_propagation_gradient_wrt_a_trainable_kernel_matches_finite_differences():
    fs = _small_case("asm")
    field = torch.randn(1, 1, 8, 8, dtype=C128, requires_grad=True)
    kernel = transfer_function(fs.plan, dtype=C128).requires_grad_()
    assert torch.autograd.gradcheck(apply_transfer_function, (field, kernel))


# ----------------------------------------------------------------- planner


def test_padding_covers_the_geometric_spread_and_grows_with_distance():
    grid = Grid((256, 256), 8e-6, (532e-9,))
    previous = 0
    for z in (0.0, 1e-3, 1e-2, 5e-2, 1e-1):
        # the chips' tolerance: the periodised plan's padding (the default's 1e-5 guard
        # reaches N on long hops, where 'auto' takes the exact 2N-1 plan)
        plan = plan_propagation(grid, z, tail_tolerance=FAST_TAIL_TOLERANCE)
        need = min(spread_samples(grid, z), 256)  # |z| tan(theta_max) / dx, capped at N
        pad = plan.padding[0]
        assert need <= pad <= need + 0.1 * (256 + need) + 4  # next fast size, not a blanket 2x
        assert pad >= previous
        previous = pad
    # a short hop needs little padding
    assert plan_propagation(grid, 1e-3, tail_tolerance=FAST_TAIL_TOLERANCE).padded_shape[0] < 300
    assert plan_propagation(grid, 1e-3).padded_shape[0] < 400  # default: wider guard, < 2N
    # spread is z tan(theta) / dx with sin(theta) = lambda / (2 dx)
    sin_t = 532e-9 / 16e-6
    assert spread_samples(grid, 5e-2) == math.ceil(5e-2 * sin_t / math.sqrt(1 - sin_t**2) / 8e-6)


@pytest.mark.parametrize("n", [50, 256, 512, 1000, 1024])
def test_planned_fft_sizes_are_7_smooth_multiples_of_four(n):
    plan = plan_propagation(Grid((n, n), 8e-6, (532e-9,)), 1e-2)
    for m in plan.padded_shape:
        assert m % 4 == 0 and lfft.is_fast_size(m)


def test_band_limit_keeps_exactly_the_plane_waves_displaced_less_than_the_padding():
    # high NA (pitch 0.6 lambda) so the exact 2-D displacement differs from the 1-D rule
    lam, dx = 0.5e-6, 0.3e-6
    grid = Grid((64, 64), dx, (lam,))
    plan = plan_propagation(grid, 20e-6, padding=40, min_bandwidth_fraction=0.1)
    kept = asm_transfer_function(plan, dtype=C128)[0].abs() > 0
    u = torch.fft.fftfreq(plan.padded_shape[1], d=dx, dtype=torch.float64)
    uu, vv = torch.meshgrid(u, u, indexing="ij")
    cos_t = torch.sqrt((1 - lam**2 * (uu**2 + vv**2)).clamp(min=1e-30))
    shift_x = 20e-6 * lam * uu.abs() / cos_t  # lateral displacement of plane wave (u, v)
    shift_y = 20e-6 * lam * vv.abs() / cos_t
    room = 40 * dx
    propagating = lam**2 * (uu**2 + vv**2) < 1
    expected = propagating & (shift_x <= room * (1 + 1e-12)) & (shift_y <= room * (1 + 1e-12))
    assert torch.equal(kept, expected | ~propagating)  # evanescent: kept, decaying
    assert plan.bandwidth_fraction[0] == pytest.approx(
        2 * dx * room / (lam * math.hypot(20e-6, room))
    )


def test_asm_beyond_its_sampling_limit_raises_naming_the_distance_and_fixes():
    grid = Grid((64, 64), 8e-6, (532e-9,))
    with pytest.raises(ValueError, match=r"distance_m=10 .*fraunhofer_lens"):
        plan_propagation(grid, 10.0)


def test_fresnel_beyond_l_dx_over_lambda_raises_naming_the_distance_and_fixes():
    grid = Grid((64, 64), 8e-6, (532e-9,))
    limit = 128 * 8e-6 * 8e-6 / 532e-9
    plan_propagation(grid, 0.99 * limit, method="fresnel")
    with pytest.raises(ValueError, match=r"distance_m=.*L\*dx/lambda.*method='rs'"):
        plan_propagation(grid, 1.1 * limit, method="fresnel")


def test_rs_too_short_raises_naming_the_distance_and_fixes():
    grid = Grid((64, 64), 2e-6, (0.5e-6,))
    zmin = 128e-6 * math.sqrt(1 / 0.125**2 - 1)
    plan_propagation(grid, 1.01 * zmin, method="rs")
    with pytest.raises(ValueError, match=r"distance_m=.*too short.*method='asm'"):
        plan_propagation(grid, 0.9 * zmin, method="rs")
    with pytest.raises(ValueError, match=r"distance_m=0 .*'asm'"):
        plan_propagation(grid, 0.0, method="rs")


def test_explicit_padding_too_small_raises_naming_the_padding():
    grid = Grid((64, 64), 8e-6, (532e-9,))
    with pytest.raises(ValueError, match=r"padding=2 is too small for distance_m=0\.05"):
        plan_propagation(grid, 0.05, padding=2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "far"])
def test_non_finite_distance_raises(bad):
    with pytest.raises(ValueError, match="distance_m"):
        plan_propagation(Grid((16, 16), 4e-6), bad)


def test_unknown_method_raises():
    with pytest.raises(ValueError, match=r"method='angular'.*asm"):
        plan_propagation(Grid((16, 16), 4e-6), 1e-3, method="angular")


def test_plan_options_are_keyword_only_and_declared_once():
    grid = Grid((16, 16), 4e-6)
    assert set(PLAN_DEFAULTS) == set(PlanOptions.__annotations__)
    assert plan_propagation(grid, 1e-3) == plan_propagation(grid, 1e-3, **PLAN_DEFAULTS)
    with pytest.raises(TypeError, match="positional"):
        plan_propagation(grid, 1e-3, "fresnel")
    field = torch.ones(1, 1, 16, 16, dtype=torch.complex64)
    for call in (
        lambda: plan_propagation(grid, 1e-3, pad=4),
        lambda: propagate(field, grid, 1e-3, pad=4),
        lambda: FreeSpace(grid, 1e-3, pad=4),
    ):
        with pytest.raises(TypeError, match=r"'pad'.*method, padding, min_bandwidth_fraction"):
            call()


@pytest.mark.parametrize(
    ("padding", "message"),
    [(-1, r"padding\[0\]"), (2.5, r"padding\[0\]"), ((1, 2, 3), "3 entries"), ("big", "'auto'")],
)
def test_bad_padding_raises(padding, message):
    with pytest.raises(ValueError, match=message):
        plan_propagation(Grid((16, 16), 4e-6), 1e-4, padding=padding)


def test_periodic_padding_with_rs_raises():
    with pytest.raises(ValueError, match=r"padding='periodic' with method='rs'"):
        plan_propagation(Grid((16, 16), 4e-6), 1e-2, method="rs", padding="periodic")


@pytest.mark.parametrize("fraction", [0.0, 1.5, float("nan")])
def test_bad_min_bandwidth_fraction_raises(fraction):
    with pytest.raises(ValueError, match="min_bandwidth_fraction"):
        plan_propagation(Grid((16, 16), 4e-6), 1e-4, min_bandwidth_fraction=fraction)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (torch.ones(1, 1, 16, 16), "dtype"),
        (torch.ones(16, 16, dtype=torch.complex64), "shape"),
        (torch.ones(1, 1, 16, 8, dtype=torch.complex64), "grid expects"),
        (torch.ones(1, 2, 16, 16, dtype=torch.complex64), "wavelength"),
    ],
)
def test_wrong_field_shape_or_dtype_raises(field, message):
    grid = Grid((16, 16), 4e-6)
    with pytest.raises(ValueError, match=message):
        propagate(field, grid, 1e-4)
    with pytest.raises(ValueError, match=message):
        FreeSpace(grid, 1e-4)(field)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pixel_pitch_m": 0.0}, "pixel_pitch_m"),
        ({"pixel_pitch_m": -1e-6}, "pixel_pitch_m"),
        ({"pixel_pitch_m": 4e-6, "wavelengths_m": (0.0,)}, "wavelengths_m"),
        ({"pixel_pitch_m": 4e-6, "wavelengths_m": (-532e-9,)}, "wavelengths_m"),
    ],
)
def test_non_positive_pitch_or_wavelength_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Grid((16, 16), **kwargs)


def test_bad_lens_arguments_raise():
    grid = Grid((16, 16), 4e-6)
    field = torch.ones(1, 1, 16, 16, dtype=torch.complex64)
    with pytest.raises(ValueError, match="focal_length_m"):
        fraunhofer_lens(field, grid, -0.1)
    with pytest.raises(ValueError, match="padded_size=8"):
        fraunhofer_lens(field, grid, 0.1, padded_size=8)


# --------------------------------------------------------------------------- guard band


@pytest.mark.parametrize("tail_tolerance", [2e-3, 2e-4, 5e-5])
def test_auto_padding_keeps_the_wrapped_energy_of_a_white_field_below_the_tail_tolerance(
    tail_tolerance,
):
    # A white field excites the whole band, so every kernel tap beyond the padding
    # wraps back into the window: the wrapped energy is bounded by the tail energy the
    # guard leaves outside. Reference: the same field alone in an 8x larger window.
    n, z = 128, 2.5e-3
    grid = Grid((n, n), 8e-6, (532e-9,))
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(4, 1, n, n, generator=gen, dtype=torch.complex128)
    big = Grid((8 * n, 8 * n), 8e-6, (532e-9,))
    u_big = torch.zeros(4, 1, 8 * n, 8 * n, dtype=torch.complex128)
    u_big[..., :n, :n] = u
    ref = FreeSpace(big, z, tail_tolerance=1e-6)(u_big)[..., :n, :n]
    out = FreeSpace(grid, z, tail_tolerance=tail_tolerance)(u)
    wrapped = (out - ref).abs().square().sum() / ref.abs().square().sum()
    assert wrapped <= tail_tolerance
    # without the guard (padding = the geometric spread only) the same bound fails
    bare = FreeSpace(grid, z, padding=spread_samples(grid, z))(u)
    assert (bare - ref).abs().square().sum() / ref.abs().square().sum() > 5e-5


def test_guard_grows_as_the_tolerance_shrinks_and_vanishes_at_zero_distance():
    grid = Grid((512, 512), 8e-6, (532e-9,))
    guards = [guard_samples(grid, 5e-2, tol) for tol in (1e-2, 1e-3, 1e-4, 1e-5)]
    assert guards == sorted(guards) and guards[0] < guards[-1]
    assert guard_samples(grid, 0.0) == 0
    # N = 512, 8 um, 5 cm: spread 208 + the chips' guard (33) -> 756^2 (docs/performance.md)
    fast = plan_propagation(grid, 5e-2, tail_tolerance=FAST_TAIL_TOLERANCE)
    assert fast.padded_shape == (756, 756) and not fast.linear


@pytest.mark.parametrize("n", [256, 512, 1024])
def test_default_auto_plan_is_exact_on_the_benchmark_geometry(n):
    # 532 nm, 8 um, 5 cm (benchmarks/propagation.py): the default tolerance's guard (705)
    # puts the periodised grid within AUTO_LINEAR_AREA of 2N-1, so 'auto' is exact there
    grid = Grid((n, n), 8e-6, (532e-9,))
    plan = plan_propagation(grid, 5e-2)
    assert plan.linear and plan.padded_shape == (2 * n, 2 * n)
    assert plan.bandwidth_fraction == (1.0,)


@pytest.mark.parametrize("bad", [0.0, -1e-3, 1.0, float("nan")])
def test_bad_tail_tolerance_names_the_value(bad):
    grid = Grid((64, 64), 8e-6, (532e-9,))
    with pytest.raises(ValueError, match="tail_tolerance"):
        plan_propagation(grid, 1e-2, tail_tolerance=bad)


# ----------------------------------------------------------- padding='linear' (windowed kernel)


def test_linear_padding_matches_the_closed_form_rs_kernel_where_a_periodised_one_cuts_the_band():
    # 5 mm on RS_GRID spreads 315 samples > N = 128: a periodised kernel padded by N must
    # band-limit (41 % of Nyquist) and loses this 4.2 um spot's edge light; the windowed
    # kernel needs only a 2N-1 grid and keeps the whole band, so it matches the RS
    # closed-form impulse response (and 'auto' picks it: same grid size)
    field = gaussian(RS_GRID, 4.2e-6, -100e-6, -100e-6)
    rs = propagate(field, RS_GRID, 5e-3, method="rs")
    plan = plan_propagation(RS_GRID, 5e-3, padding="linear")
    assert plan.padded_shape == (256, 256) and plan.bandwidth_fraction == (1.0,)
    linear = propagate(field, RS_GRID, 5e-3, padding="linear")
    assert ((linear - rs).norm() / rs.norm()).item() < 5e-5
    periodised = propagate(field, RS_GRID, 5e-3, padding=128)
    assert ((periodised - rs).norm() / rs.norm()).item() > 1e-3
    assert torch.equal(propagate(field, RS_GRID, 5e-3), linear)


def _white_case(n: int = 96, z: float = 2.5e-2):
    grid = Grid((n, n), 8e-6, (532e-9,))
    gen = torch.Generator().manual_seed(1)
    phase = 2 * math.pi * torch.rand(2, 1, n, n, dtype=torch.float64, generator=gen)
    return grid, torch.polar(torch.ones_like(phase), phase), z


def test_linear_padding_carries_a_white_field_like_an_open_window_where_periodised_wraps():
    # a per-sample random phase (flat spectrum to Nyquist) excites the kernel's slowly
    # decaying Fresnel tail. Reference: the field alone in a 16x window, zero-padded 16x
    # more (the periodic copies are 31 N away; band limit cuts nothing)
    grid, u, z = _white_case()
    n = grid.shape[0]
    big = Grid((16 * n, 16 * n), 8e-6, (532e-9,))
    u_big = torch.zeros(2, 1, 16 * n, 16 * n, dtype=C128)
    u_big[..., :n, :n] = u
    ref = FreeSpace(big, z, padding=16 * n)(u_big)[..., :n, :n]
    linear = FreeSpace(grid, z, padding="linear")(u)
    err_linear = ((linear - ref).norm() / ref.norm()).item()
    # the periodised kernel on the same 2N grid: cone (104 samples) and tail wrap
    err_periodised = ((FreeSpace(grid, z, padding=n)(u) - ref).norm() / ref.norm()).item()
    assert err_linear < 5e-4
    assert err_periodised > 20 * err_linear
    assert FreeSpace(grid, z).plan.linear  # what 'auto' plans here


@settings(max_examples=4, deadline=None)
@given(beam_cases)
def test_linear_padding_conserves_power_and_composes_for_a_beam_inside_the_window(c):
    grid, field, z = _beam_case(c)
    one = propagate(field, grid, z, padding="linear")
    assert power(one, grid).item() == pytest.approx(power(field, grid).item(), rel=1e-9)
    back = propagate(one, grid, -z, padding="linear")
    assert ((back - field).norm() / field.norm()).item() < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_padding_gradient_matches_finite_differences(backend):
    grid = Grid((8, 8), 4e-6, (0.5e-6,))
    fs = FreeSpace(grid, 1e-4, padding="linear")
    field = torch.randn(1, 1, 8, 8, dtype=C128, requires_grad=True)
    phase = torch.rand(8, 8, dtype=torch.float64, requires_grad=True)
    with lfft.fft_backend(backend, planner_effort="FFTW_ESTIMATE"):
        assert torch.autograd.gradcheck(lambda f, p: intensity(fs(f, phase_rad=p)), (field, phase))


def test_linear_padding_is_only_for_asm_and_refuses_a_fine_lattice_that_would_not_fit():
    grid = Grid((64, 64), 8e-6, (532e-9,))
    with pytest.raises(ValueError, match=r"padding='linear' with method='fresnel'"):
        plan_propagation(grid, 1e-3, method="fresnel", padding="linear")
    with pytest.raises(ValueError, match=r"padding='linear' for distance_m=5.*fine lattice"):
        plan_propagation(grid, 5.0, padding="linear")


# ------------------------------------------------ sub-wavelength pitch (metasurface sampling)
def _rs_quadrature(y_m, x_m, wavelength_m, z_m, waist_m, pixel_pitch_m, n, refine):
    """First RS integral of a Gaussian centred at 0, midpoint rule on a lattice ``refine``
    times finer than the grid that tiles its ``n`` pixels (pixel i spans
    ``(i - n//2 -+ 1/2) dx``)."""
    step = pixel_pitch_m / refine
    m = n * refine
    c = (torch.arange(m, dtype=torch.float64) - m / 2 + 0.5) * step - pixel_pitch_m / 2
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    src = torch.exp(-(ys**2 + xs**2) / waist_m**2)
    r = torch.sqrt((x_m - xs) ** 2 + (y_m - ys) ** 2 + z_m**2)
    k = 2 * math.pi / wavelength_m
    h = z_m / (2 * math.pi * r**2) * (1 / r - 1j * k) * torch.exp(1j * k * r)
    return (src * h).sum() * step**2


@pytest.mark.parametrize("padding", ["auto", "linear"])
@pytest.mark.parametrize("pitch_per_wavelength", [1 / 8, 1 / 3])
def test_sub_wavelength_pitch_is_accepted_and_matches_rayleigh_sommerfeld_quadrature(
    padding, pitch_per_wavelength
):
    # a metasurface pitch below lambda/2 resolves every propagating wave: the planner must
    # accept it at any distance, and the answer must be the RS integral
    lam, n, z = 532e-9, 64, 2e-6
    dx = lam * pitch_per_wavelength
    grid = Grid((n, n), dx, (lam,))
    waist = 9 * dx
    y, x = grid.axes()
    y, x = y.double(), x.double()
    field = torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / waist**2).to(torch.complex128)
    out = propagate(field[None, None], grid, z, padding=padding)[0, 0]
    peak = out.abs().max()
    for iy, ix in [(32, 32), (32, 40), (20, 45), (50, 10)]:
        ref = _rs_quadrature(y[iy].item(), x[ix].item(), lam, z, waist, dx, n, 4)
        assert abs(out[iy, ix] - ref) / peak < 1e-6


def test_band_limit_fraction_is_measured_against_the_propagating_band():
    # dx = lambda/8: Nyquist 4/lambda, but only |u| < 1/lambda propagates
    lam = 532e-9
    grid = Grid((64, 64), lam / 8, (lam,))
    z, pad = 2e-6, 32
    plan = plan_propagation(grid, z, padding=pad)
    room = pad * grid.pixel_pitch_m
    u_lim = room / (lam * math.hypot(z, room))
    assert plan.bandwidth_fraction[0] == pytest.approx(u_lim * lam)
    # the old Nyquist-relative fraction, u_lim * 2 dx = 0.18, was refused (< 0.25)
    assert plan.bandwidth_fraction[0] > 0.7


# ----------------------------------------------- FourierLens: a 2f system onto a chosen grid
def test_fourier_lens_equals_fraunhofer_lens_on_its_own_output_grid():
    # fraunhofer_lens lands on pitch lambda f / (M dx); FourierLens evaluates the same
    # integral by the chirp-z transform on any grid, so on that grid they must agree
    lam, n, dx, f = 532e-9, 64, 8e-6, 0.05
    grid = Grid((n, n), dx, (lam,))
    field = torch.randn(
        2, 1, n, n, dtype=torch.complex128, generator=torch.Generator().manual_seed(0)
    )
    ref, pitches = fraunhofer_lens(field, grid, f, padded_size=160)
    out_grid = Grid((100, 120), pitches[0], (lam,))
    out = FourierLens(grid, f, out_grid)(field)
    ref = ref[..., 80 - 50 : 80 + 50, 80 - 60 : 80 + 60]
    assert (out - ref).abs().max() / ref.abs().max() < 1e-12


def test_fourier_lens_conserves_power_when_the_window_holds_one_spectral_period():
    lams = (640e-9, 450e-9)
    n, dx = 48, 8e-6
    f = n * dx * dx / min(lams)  # blue: window = one period exactly; red: a smaller fraction
    grid = Grid((n, n), dx, lams)
    field = torch.randn(
        3, 2, n, n, dtype=torch.complex128, generator=torch.Generator().manual_seed(1)
    )
    out = FourierLens(grid, f, grid)(field)
    ratio = power(out, grid) / power(field, grid)
    assert ratio[:, 1].tolist() == pytest.approx([1.0] * 3, rel=1e-9)  # blue: whole period
    assert (ratio[:, 0] < 1).all()  # red: its spectrum is wider than the window -> cut


def test_fourier_lens_refuses_an_output_window_wider_than_the_spectral_period():
    grid = Grid((64, 64), 8e-6, (450e-9,))
    with pytest.raises(ValueError, match=r"focal_length_m >= 0\.0091"):
        FourierLens(grid, 0.005, grid)


@pytest.mark.parametrize(("n", "side"), [(8, 4), (8, 3), (9, 4), (9, 3), (5, 5)])
def test_a_centred_span_puts_its_middle_pixel_on_the_axis_pixel(n, side):
    from lightgen.optics.grid import centred_start

    start = centred_start(n, side)
    assert 0 <= start and start + side <= n
    assert start + side // 2 == n // 2


def test_fraunhofer_lens_pads_a_non_square_input_to_a_square_focal_plane():
    grid = Grid((6, 10), 4e-6, (532e-9,))
    field = torch.zeros(1, 1, 6, 10, dtype=torch.complex128)
    field[0, 0, 3, 5] = 1.0  # a point on the axis: the focal plane is uniform
    plane = fraunhofer_lens(field, grid, 0.05)
    assert plane.field.shape == (1, 1, 10, 10)
    assert plane.pitches_m == (532e-9 * 0.05 / (10 * 4e-6),)
    expected = (4e-6) ** 2 / (532e-9 * 0.05)
    torch.testing.assert_close(
        plane.field.abs(), torch.full((1, 1, 10, 10), expected, dtype=torch.float64)
    )
    field_out, pitches = plane  # still unpacks as (field, pitches_m)
    assert field_out is plane.field and pitches is plane.pitches_m


def test_the_planner_names_the_wavelength_channel_that_fails():
    # Fresnel's sampling limit L dx^2 / lambda is shortest for the longest wavelength
    grid = Grid((32, 32), 2e-6, (450e-9, 1550e-9))
    z = 1.5 * 64 * (2e-6) ** 2 / 1550e-9  # over the 1550 nm limit, under the 450 nm one
    with pytest.raises(ValueError, match=r"wavelength channel 1 \(1\.55e-06 m\) of 2"):
        plan_propagation(grid, z, method="fresnel", padding=32)
    one_channel = Grid((32, 32), 2e-6, (450e-9,))
    plan_propagation(one_channel, z, method="fresnel", padding=32)
