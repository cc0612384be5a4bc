"""Single-mode fiber array: coupling, emission and the Marcuse MFD against closed forms."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.optics.fibers import (
    FiberArray,
    FiberSpec,
    couple_separable,
    fiber_positions_m,
    gaussian_mode_table,
    marcuse_mode_field_diameter_m,
)
from lightgen.optics.grid import Grid, intensity, power
from lightgen.optics.propagation import fraunhofer_lens

UM = 1e-6
LAM = 1.55 * UM
# 128 x 128 at 0.5 um: +-32 um window, a 4 um mode-field radius spans 8 pixels.
GRID = Grid((128, 128), 0.5 * UM, (LAM,))
HYP = settings(max_examples=15, deadline=None)


def gaussian_beam(grid: Grid, waist_m, y0_m=0.0, x0_m=0.0, dtype=torch.complex128) -> torch.Tensor:
    """exp(-r^2/w^2) centred on (y0, x0), one waist per wavelength, shape (1, L, H, W)."""
    yy, xx = grid.meshgrid()
    waists = waist_m if isinstance(waist_m, tuple) else (waist_m,) * grid.n_wavelengths
    amp = [torch.exp(-((yy - y0_m) ** 2 + (xx - x0_m) ** 2) / w**2) for w in waists]
    return torch.stack(amp)[None].to(dtype)


def single_fiber(grid: Grid = GRID, mfd_m=8 * UM, y_m=0.0, x_m=0.0, **kw) -> FiberArray:
    return FiberArray(grid, grid, torch.tensor([[y_m, x_m]]), mode_field_diameter_m=mfd_m, **kw)


def separated_array(grid: Grid = GRID, n=4, pitch_m=24 * UM, mfd_m=4 * UM, **kw) -> FiberArray:
    return FiberArray(grid, grid, fiber_positions_m(n, pitch_m), mode_field_diameter_m=mfd_m, **kw)


# --- Marcuse mode-field diameter -------------------------------------------------------------


def test_marcuse_mfd_matches_hand_calculation_for_smf28_like_fiber():
    # a = 4.1 um, NA = 0.14, 1550 nm: V = 2*pi*4.1*0.14/1.55 = 2.32681;
    # w/a = 0.65 + 1.619/3.54930 + 2.879/158.69 = 0.65 + 0.45615 + 0.01814 = 1.12429;
    # MFD = 2 * 4.1 um * 1.12429 = 9.2192 um. (Corning's 10.4 um datasheet value reflects
    # its real index profile; the nominal NA 0.14 over-estimates the step-index NA.)
    mfd = marcuse_mode_field_diameter_m(4.1 * UM, 0.14, 1.55 * UM)
    assert mfd == pytest.approx(9.2192 * UM, rel=1e-4)


def _exact_lp01_best_gaussian_w_over_a(v: float) -> float:
    """w/a of the Gaussian with maximal overlap with the exact step-index LP01 mode.

    That is Marcuse's definition of w; the exact mode is J0(Ur/a) in the core and
    K0(Wr/a) in the cladding with U J1(U)/J0(U) = W K1(W)/K0(W), U^2 + W^2 = V^2
    (Snyder & Love 1983, ch. 14).
    """
    from scipy import integrate, optimize, special

    def eigen(u):
        w = math.sqrt(v * v - u * u)
        return u * special.j1(u) / special.j0(u) - w * special.k1(w) / special.k0(w)

    u = optimize.brentq(eigen, 1e-6, min(v, 2.404825) - 1e-9)
    w = math.sqrt(v * v - u * u)

    def mode(r):
        if r < 1:
            return special.j0(u * r) / special.j0(u)
        return special.k0(w * r) / special.k0(w)

    norm = integrate.quad(lambda r: mode(r) ** 2 * r, 0, 1)[0]
    norm += integrate.quad(lambda r: mode(r) ** 2 * r, 1, math.inf)[0]

    def neg_eta(s):  # s = w/a
        o = integrate.quad(lambda r: mode(r) * math.exp(-(r * r) / s**2) * r, 0, 1)[0]
        o += integrate.quad(lambda r: mode(r) * math.exp(-(r * r) / s**2) * r, 1, math.inf)[0]
        return -(o * o) / (norm * s * s / 4)

    return optimize.minimize_scalar(neg_eta, bounds=(0.5, 5.0), method="bounded").x


@pytest.mark.parametrize("v", [1.2, 1.6, 2.0, 2.4])
def test_marcuse_fit_within_one_percent_of_exact_lp01_best_gaussian(v):
    a, lam = 3.0 * UM, 1.0 * UM
    na = v * lam / (2 * math.pi * a)
    mfd = marcuse_mode_field_diameter_m(a, na, lam)
    assert mfd / (2 * a) == pytest.approx(_exact_lp01_best_gaussian_w_over_a(v), rel=0.01)


def test_marcuse_raises_for_multimode_v_above_2405():
    # 4.1 um, NA 0.14 at 1310 nm: V = 2.753 > 2.405
    with pytest.raises(ValueError, match=r"multimode.*cutoff"):
        marcuse_mode_field_diameter_m(4.1 * UM, 0.14, 1.31 * UM)


def test_marcuse_raises_below_v_0p8_where_fit_is_invalid():
    with pytest.raises(ValueError, match=r"V = .* < 0.8.*mode_field_diameter_m"):
        marcuse_mode_field_diameter_m(1.0 * UM, 0.05, 1.55 * UM)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 0.14, 1.55e-6), "core_radius_m"),
        ((4.1e-6, -0.1, 1.55e-6), "numerical_aperture"),
        ((4.1e-6, 1.2, 1.55e-6), "numerical_aperture"),
        ((4.1e-6, 0.14, 1550.0), "wavelength_m"),
    ],
)
def test_marcuse_rejects_bad_parameters_by_name(args, name):
    with pytest.raises(ValueError, match=name):
        marcuse_mode_field_diameter_m(*args)


# --- layouts --------------------------------------------------------------------------------


def test_square_layout_is_row_major_pitch_spaced_and_centred():
    pos = fiber_positions_m(10, 100 * UM, "square")  # 4 columns, 3 rows (4 + 4 + 2)
    assert pos.shape == (10, 2) and pos.dtype == torch.float64
    assert torch.allclose(pos[1] - pos[0], torch.tensor([0.0, 100 * UM], dtype=torch.float64))
    assert torch.allclose(pos[4] - pos[0], torch.tensor([100 * UM, 0.0], dtype=torch.float64))
    box_centre = (pos.amax(0) + pos.amin(0)) / 2
    assert torch.allclose(box_centre, torch.zeros(2, dtype=torch.float64), atol=1e-15)
    assert pos[:, 0].unique().numel() == 3 and pos[:, 1].unique().numel() == 4


@given(n=st.integers(2, 60))
@HYP
def test_hex_layout_nearest_neighbours_are_one_pitch_apart(n):
    pitch = 50 * UM
    pos = fiber_positions_m(n, pitch, "hex")
    d = torch.cdist(pos, pos) + torch.eye(n, dtype=torch.float64) * 1.0
    assert torch.allclose(d.min(1).values, torch.full((n,), pitch, dtype=torch.float64))
    rows = pos[:, 0].unique()
    if rows.numel() > 1:  # row spacing of a close-packed lattice
        assert (rows[1] - rows[0]).item() == pytest.approx(pitch * math.sqrt(3) / 2)
    assert torch.allclose((pos.amax(0) + pos.amin(0)) / 2, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"n_fibers": 0, "pitch_m": 1e-4}, "n_fibers"),
        ({"n_fibers": 4, "pitch_m": 0.0}, "pitch_m"),
        ({"n_fibers": 4, "pitch_m": 1e-4, "layout": "ring"}, "layout"),
    ],
)
def test_fiber_positions_reject_bad_input(kw, name):
    with pytest.raises(ValueError, match=name):
        fiber_positions_m(**kw)


# --- FiberSpec ------------------------------------------------------------------------------


def test_fiber_spec_derives_one_marcuse_mfd_per_wavelength():
    spec = FiberSpec(core_radius_m=1.5 * UM, numerical_aperture=0.12)
    wls = (0.52 * UM, 0.64 * UM)
    assert spec.mode_field_diameters_m(wls) == tuple(
        marcuse_mode_field_diameter_m(1.5 * UM, 0.12, w) for w in wls
    )
    # the mode spreads as the wavelength grows (V falls)
    mfd = spec.mode_field_diameters_m(wls)
    assert mfd[1] > mfd[0]


def test_fiber_spec_broadcasts_one_mfd_and_checks_count():
    assert FiberSpec(mode_field_diameter_m=5e-6).mode_field_diameters_m((1e-6, 2e-6)) == (5e-6,) * 2
    with pytest.raises(ValueError, match="mode_field_diameter_m has 2 values"):
        FiberSpec(mode_field_diameter_m=(5e-6, 6e-6)).mode_field_diameters_m((1e-6, 2e-6, 3e-6))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({}, "needs mode_field_diameter_m"),
        ({"mode_field_diameter_m": 5e-6, "core_radius_m": 2e-6}, "not both"),
        ({"core_radius_m": 2e-6}, "needs both"),
        ({"mode_field_diameter_m": -5e-6}, "mode_field_diameter_m"),
        ({"core_radius_m": 2e-6, "numerical_aperture": 0.0}, "numerical_aperture"),
    ],
)
def test_fiber_spec_rejects_bad_descriptions(kw, match):
    with pytest.raises(ValueError, match=match):
        FiberSpec(**kw)


def test_from_spec_uses_the_per_wavelength_marcuse_mfd():
    grid = Grid((96, 96), 0.25 * UM, (0.52 * UM, 0.64 * UM))
    spec = FiberSpec(core_radius_m=1.5 * UM, numerical_aperture=0.12)
    fa = FiberArray.from_spec(grid, grid, torch.zeros(1, 2), spec)
    assert fa.mode_field_diameters_m == spec.mode_field_diameters_m(grid.wavelengths_m)


# --- coupling against closed forms ------------------------------------------------------------


@given(w1_um=st.floats(2.0, 6.0), w2_um=st.floats(2.0, 6.0))
@HYP
def test_waist_mismatch_efficiency_is_gaussian_overlap_formula(w1_um, w2_um):
    w1, w2 = w1_um * UM, w2_um * UM
    fa = single_fiber(mfd_m=2 * w2)
    eta = fa.coupling_efficiency(gaussian_beam(GRID, w1))
    expected = (2 * w1 * w2 / (w1**2 + w2**2)) ** 2
    assert eta.shape == (1, 1)
    assert eta.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("d_over_w", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_lateral_offset_efficiency_is_exp_minus_d_over_w_squared(d_over_w):
    w = 4 * UM
    fa = single_fiber(mfd_m=2 * w)
    # offset along a diagonal so both separable factors are exercised
    d = d_over_w * w
    beam = gaussian_beam(GRID, w, y0_m=d * 0.6, x0_m=d * 0.8)
    assert fa.coupling_efficiency(beam).item() == pytest.approx(math.exp(-(d_over_w**2)), abs=1e-6)


@given(
    w1_um=st.floats(2.0, 5.0),
    w2_um=st.floats(2.0, 5.0),
    dy_um=st.floats(-6.0, 6.0),
    dx_um=st.floats(-6.0, 6.0),
)
@HYP
def test_mismatch_and_offset_efficiency_matches_joyce_deloach_formula(w1_um, w2_um, dy_um, dx_um):
    w1, w2, dy, dx = w1_um * UM, w2_um * UM, dy_um * UM, dx_um * UM
    # fiber off-centre, beam elsewhere: only the relative offset d may matter
    fa = single_fiber(mfd_m=2 * w2, y_m=3 * UM, x_m=-2 * UM)
    beam = gaussian_beam(GRID, w1, y0_m=3 * UM + dy, x0_m=-2 * UM + dx)
    s = w1**2 + w2**2
    expected = (2 * w1 * w2 / s) ** 2 * math.exp(-2 * (dy**2 + dx**2) / s)
    assert fa.coupling_efficiency(beam).item() == pytest.approx(expected, abs=1e-6)


@given(theta_y=st.floats(-0.12, 0.12), theta_x=st.floats(-0.12, 0.12))
@HYP
def test_tilt_reduces_coupling_as_exp_minus_pi_w_theta_over_lambda_squared(theta_y, theta_x):
    w = 4 * UM
    fa = single_fiber(mfd_m=2 * w)
    yy, xx = GRID.meshgrid()
    k = 2 * math.pi / LAM
    tilt = torch.polar(torch.ones_like(xx), k * (math.sin(theta_y) * yy + math.sin(theta_x) * xx))
    beam = gaussian_beam(GRID, w) * tilt
    sin2 = math.sin(theta_y) ** 2 + math.sin(theta_x) ** 2
    expected = math.exp(-((math.pi * w / LAM) ** 2) * sin2)  # (pi w theta/lambda)^2, small angle
    assert fa.coupling_efficiency(beam).item() == pytest.approx(expected, abs=1e-6)


def test_each_wavelength_couples_with_its_own_mode_field_diameter():
    grid = Grid((128, 128), 0.5 * UM, (1.31 * UM, 1.55 * UM))
    w_fiber = (3 * UM, 4 * UM)
    fa = FiberArray(grid, grid, torch.zeros(1, 2), mode_field_diameter_m=(6 * UM, 8 * UM))
    w_beam = 5 * UM
    eta = fa.coupling_efficiency(gaussian_beam(grid, w_beam))
    expected = [(2 * w_beam * w / (w_beam**2 + w**2)) ** 2 for w in w_fiber]
    assert eta[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_couple_equals_brute_force_overlap_with_the_2d_mode():
    # independent path: explicit 2-D Gaussian mode, normalised by its own discrete power
    torch.manual_seed(0)
    grid = Grid((48, 40), 0.5 * UM, (LAM,))
    # 6.9 w apart: overlap e^-24, below OVERLAP_TOLERANCE (closer fibers are orthonormalised)
    pos = torch.tensor([[-5.0, 4.5], [5.0, -5.0]], dtype=torch.float64) * UM
    w = 2.0 * UM
    fa = FiberArray(grid, grid, pos, mode_field_diameter_m=2 * w)
    field = torch.randn(2, 1, 48, 40, dtype=torch.complex128)
    yy, xx = grid.meshgrid()
    dx2 = grid.pixel_pitch_m**2
    expected = []
    for y0, x0 in pos.tolist():
        mode = torch.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / w**2)
        mode = mode / torch.sqrt((mode**2).sum() * dx2)
        expected.append((field * mode).sum((-2, -1)) * dx2)
    assert torch.allclose(fa.couple(field), torch.stack(expected, -1), rtol=1e-12, atol=1e-20)


def test_dark_field_has_zero_coupling_efficiency():
    fa = single_fiber()
    dark = torch.zeros(2, 1, *GRID.shape, dtype=torch.complex64)
    assert torch.equal(fa.coupling_efficiency(dark), torch.zeros(2, 1))


# --- energy ---------------------------------------------------------------------------------


def test_latent_squared_is_coupled_power_in_watts():
    # a matched beam carrying 2 mW couples all of it: |c|^2 = 2e-3 W
    fa = single_fiber(mfd_m=8 * UM)
    beam = gaussian_beam(GRID, 4 * UM)
    beam = beam * math.sqrt(2e-3 / power(beam, GRID).item())
    c = fa.couple(beam)
    assert (c.abs() ** 2).item() == pytest.approx(2e-3, rel=1e-9)


@given(seed=st.integers(0, 2**31 - 1), smooth=st.booleans())
@HYP
def test_coupled_power_never_exceeds_input_power(seed, smooth):
    g = torch.Generator().manual_seed(seed)
    grid = Grid((64, 64), 0.5 * UM, (LAM,))
    fa = separated_array(grid, n=4, pitch_m=12 * UM, mfd_m=4 * UM)  # d = 6w: overlap e^-18
    field = torch.randn(2, 1, 64, 64, dtype=torch.complex128, generator=g)
    if smooth:  # low-pass so the field resembles the modes and couples strongly
        field = torch.nn.functional.avg_pool2d(
            torch.view_as_real(field).permute(0, 1, 4, 2, 3).reshape(2, 2, 64, 64), 5, 1, 2
        )
        field = torch.view_as_complex(
            field.reshape(2, 1, 2, 64, 64).permute(0, 1, 3, 4, 2).contiguous()
        )
    eta = fa.coupling_efficiency(field)
    assert (eta >= 0).all() and (eta <= 1 + 1e-9).all()


def test_emitted_power_equals_sum_of_latent_powers_for_separated_spots():
    torch.manual_seed(1)
    out_grid = Grid((96, 80), 0.4 * UM, (LAM,))
    out_pos = fiber_positions_m(4, 14 * UM, "hex")
    fa = FiberArray(GRID, out_grid, fiber_positions_m(4, 24 * UM), out_pos, 4 * UM)
    c = torch.randn(3, 1, 4, dtype=torch.complex128) * 1e-2
    emitted = fa.emit(c)
    assert emitted.shape == (3, 1, 96, 80)
    assert torch.allclose(power(emitted, out_grid), (c.abs() ** 2).sum(-1), rtol=1e-9)


def test_emit_then_couple_returns_the_latent_for_separated_fibers():
    torch.manual_seed(2)
    out_grid = Grid((96, 96), 0.4 * UM, (LAM,))
    out_pos = fiber_positions_m(9, 12 * UM, "square")
    fa = FiberArray(GRID, out_grid, fiber_positions_m(9, 18 * UM), out_pos, 4 * UM)
    reader = FiberArray(out_grid, out_grid, out_pos, mode_field_diameter_m=4 * UM)
    c = torch.randn(2, 1, 9, dtype=torch.complex128)
    assert torch.allclose(reader.couple(fa.emit(c)), c, atol=1e-7)


def test_emitted_spot_is_centred_on_output_facet_with_rms_radius_w_over_2():
    # |psi|^2 ~ exp(-2 r^2 / w^2): per-axis standard deviation w/2
    out_grid = Grid((80, 100), 0.3 * UM, (LAM,))
    out_pos = torch.tensor([[2.0 * UM, -3.0 * UM]])
    w = 3 * UM
    fa = FiberArray(GRID, out_grid, torch.zeros(1, 2), out_pos, 2 * w)
    i = intensity(fa.emit(torch.ones(1, 1, 1, dtype=torch.complex128)))[0, 0]
    yy, xx = out_grid.meshgrid()
    p = i / i.sum()
    my, mx = (p * yy).sum().item(), (p * xx).sum().item()
    assert (my, mx) == pytest.approx((2.0 * UM, -3.0 * UM), abs=1e-12)
    assert math.sqrt((p * (yy - my) ** 2).sum().item()) == pytest.approx(w / 2, rel=1e-6)
    assert math.sqrt((p * (xx - mx) ** 2).sum().item()) == pytest.approx(w / 2, rel=1e-6)


def test_mode_overlap_of_close_fibers_is_exp_minus_d2_over_2w2_and_warns():
    w = 3 * UM
    pos = torch.tensor([[0.0, -2.5], [0.0, 2.5]], dtype=torch.float64) * UM  # d = 5 um < 2w
    with pytest.warns(UserWarning, match="not independent"):
        fa = FiberArray(GRID, GRID, pos, mode_field_diameter_m=2 * w)
    gram = fa.mode_overlap("input")[0]
    assert gram[0, 0].item() == pytest.approx(1.0, abs=1e-12)
    assert gram[0, 1].item() == pytest.approx(math.exp(-(25.0) / (2 * 9.0)), abs=1e-9)
    # overlapping modes are coupled through their orthonormalised span: emit-then-couple
    # returns the latent, and the emitted power is the latent's power
    c = torch.tensor([[[1.0 + 0j, 0.5j]]], dtype=torch.complex128)
    assert torch.allclose(fa.couple(fa.emit(c)), c, atol=1e-12)
    assert power(fa.emit(c), GRID).item() == pytest.approx(1.25, rel=1e-9)


@pytest.mark.parametrize("pitch_waists", [3.0, 2.5, 1.5])
def test_overlapping_fibers_couple_no_more_power_than_arrives(pitch_waists):
    # with non-orthogonal modes sum |<psi_k, E>|^2 exceeds the arriving power (1.036x at a
    # pitch of 3w for the field below); the array must couple the projection onto the span
    w = 2 * UM
    grid = Grid((96, 96), 0.5 * UM, (LAM,))
    pos = fiber_positions_m(9, pitch_waists * w, "square")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fa = FiberArray(grid, grid, pos, mode_field_diameter_m=2 * w)
    gram = fa.mode_overlap("input")[0]
    # a field in the span of the raw modes: sum_k psi_k (all in phase) carries 1^T G 1
    raw = FiberArray(grid, grid, pos[:1], mode_field_diameter_m=2 * w)  # one-mode tables
    field = sum(
        FiberArray(grid, grid, pos[k : k + 1], mode_field_diameter_m=2 * w).emit(
            torch.ones(1, 1, 1, dtype=torch.complex128)
        )
        for k in range(9)
    )
    del raw
    arriving = power(field, grid).item()
    assert arriving == pytest.approx(gram.sum().item(), rel=1e-9)
    coupled = (fa.couple(field).abs() ** 2).sum().item()
    assert coupled == pytest.approx(arriving, rel=1e-9)  # all of it lies in the span
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(4, 1, 96, 96, dtype=torch.complex128, generator=g)
    assert (fa.coupling_efficiency(noise) <= 1 + 1e-12).all()


def test_separated_fibers_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        separated_array()


# --- per-fiber transmission -----------------------------------------------------------------


def test_loss_db_scales_coupled_power_by_ten_to_minus_db_over_ten():
    loss = torch.tensor([0.0, 1.0, 3.0, 10.0])
    fa = separated_array(loss_db=loss)
    c = torch.ones(1, 1, 4, dtype=torch.complex128)
    out = fa.transmit(c)
    assert torch.allclose(out.abs() ** 2, (10 ** (-loss.double() / 10))[None, None])
    # and the emitted power carries the same factors
    total = power(fa.emit(out), GRID).item()
    assert total == pytest.approx((10 ** (-loss.double() / 10)).sum().item(), rel=1e-9)


def test_phase_port_rotates_the_latent_without_changing_power():
    phase = torch.tensor([0.0, math.pi / 2, math.pi, -0.3])
    fa = separated_array(phase_rad=phase)
    c = torch.full((1, 1, 4), 2.0 + 1.0j, dtype=torch.complex128)
    out = fa.transmit(c)
    assert torch.allclose(out, c * torch.exp(1j * phase.double()))


def test_forward_is_emit_of_transmitted_latent():
    torch.manual_seed(3)
    fa = separated_array(loss_db=torch.tensor([0.5, 1.0, 0.0, 2.0]), phase_rad=torch.rand(4))
    field = torch.randn(2, 1, *GRID.shape, dtype=torch.complex64)
    expected = fa.emit(fa.transmit(fa.couple(field)))
    assert torch.allclose(fa(field), expected)


def test_loss_and_phase_are_saved_but_mode_tables_are_not():
    fa = separated_array(loss_db=1.0)
    assert set(fa.state_dict()) == {"loss_db", "phase_rad"}
    assert not list(fa.parameters())


# --- autograd and precision -------------------------------------------------------------------


def _small_array() -> FiberArray:
    # 10 x 12 grid, w = 1.5 px: the smallest legal mode, so gradcheck stays cheap;
    # fiber 1 sits exactly on the allowed edge (x + 2w = last pixel centre)
    grid = Grid((10, 12), 1 * UM, (LAM,))
    pos = torch.tensor([[-1.0, -3.0], [0.0, 2.0]], dtype=torch.float64) * UM
    return FiberArray(grid, grid, pos, mode_field_diameter_m=3 * UM, phase_rad=torch.rand(2))


def test_couple_gradcheck_complex128():
    fa = _small_array()
    field = torch.randn(1, 1, 10, 12, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(fa.couple, (field,), fast_mode=True)


def test_emit_gradcheck_complex128():
    fa = _small_array()
    latent = torch.randn(2, 1, 2, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(fa.emit, (latent,), fast_mode=True)


def test_complex64_agrees_with_complex128_and_keeps_its_dtype():
    torch.manual_seed(4)
    fa = separated_array()
    field = torch.randn(2, 1, *GRID.shape, dtype=torch.complex128)
    c128 = fa.couple(field)
    c64 = fa.couple(field.to(torch.complex64))
    assert c64.dtype == torch.complex64 and c128.dtype == torch.complex128
    assert torch.allclose(c64.to(torch.complex128), c128, rtol=1e-5, atol=1e-5 * c128.abs().max())
    assert fa.emit(c64).dtype == torch.complex64


def test_double_module_keeps_exact_unit_power_modes():
    # module.double() up-casts float32 tables; they must be rebuilt in float64
    fa = separated_array().double()
    c = torch.randn(1, 1, 4, dtype=torch.complex128)
    assert torch.allclose(power(fa.emit(c), GRID), (c.abs() ** 2).sum(-1), rtol=1e-12)


def test_gaussian_mode_table_has_unit_discrete_power():
    x = torch.arange(-20, 20, dtype=torch.float64) * 0.5 * UM
    g = gaussian_mode_table(x, torch.tensor([0.0, 1.3 * UM], dtype=torch.float64), 2 * UM, 0.5 * UM)
    assert torch.allclose((g**2).sum(0) * 0.5 * UM, torch.ones(2, dtype=torch.float64))
    # continuous peak (2 / (pi w^2))^(1/4) is reached for a centred, well-sampled mode
    assert g[20, 0].item() == pytest.approx((2 / (math.pi * (2 * UM) ** 2)) ** 0.25, rel=1e-9)


def test_couple_separable_scales_with_pixel_area():
    field = torch.ones(1, 1, 4, 4, dtype=torch.complex64)
    gy = torch.ones(1, 4, 1)
    hx = torch.ones(1, 4, 1)
    assert couple_separable(field, gy, hx, 2.0).item() == pytest.approx(16 * 4.0)


# --- bad input ------------------------------------------------------------------------------


def test_fiber_outside_grid_raises_naming_positions_and_fix():
    with pytest.raises(ValueError, match=r"positions_m\[0\].*outside the input grid.*enlarge"):
        single_fiber(y_m=28 * UM)  # 28 + 2*4 um > 31.5 um edge


def test_output_fiber_outside_output_grid_raises():
    small = Grid((40, 40), 0.5 * UM, (LAM,))
    with pytest.raises(ValueError, match=r"output_positions_m\[0\].*output grid"):
        FiberArray(GRID, small, fiber_positions_m(2, 20 * UM), mode_field_diameter_m=4 * UM)


@pytest.mark.parametrize("mfd", [0.0, -4e-6, float("nan")])
def test_non_positive_mfd_raises(mfd):
    with pytest.raises(ValueError, match="mode_field_diameter_m"):
        single_fiber(mfd_m=mfd)


def test_missing_mfd_raises_with_example():
    with pytest.raises(ValueError, match=r"mode_field_diameter_m is required.*from_spec"):
        FiberArray(GRID, GRID, torch.zeros(1, 2))


def test_undersampled_mode_raises_naming_pitch_fix():
    # w = 0.7 um on a 0.5 um grid = 1.4 px < 1.5 px
    with pytest.raises(ValueError, match=r"1\.40 pixels.*pixel_pitch_m <="):
        single_fiber(mfd_m=1.4 * UM)


def test_wrong_mfd_count_raises():
    with pytest.raises(ValueError, match="one per wavelength"):
        single_fiber(mfd_m=(8 * UM, 9 * UM))


def test_mismatched_grid_wavelengths_raise():
    other = Grid(GRID.shape, GRID.pixel_pitch_m, (1.31 * UM,))
    with pytest.raises(ValueError, match="same wavelengths_m"):
        FiberArray(GRID, other, torch.zeros(1, 2), mode_field_diameter_m=8 * UM)


@pytest.mark.parametrize("pos", [torch.zeros(3), torch.zeros(2, 3), torch.full((1, 2), math.inf)])
def test_malformed_positions_raise(pos):
    with pytest.raises(ValueError, match="positions_m"):
        FiberArray(GRID, GRID, pos, mode_field_diameter_m=8 * UM)


def test_output_positions_count_must_match():
    with pytest.raises(ValueError, match=r"output_positions_m has 1 fibers.*4"):
        FiberArray(GRID, GRID, fiber_positions_m(4, 24 * UM), torch.zeros(1, 2), 4 * UM)


def test_wrong_field_shape_raises():
    fa = single_fiber()
    with pytest.raises(ValueError, match="field has shape"):
        fa.couple(torch.zeros(1, 1, 64, 64, dtype=torch.complex64))
    with pytest.raises(ValueError, match="complex"):
        fa.couple(torch.zeros(1, 1, *GRID.shape))


def test_latent_with_wrong_fiber_count_raises():
    fa = separated_array()
    with pytest.raises(ValueError, match=r"latent has shape \(1, 1, 3\).*\(batch, 1, 4\)"):
        fa.emit(torch.zeros(1, 1, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match="complex"):
        fa.transmit(torch.zeros(1, 1, 4))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"loss_db": -1.0}, r"loss_db\[0\].*cannot amplify"),
        ({"loss_db": torch.zeros(3)}, "loss_db has shape"),
        ({"phase_rad": torch.tensor([0.0, math.nan, 0.0, 0.0])}, "phase_rad contains non-finite"),
    ],
)
def test_bad_loss_or_phase_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        separated_array(**kw)


# --- lens-coupled facets (2f Fourier lens between the grid and the fibers) -------------------


def _lens_setup(n=128, n_facet=512, dx=8 * UM, dx_facet=3 * UM):
    # choose f so that fraunhofer_lens maps the facet grid's pitch onto the chip grid's
    f = n_facet * dx * dx_facet / LAM
    grid, facet_grid = Grid((n, n), dx, (LAM,)), Grid((n_facet, n_facet), dx_facet, (LAM,))
    pos = torch.tensor([[0.0, 0.0], [30.0, -21.0], [-45.0, 12.0]], dtype=torch.float64) * UM
    return f, grid, facet_grid, pos


def test_lens_coupled_emission_is_the_fraunhofer_transform_of_the_fiber_spots():
    f, grid, facet_grid, pos = _lens_setup()
    spots = FiberArray(facet_grid, facet_grid, pos, mode_field_diameter_m=24 * UM)
    lens = FiberArray(grid, grid, pos, mode_field_diameter_m=24 * UM, output_lens_focal_length_m=f)
    c = torch.tensor([[[1.0 + 0.5j, -0.3 + 0.2j, 0.1j]]], dtype=torch.complex128)
    far, pitches = fraunhofer_lens(spots.emit(c), facet_grid, f)
    assert pitches[0] == pytest.approx(grid.pixel_pitch_m)
    lo = 512 // 2 - 128 // 2
    far = far[..., lo : lo + 128, lo : lo + 128]
    near = lens.emit(c)
    assert (far - near).abs().max() / near.abs().max() < 1e-12


def test_lens_coupled_coupling_is_the_spot_overlap_of_the_fraunhofer_transform():
    f, grid, facet_grid, pos = _lens_setup()
    spots = FiberArray(facet_grid, facet_grid, pos, mode_field_diameter_m=24 * UM)
    lens = FiberArray(grid, grid, pos, mode_field_diameter_m=24 * UM, input_lens_focal_length_m=f)
    g = torch.Generator().manual_seed(0)
    field = torch.randn(2, 1, 128, 128, dtype=torch.complex128, generator=g)
    far, _ = fraunhofer_lens(field, grid, f, padded_size=512)
    expected = spots.couple(far)
    assert (lens.couple(field) - expected).abs().max() / expected.abs().max() < 1e-12


def test_lens_coupled_beam_radius_is_lambda_f_over_pi_w_and_power_is_kept_inside_the_aperture():
    f, grid, _, pos = _lens_setup(n=256)
    w = 12 * UM
    lens = FiberArray(
        grid, grid, pos[:1], mode_field_diameter_m=2 * w, output_lens_focal_length_m=f
    )
    i = intensity(lens.emit(torch.ones(1, 1, 1, dtype=torch.complex128)))[0, 0]
    yy, _ = grid.meshgrid()
    p = i / i.sum()
    big_w = LAM * f / (math.pi * w)  # |E|^2 ~ exp(-2 y^2/W^2): standard deviation W/2
    assert math.sqrt((p * yy**2).sum().item()) == pytest.approx(big_w / 2, rel=1e-3)
    a = 128 * grid.pixel_pitch_m  # half-width of the aperture; erf per axis, squared
    inside = math.erf(math.sqrt(2) * a / big_w) ** 2
    assert power(lens.emit(torch.ones(1, 1, 1, dtype=torch.complex128)), grid).item() == (
        pytest.approx(inside, rel=1e-3)
    )


def test_lens_coupled_fiber_beyond_the_grids_nyquist_tilt_is_refused():
    grid = Grid((64, 64), 8 * UM, (LAM,))
    far = torch.tensor([[0.0, 2000.0 * UM]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Nyquist.*focal length >="):
        FiberArray(grid, grid, far, mode_field_diameter_m=24 * UM, input_lens_focal_length_m=0.01)


def test_a_matched_mode_couples_one_within_the_fields_float_precision():
    from lightgen.optics.grid import as_field

    grid = Grid((48, 48), 8e-6, (640e-9, 532e-9, 450e-9))
    fa = FiberArray(grid, grid, fiber_positions_m(16, 64e-6), mode_field_diameter_m=24e-6)
    modes = fa.mode_fields()  # (M, L, H, W) float64
    assert as_field(modes, grid).dtype == torch.complex128  # precision follows the input
    assert as_field(modes.float(), grid).dtype == torch.complex64
    for k in (0, 5, 15):
        exact = fa.couple(as_field(modes[k : k + 1], grid))[0, :, k]
        assert (exact.abs().square() - 1).abs().max() < 1e-12
        single = fa.couple(as_field(modes[k : k + 1].float(), grid))[0, :, k]
        assert (single.abs().square() - 1).abs().max() <= torch.finfo(torch.float32).eps
