"""Fabrication parametrisations: quantisation surrogates, feature-size filter, misalignment."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.optics.fabrication import (
    HeightQuantizer,
    Misalignment,
    Perturbation,
    conic_filter,
    conic_filter_kernel,
    fourier_shift,
    height_levels,
    jitter_distance_m,
    quantize_height,
    quantize_phase,
    roll_with_fill,
    rotate,
)
from lightgen.optics.grid import Grid


def _on_levels(q: torch.Tensor, levels: torch.Tensor) -> bool:
    return bool((q.unsqueeze(-1) == levels).any(-1).all())


# ---------------------------------------------------------------- quantisation
@settings(max_examples=20, deadline=None)
@given(levels=st.integers(2, 16), seed=st.integers(0, 1000))
def test_ste_quantised_heights_land_exactly_on_the_levels(levels, seed):
    g = torch.Generator().manual_seed(seed)
    h_max = 1.2e-6
    h = torch.rand(6, 6, generator=g, dtype=torch.float64) * 1.4e-6 - 0.1e-6
    q = quantize_height(h, levels, h_max)
    v = height_levels(levels, h_max, dtype=torch.float64)
    assert _on_levels(q, v)
    # nearest level: error at most half a step (inside the range)
    inside = (h >= 0) & (h <= h_max)
    assert bool(((q - h).abs()[inside] <= h_max / (levels - 1) / 2 + 1e-18).all())


def test_ste_gradient_is_the_identity():
    h = torch.rand(4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64)
    (quantize_height(h, 4, 1.0) * w).sum().backward()
    torch.testing.assert_close(h.grad, w)


def test_gumbel_quantisation_lands_on_levels_with_nonzero_gradient():
    g = torch.Generator().manual_seed(0)
    h = (torch.rand(8, 8, dtype=torch.float64) * 1e-6).requires_grad_()
    q = quantize_height(h, 5, 1e-6, surrogate="gumbel", tau=0.5, generator=g)
    assert _on_levels(q, height_levels(5, 1e-6, dtype=torch.float64))
    (q * torch.randn(8, 8, dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(h.grad).all()) and float(h.grad.abs().sum()) > 0


def test_gumbel_without_noise_rounds_to_the_nearest_level_like_ste():
    h = torch.rand(16, 16, dtype=torch.float64)
    soft = quantize_height(h, 6, 1.0, surrogate="gumbel", sample_noise=False)
    torch.testing.assert_close(soft, quantize_height(h, 6, 1.0), rtol=0, atol=0)


def test_gumbel_samples_are_reproducible_with_a_seeded_generator():
    h = torch.rand(8, 8)
    a = quantize_height(h, 4, 1.0, "gumbel", generator=torch.Generator().manual_seed(3))
    b = quantize_height(h, 4, 1.0, "gumbel", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_quantised_phase_is_wrapped_to_k_levels_in_zero_to_two_pi():
    phase = torch.linspace(-7.0, 13.0, 401, dtype=torch.float64)
    q = quantize_phase(phase, 8)
    levels = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    assert _on_levels(q, levels)
    # same physical phase to within half a level (compare on the unit circle)
    err = torch.angle(torch.exp(1j * (q - phase)))
    assert float(err.abs().max()) <= math.pi / 8 + 1e-12


def test_height_quantizer_module_is_deterministic_in_eval_mode():
    qz = HeightQuantizer(4, surrogate="gumbel", tau=2.0, generator=torch.Generator().manual_seed(1))
    h = torch.rand(10, 10)
    qz.eval()
    torch.testing.assert_close(qz(h, 1.0), quantize_height(h, 4, 1.0), rtol=0, atol=0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: quantize_height(torch.zeros(2), 1, 1.0), "levels"),
        (lambda: quantize_height(torch.zeros(2), 4, 0.0), "max_height_m"),
        (lambda: quantize_height(torch.zeros(2), 4, 1.0, surrogate="round"), "surrogate"),
        (lambda: quantize_height(torch.zeros(2), 4, 1.0, "gumbel", tau=0.0), "tau"),
        (lambda: HeightQuantizer(2.5), "levels"),
        (lambda: quantize_phase(torch.zeros(2), 0), "levels"),
    ],
)
def test_bad_quantisation_input_raises_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- feature size
def test_conic_filter_keeps_constants_and_averages_out_a_checkerboard():
    k = conic_filter_kernel(1e-6, 3e-6, dtype=torch.float64)
    assert k.shape == (7, 7) and float(k.sum()) == pytest.approx(1.0, abs=1e-12)
    const = torch.full((2, 16, 16), 0.7, dtype=torch.float64)
    torch.testing.assert_close(conic_filter(const, k), const)
    idx = torch.arange(16)
    checker = ((idx[:, None] + idx[None, :]) % 2).double() * 2 - 1
    out = conic_filter(checker, k)
    # the +-1 pattern at the Nyquist frequency is almost removed in the interior
    assert float(out[4:-4, 4:-4].abs().max()) < 0.1


def test_conic_filter_spreads_a_point_into_the_cone_and_keeps_its_sum():
    k = conic_filter_kernel(1.0, 2.5, dtype=torch.float64)
    x = torch.zeros(15, 15, dtype=torch.float64)
    x[7, 7] = 1.0
    out = conic_filter(x, k)
    torch.testing.assert_close(out[5:10, 5:10], k.flip(0, 1))
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- shifts
def test_integer_fourier_shift_equals_torch_roll():
    x = torch.randn(2, 3, 12, 10, dtype=torch.complex128)
    out = fourier_shift(x, 3, -2)
    torch.testing.assert_close(out, torch.roll(x, (3, -2), dims=(-2, -1)), atol=1e-12, rtol=0)


def test_integer_fourier_shift_with_fill_equals_roll_inside_support_and_fill_outside():
    x = torch.randn(9, 11, dtype=torch.complex128)
    out = fourier_shift(x, 2, 3, fill=1.0)
    rolled = torch.roll(x, (2, 3), dims=(-2, -1))
    torch.testing.assert_close(out[2:, 3:], rolled[2:, 3:], atol=1e-12, rtol=0)
    torch.testing.assert_close(out[:2], torch.ones_like(out[:2]), atol=1e-12, rtol=0)
    torch.testing.assert_close(out[:, :3], torch.ones_like(out[:, :3]), atol=1e-12, rtol=0)
    torch.testing.assert_close(roll_with_fill(x, 2, 3, fill=1.0), out, atol=1e-12, rtol=0)


@settings(max_examples=15, deadline=None)
@given(sy=st.floats(-5, 5), sx=st.floats(-5, 5), seed=st.integers(0, 100))
def test_fourier_shift_preserves_power(sy, sx, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 12, generator=g, dtype=torch.complex128)
    out = fourier_shift(x, sy, sx)
    assert float(out.abs().square().sum()) == pytest.approx(
        float(x.abs().square().sum()), rel=1e-10
    )


def test_subpixel_shift_of_a_plane_wave_matches_the_shift_theorem():
    n, k, s = 32, 3, 0.37
    idx = torch.arange(n, dtype=torch.float64)
    wave = torch.exp(2j * math.pi * k * idx / n)[None, :].expand(4, n)
    expected = torch.exp(2j * math.pi * k * (idx - s) / n)[None, :].expand(4, n)
    torch.testing.assert_close(fourier_shift(wave, 0.0, s), expected, atol=1e-12, rtol=0)


def test_fourier_shift_of_real_map_stays_real_and_is_differentiable_in_the_shift():
    x = torch.randn(8, 8, dtype=torch.float64)
    s = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    out = fourier_shift(x, s, 0.0)
    assert not out.is_complex()
    out.square().mul(torch.arange(8.0, dtype=torch.float64)[:, None]).sum().backward()
    assert s.grad is not None and math.isfinite(float(s.grad)) and float(s.grad) != 0.0


# ---------------------------------------------------------------- rotation
def test_rotation_by_90_degrees_equals_rot90_on_an_odd_grid():
    x = torch.randn(2, 9, 9, dtype=torch.complex128)
    out = rotate(x, math.pi / 2)
    # +90° takes (x, y) -> (-y, x): torch.rot90 with k=-1 on (row, col)
    torch.testing.assert_close(out, torch.rot90(x, -1, dims=(-2, -1)), atol=1e-9, rtol=0)
    torch.testing.assert_close(
        rotate(x, math.pi), torch.rot90(x, 2, dims=(-2, -1)), atol=1e-9, rtol=0
    )


def test_rotation_on_an_even_grid_turns_about_the_optical_axis_pixel():
    x = torch.zeros(8, 8, dtype=torch.float64)
    x[4, 6] = 1.0  # column offset +2 from the axis pixel (4, 4)
    out = rotate(x, math.pi / 2)
    assert float(out[6, 4]) == pytest.approx(1.0, abs=1e-9)  # now row offset +2
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-9)


def test_rotation_by_zero_is_identity_and_fill_enters_from_outside():
    x = torch.randn(7, 7, dtype=torch.complex64)
    torch.testing.assert_close(rotate(x, 0.0), x)
    out = rotate(torch.zeros(7, 7, dtype=torch.complex128), math.pi / 4, fill=1.0)
    assert abs(complex(out[0, 0]) - 1.0) < 1e-12  # corner sampled from outside the map
    assert abs(complex(out[3, 3])) < 1e-12  # axis pixel maps to itself


# ---------------------------------------------------------------- misalignment
def test_distance_jitter_is_nominal_at_zero_std_and_has_the_requested_spread():
    assert jitter_distance_m(0.01, 0.0) == 0.01
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([jitter_distance_m(0.01, 1e-5, g) for _ in range(2000)])
    assert float(draws.mean()) == pytest.approx(0.01, abs=3 * 1e-5 / math.sqrt(2000) * 1.5)
    assert float(draws.std()) == pytest.approx(1e-5, rel=0.1)
    with pytest.raises(ValueError, match="std_m"):
        jitter_distance_m(0.01, -1.0)


def test_misalignment_with_zero_std_is_identity_in_training_mode():
    grid = Grid((8, 8), 1e-6)
    mis = Misalignment()
    t = torch.randn(1, 8, 8, dtype=torch.complex64)
    assert mis.training
    torch.testing.assert_close(mis(t, grid), t, rtol=0, atol=0)


def test_misalignment_is_identity_in_eval_mode():
    grid = Grid((8, 8), 1e-6)
    mis = Misalignment(shift_std_m=3e-6, rotation_std_rad=0.3, distance_std_m=1e-6).eval()
    t = torch.randn(1, 8, 8, dtype=torch.complex64)
    torch.testing.assert_close(mis(t, grid), t, rtol=0, atol=0)
    assert mis.last_perturbation.is_identity


def test_misalignment_draws_are_reproducible_and_scale_with_the_stds():
    a = Misalignment(1e-6, 0.01, 2e-6, generator=torch.Generator().manual_seed(5))
    b = Misalignment(1e-6, 0.01, 2e-6, generator=torch.Generator().manual_seed(5))
    pa = [a.sample() for _ in range(400)]
    assert pa[:3] == [b.sample() for _ in range(3)]
    shifts = torch.tensor([p.shift_x_m for p in pa])
    dists = torch.tensor([p.distance_m for p in pa])
    assert float(shifts.std()) == pytest.approx(1e-6, rel=0.15)
    assert float(dists.std()) == pytest.approx(2e-6, rel=0.15)


def test_misalignment_shifts_the_transmission_by_the_perturbation_in_pixels():
    grid = Grid((10, 10), 2e-6)
    mis = Misalignment(fill=1.0)
    t = torch.exp(1j * torch.randn(1, 10, 10, dtype=torch.float64))
    out = mis.apply(t, grid, Perturbation(shift_y_m=-4e-6, shift_x_m=6e-6))
    torch.testing.assert_close(out, roll_with_fill(t, -2, 3, fill=1.0), atol=1e-12, rtol=0)


def test_negative_misalignment_std_raises_naming_the_parameter():
    with pytest.raises(ValueError, match="rotation_std_rad"):
        Misalignment(rotation_std_rad=-0.1)
