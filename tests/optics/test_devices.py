"""Input devices and the camera against closed forms and counting statistics."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.optics.devices import (
    DMD,
    SLM,
    Camera,
    Laser,
    adc,
    aperture_weights,
    bayer_matrix,
    normalize_power,
    photon_count,
    pixel_overlap_matrix,
    shot_noise,
)
from lightgen.optics.grid import Grid, power

HC_EV_NM = 1239.841984  # h c in eV nm (CODATA), independent of the module's SI constants
EV_J = 1.602176634e-19

FAST = settings(max_examples=15, deadline=None)


def _uniform(grid: Grid, irradiance_w_m2: float | list[float], batch: int = 1) -> torch.Tensor:
    """A flat field with |E|^2 = irradiance (per wavelength) everywhere on the grid."""
    irr = torch.as_tensor(irradiance_w_m2, dtype=torch.float64).reshape(-1, 1, 1)
    amp = irr.sqrt().expand(grid.n_wavelengths, *grid.shape)
    return amp.expand(batch, -1, -1, -1).to(torch.complex64).contiguous()


def _random_field(grid: Grid, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, grid.n_wavelengths, *grid.shape)
    return torch.complex(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))


# --------------------------------------------------------------------------- laser


def test_normalize_power_sets_each_wavelength_channel_to_its_power():
    grid = Grid((32, 32), 2e-6, (532e-9, 633e-9))
    out = normalize_power(_random_field(grid), grid, (1e-3, 3e-3))
    expected = torch.tensor([[1e-3, 3e-3], [1e-3, 3e-3]])
    torch.testing.assert_close(power(out, grid), expected, rtol=1e-5, atol=0)


def test_normalize_power_keeps_dark_channels_dark_and_finite():
    grid = Grid((16, 16), 1e-6, (532e-9, 633e-9))
    field = _random_field(grid, batch=1)
    field[:, 1] = 0
    out = normalize_power(field, grid, 1e-3)
    assert torch.isfinite(torch.view_as_real(out)).all()
    assert out[:, 1].abs().max() == 0
    assert power(out, grid)[0, 0].item() == pytest.approx(1e-3, rel=1e-5)


def test_laser_plane_wave_irradiance_is_power_over_grid_area():
    grid = Grid((20, 30), 3e-6)
    beam = Laser(grid, power_w=2e-3).plane_wave(batch_size=2)
    irr = beam.abs().square()
    expected = 2e-3 / (20 * 30 * (3e-6) ** 2)
    torch.testing.assert_close(irr, torch.full_like(irr, expected), rtol=1e-5, atol=0)


@pytest.mark.parametrize("bad", [-1e-3, 0.0, float("nan")])
def test_laser_rejects_non_positive_power(bad):
    with pytest.raises(ValueError, match="power_w"):
        Laser(Grid((8, 8), 1e-6), power_w=bad)


# --------------------------------------------------------------------------- SLM


@FAST
@given(bits=st.integers(1, 8), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_phase_slm_is_unit_amplitude_on_its_aperture_and_dark_outside(bits, k, seed):
    grid = Grid((32, 32), 1e-6)
    img = torch.rand(2, 1, 7, 9, generator=torch.Generator().manual_seed(seed))
    field = SLM(grid, "phase", bit_depth=bits, slm_pixel_pitch_m=k * 1e-6)(img)
    amp = field.abs()
    top, left = 16 - (7 * k) // 2, 16 - (9 * k) // 2
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[top : top + 7 * k, left : left + 9 * k] = True
    torch.testing.assert_close(amp[..., inside], torch.ones_like(amp[..., inside]))
    assert amp[..., ~inside].max() == 0


@FAST
@given(bits=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_phase_slm_levels_are_multiples_of_two_pi_over_two_to_the_bits(bits, seed):
    grid = Grid((16, 16), 1e-6)
    img = torch.rand(
        1, 1, 16, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    field = SLM(grid, "phase", bit_depth=bits)(img)
    steps = torch.remainder(field.angle(), 2 * math.pi) / (2 * math.pi / 2**bits)
    torch.testing.assert_close(steps, steps.round(), atol=1e-6, rtol=0)


def test_phase_slm_ramp_uses_all_two_to_the_bits_levels():
    grid = Grid((8, 64), 1e-6)
    ramp = torch.linspace(0, 1, 64, dtype=torch.float64).expand(1, 1, 8, 64)
    field = SLM(grid, "phase", bit_depth=3)(ramp)
    levels = torch.remainder(field.angle(), 2 * math.pi) / (2 * math.pi / 8)
    assert sorted(set(levels.round().long().flatten().tolist())) == list(range(8))


@pytest.mark.parametrize("m", [0, 1, 100, 255])
def test_amplitude_slm_power_scales_as_gray_squared(m):
    grid = Grid((40, 40), 1e-6)
    gray = m / 255
    img = torch.full((1, 1, 10, 10), gray, dtype=torch.float64)
    field = SLM(grid, "amplitude", bit_depth=8, slm_pixel_pitch_m=3e-6)(img)
    expected = gray**2 * (10 * 3) ** 2 * (1e-6) ** 2  # |E| = gray over 30x30 samples
    assert power(field, grid).item() == pytest.approx(expected, rel=1e-12, abs=1e-30)


@pytest.mark.parametrize(("k", "ff"), [(4, 0.5), (10, 0.8), (6, 1 / 3), (5, 0.6)])
def test_fill_factor_cuts_power_by_fill_factor_squared_when_border_is_whole_samples(k, ff):
    grid = Grid((64, 64), 1e-6)
    img = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    full = power(SLM(grid, "phase", slm_pixel_pitch_m=k * 1e-6)(img), grid)
    slm = SLM(grid, "phase", slm_pixel_pitch_m=k * 1e-6, fill_factor=ff)
    cut = power(slm(img), grid)
    assert (cut / full).item() == pytest.approx(ff**2, rel=1e-9)
    assert slm.aperture_power_fraction == pytest.approx(ff**2, rel=1e-9)


@FAST
@given(k=st.integers(1, 9), ff=st.floats(0.05, 1.0))
def test_fill_factor_scales_zeroth_order_by_fill_factor_squared_at_any_sampling(k, ff):
    # the mean field over the SLM (the undiffracted order) is the aperture's area fraction
    grid = Grid((64, 64), 1e-6)
    img = torch.ones(1, 1, 5, 7, dtype=torch.float64)
    slm = SLM(grid, "amplitude", slm_pixel_pitch_m=k * 1e-6, fill_factor=ff)
    field = slm(img)
    mean_field = field.sum().real.item() / (5 * 7 * k * k)
    assert mean_field == pytest.approx(ff**2, rel=1e-9)
    measured = power(field, grid).item() / (5 * 7 * k * k * 1e-12)
    assert slm.aperture_power_fraction == pytest.approx(measured, rel=1e-9)
    assert slm.aperture_power_fraction <= ff**2 + 1e-12


def test_aperture_weights_for_unaligned_border_share_the_edge_sample():
    # k=4, ff=0.75: active [0.5, 3.5) -> half of samples 0 and 3, all of 1 and 2
    w = aperture_weights(4, 0.75)
    torch.testing.assert_close(w, torch.tensor([0.5, 1.0, 1.0, 0.5], dtype=torch.float64))


def test_slm_pixel_covers_k_by_k_samples_with_centre_pixel_on_axis():
    grid = Grid((15, 16), 1e-6)
    img = torch.zeros(1, 1, 3, 3)
    img[..., 1, 1] = 1.0  # the centre SLM pixel
    field = SLM(grid, "amplitude", slm_pixel_pitch_m=3e-6)(img)
    lit = field.abs()[0, 0] > 0
    expected = torch.zeros(15, 16, dtype=torch.bool)
    expected[7 - 1 : 7 + 2, 8 - 1 : 8 + 2] = True  # 3x3 block centred on sample (H//2, W//2)
    assert torch.equal(lit, expected)


def test_slm_phase_range_can_differ_per_wavelength():
    grid = Grid((8, 8), 1e-6, (532e-9, 1064e-9))
    img = torch.full((1, 1, 8, 8), 0.25, dtype=torch.float64)
    field = SLM(grid, "phase", bit_depth=8, phase_range_rad=(2 * math.pi, math.pi))(img)
    phase = field.angle()
    torch.testing.assert_close(phase[:, 0], torch.full_like(phase[:, 0], math.pi / 2))
    torch.testing.assert_close(phase[:, 1], torch.full_like(phase[:, 1], math.pi / 4))


def test_slm_per_wavelength_images_drive_their_own_channel():
    grid = Grid((8, 8), 1e-6, (532e-9, 633e-9))
    img = torch.stack([torch.full((8, 8), 1.0), torch.full((8, 8), 0.0)])[None]
    field = SLM(grid, "amplitude")(img)
    assert field[:, 0].abs().min() == 1 and field[:, 1].abs().max() == 0


def test_slm_straight_through_gradient_of_power_is_two_gray_times_area():
    grid = Grid((12, 12), 1e-6)
    img = torch.full((1, 1, 4, 4), 0.3001, dtype=torch.float64, requires_grad=True)
    p = power(SLM(grid, "amplitude", bit_depth=4, slm_pixel_pitch_m=2e-6)(img), grid).sum()
    p.backward()
    q = round(0.3001 * 15) / 15  # the quantised gray used in the forward pass
    torch.testing.assert_close(img.grad, torch.full_like(img, 2 * q * 4 * 1e-12))


def test_slm_applies_illumination_and_keeps_laser_power_for_full_aperture():
    grid = Grid((16, 16), 1e-6)
    beam = Laser(grid, power_w=1e-3).plane_wave()
    field = SLM(grid, "phase")(torch.rand(1, 1, 16, 16), illumination=beam)
    assert power(field, grid).item() == pytest.approx(1e-3, rel=1e-5)


def test_slm_returns_complex128_for_float64_images():
    grid = Grid((8, 8), 1e-6)
    assert SLM(grid)(torch.rand(1, 1, 4, 4, dtype=torch.float64)).dtype == torch.complex128
    assert SLM(grid)(torch.rand(1, 1, 4, 4)).dtype == torch.complex64


def test_slm_rejects_pitch_that_is_not_a_whole_multiple_of_grid_pitch():
    with pytest.raises(ValueError, match=r"slm_pixel_pitch_m=2\.5e-06.*pixel_pitch_m=1e-06.*Use"):
        SLM(Grid((16, 16), 1e-6), slm_pixel_pitch_m=2.5e-6)


def test_slm_accepts_pitch_that_is_a_multiple_up_to_float_rounding():
    assert SLM(Grid((16, 16), 2e-6), slm_pixel_pitch_m=6e-6).samples_per_pixel == 3


def test_slm_rejects_pitch_smaller_than_grid_pitch():
    with pytest.raises(ValueError, match=r"slm_pixel_pitch_m.*smaller than the grid pixel_pitch_m"):
        SLM(Grid((16, 16), 2e-6), slm_pixel_pitch_m=1e-6)


def test_slm_rejects_image_larger_than_grid():
    slm = SLM(Grid((16, 16), 1e-6), slm_pixel_pitch_m=2e-6)
    with pytest.raises(ValueError, match=r"images of 9x8 .* 18x16 grid samples.*Grid of at least"):
        slm(torch.rand(1, 1, 9, 8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bit_depth": 0}, "bit_depth"),
        ({"fill_factor": 0.0}, "fill_factor"),
        ({"fill_factor": 1.5}, "fill_factor"),
        ({"mode": "intensity"}, "mode"),
        ({"phase_range_rad": -1.0}, "phase_range_rad"),
    ],
)
def test_slm_rejects_bad_settings_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SLM(Grid((16, 16), 1e-6), **kwargs)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(4, 4), "batch, channels"),
        (torch.rand(1, 3, 4, 4), "3 channels"),
        (torch.ones(1, 1, 4, 4, dtype=torch.uint8), "float"),
    ],
)
def test_slm_rejects_bad_images_with_a_fix(images, match):
    with pytest.raises(ValueError, match=match):
        SLM(Grid((16, 16), 1e-6, (532e-9, 633e-9)))(images)


# --------------------------------------------------------------------------- DMD


@FAST
@given(seed=st.integers(0, 2**16), dither=st.booleans(), k=st.integers(1, 3))
def test_dmd_field_is_binary(seed, dither, k):
    grid = Grid((32, 32), 1e-6)
    img = torch.rand(2, 1, 8, 10, generator=torch.Generator().manual_seed(seed))
    field = DMD(grid, dmd_pixel_pitch_m=k * 1e-6, dither=dither)(img)
    assert set(torch.unique(field.real).tolist()) <= {0.0, 1.0}
    assert field.imag.abs().max() == 0


def test_dmd_threshold_switches_mirrors_above_it():
    grid = Grid((1, 4), 1e-6)
    img = torch.tensor([[[[0.1, 0.3, 0.31, 0.9]]]])
    field = DMD(grid, threshold=0.3)(img)
    assert field.real.flatten().tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("m", [0, 1, 17, 32, 63, 64])
def test_ordered_dither_turns_on_m_of_64_mirrors_for_gray_m_over_64(m):
    grid = Grid((16, 24), 1e-6)
    img = torch.full((1, 1, 16, 24), m / 64, dtype=torch.float64)
    on = DMD(grid, dither=True)(img).real[0, 0]
    tiles = on.reshape(2, 8, 3, 8).sum(dim=(1, 3))
    assert torch.equal(tiles, torch.full_like(tiles, float(m)))


def test_bayer_matrix_matches_bayer_1973_and_is_a_permutation():
    assert bayer_matrix(2).tolist() == [[0, 2], [3, 1]]
    b8 = bayer_matrix(8)
    assert sorted(b8.flatten().tolist()) == list(range(64))
    with pytest.raises(ValueError, match="power of two"):
        bayer_matrix(6)


def test_dmd_straight_through_gradient_is_identity():
    grid = Grid((8, 8), 1e-6)
    img = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    DMD(grid)(img).real.sum().backward()
    torch.testing.assert_close(img.grad, torch.ones_like(img))


def test_dmd_rejects_bad_pitch_and_threshold():
    with pytest.raises(ValueError, match="dmd_pixel_pitch_m"):
        DMD(Grid((8, 8), 1e-6), dmd_pixel_pitch_m=1.5e-6)
    with pytest.raises(ValueError, match="threshold"):
        DMD(Grid((8, 8), 1e-6), threshold=1.2)


# --------------------------------------------------------------------------- camera: optics


def test_pixel_overlap_matrix_matches_hand_computed_areas():
    a = pixel_overlap_matrix(n_samples=3, n_pixels=2, samples_per_pixel=1.5, start_sample=0.0)
    torch.testing.assert_close(
        a, torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]], dtype=torch.float64)
    )


@pytest.mark.parametrize("k", [1, 2, 5, 7])
def test_pixel_integration_conserves_power_for_whole_pitch_ratios(k):
    grid = Grid((48, 50), 1e-6, (532e-9, 633e-9))  # 48, 50 not multiples of 7: sensor overhangs
    cam = Camera(grid, k * 1e-6, noise=False)
    field = _random_field(grid)
    torch.testing.assert_close(
        cam.pixel_power_w(field).sum((-2, -1)), power(field, grid), rtol=1e-5, atol=0
    )


@FAST
@given(ratio=st.floats(1.01, 4.3))
def test_pixel_integration_conserves_power_for_any_pitch_ratio(ratio):
    grid = Grid((40, 36), 1e-6)
    cam = Camera(grid, ratio * 1e-6, noise=False)
    field = _random_field(grid)
    torch.testing.assert_close(
        cam.pixel_power_w(field).sum((-2, -1)), power(field, grid), rtol=1e-5, atol=0
    )


@FAST
@given(ratio=st.floats(1.0, 4.3), n=st.integers(1, 8))
def test_uniform_irradiance_gives_irradiance_times_pixel_area(ratio, n):
    grid = Grid((40, 40), 1e-6)
    pitch_m = ratio * 1e-6
    cam = Camera(grid, pitch_m, n_pixels=(n, n + 1), noise=False)  # sensor inside the grid
    p = cam.pixel_power_w(_uniform(grid, 2.0))
    torch.testing.assert_close(p, torch.full_like(p, 2.0 * pitch_m**2), rtol=1e-5, atol=0)


def test_point_source_on_axis_lands_in_the_pixel_at_index_n_over_2():
    grid = Grid((64, 64), 1e-6)
    field = torch.zeros(1, 1, 64, 64, dtype=torch.complex64)
    field[..., 32, 32] = 1.0
    cam = Camera(grid, 4e-6, noise=False)
    p = cam.pixel_power_w(field)[0, 0]
    assert cam.n_pixels == (16, 16)
    assert p[8, 8].item() == pytest.approx(1e-12) and p.sum().item() == pytest.approx(1e-12)
    _y, x = cam.pixel_axes()
    assert x[8].item() == pytest.approx(1.5e-6)  # pixel 8 spans samples 32..35, centre 33.5


# --------------------------------------------------------------------------- camera: photons


def test_photon_count_is_energy_over_photon_energy():
    photon_energy_j = HC_EV_NM / 500.0 * EV_J  # 2.4797 eV at 500 nm
    expected = 1e-12 * 1e-3 / photon_energy_j  # 1 pW for 1 ms: about 2517 photons
    assert photon_count(1e-12, 1e-3, 500e-9) == pytest.approx(expected, rel=1e-8)
    assert expected == pytest.approx(2517.0, abs=0.5)


def test_camera_mean_electrons_are_qe_times_photons_plus_dark_signal():
    grid = Grid((24, 24), 1e-6, (500e-9, 800e-9))
    cam = Camera(
        grid,
        3e-6,
        quantum_efficiency=(0.6, 0.3),
        exposure_s=2e-3,
        dark_current_e_per_s=500.0,
        noise=False,
    )
    irr = 1e-2  # W/m^2 -> 9e-14 W per 3 um pixel
    e = cam.mean_electrons(_uniform(grid, irr))
    for ch, (lam_nm, qe) in enumerate([(500.0, 0.6), (800.0, 0.3)]):
        photons = irr * (3e-6) ** 2 * 2e-3 / (HC_EV_NM / lam_nm * EV_J)
        want = qe * photons + 500.0 * 2e-3
        torch.testing.assert_close(e[0, ch], torch.full_like(e[0, ch], want), rtol=1e-5, atol=0)


def test_noise_free_unquantised_image_is_electrons_over_full_well():
    grid = Grid((16, 16), 1e-6)
    cam = Camera(grid, 2e-6, noise=False, quantize=False, full_well_e=5000)
    field = _uniform(grid, 1e-3)
    img = cam(field)
    torch.testing.assert_close(img, cam.mean_electrons(field) / 5000)


def _camera_for_mean(mean_e: float, read_noise_e: float = 0.0, **kw) -> tuple[Camera, torch.Tensor]:
    """A 4x128x128-pixel camera and a uniform field giving ``mean_e`` electrons per pixel."""
    grid = Grid((128, 128), 1e-6, (600e-9,))
    cam = Camera(grid, 1e-6, read_noise_e=read_noise_e, full_well_e=1e9, quantize=False, **kw)
    per_w_m2 = cam.mean_electrons(_uniform(grid, 1.0))[0, 0, 0, 0].item()
    return cam, _uniform(grid, mean_e / per_w_m2, batch=4)


def test_shot_noise_is_poisson_variance_equals_mean_and_counts_are_integers():
    cam, field = _camera_for_mean(100.0)
    e = cam.electrons(field, generator=torch.Generator().manual_seed(1)).double()
    # 65536 pixels: std of the sample variance is sqrt((mu + 2 mu^2)/n) ~ 0.55 e^2
    assert e.mean().item() == pytest.approx(100.0, abs=0.25)
    assert e.var().item() == pytest.approx(100.0, abs=3.0)
    assert torch.equal(e, e.round())


def test_read_noise_adds_to_shot_noise_in_quadrature():
    cam, field = _camera_for_mean(100.0, read_noise_e=6.0)
    e = cam.electrons(field, generator=torch.Generator().manual_seed(2)).double()
    assert e.var().item() == pytest.approx(100.0 + 36.0, abs=4.0)


def test_dark_current_brings_its_own_shot_noise():
    cam, field = _camera_for_mean(1.0, dark_current_e_per_s=5e4)  # 50 e- of dark signal in 1 ms
    e = cam.electrons(field * 0, generator=torch.Generator().manual_seed(3)).double()
    assert e.mean().item() == pytest.approx(50.0, abs=0.2)
    assert e.var().item() == pytest.approx(50.0, abs=2.0)


def test_differentiable_shot_noise_keeps_poisson_mean_and_variance():
    cam, field = _camera_for_mean(100.0)
    field = field.clone().requires_grad_(True)
    e = cam.electrons(field, generator=torch.Generator().manual_seed(4))
    assert e.requires_grad
    assert not torch.equal(e, e.round())  # normal approximation, not integer counts
    e.sum().backward()
    assert torch.isfinite(field.grad.real).all() and field.grad.abs().sum() > 0
    e = e.detach().double()
    assert e.mean().item() == pytest.approx(100.0, abs=0.25)
    assert e.var().item() == pytest.approx(100.0, abs=3.0)


def test_shot_noise_gradient_is_finite_on_dark_pixels():
    mean = torch.tensor([0.0, 4.0], requires_grad=True)
    shot_noise(mean, torch.Generator().manual_seed(0)).sum().backward()
    assert torch.isfinite(mean.grad).all()


def test_same_generator_seed_gives_the_same_noisy_frame():
    cam, field = _camera_for_mean(20.0, read_noise_e=2.0)
    a = cam(field, generator=torch.Generator().manual_seed(7))
    b = cam(field, generator=torch.Generator().manual_seed(7))
    c = cam(field, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_noise_off_camera_is_deterministic():
    grid = Grid((16, 16), 1e-6)
    cam = Camera(grid, 2e-6, noise=False)
    field = _random_field(grid) * 3e2
    assert torch.equal(cam(field), cam(field))


# ------------------------------------------------------------------- camera: saturation and ADC


def test_saturation_clips_electrons_at_full_well_and_reads_top_code():
    grid = Grid((16, 16), 1e-6)
    cam = Camera(grid, 2e-6, full_well_e=1000, bit_depth=10, read_noise_e=5.0)
    field = _uniform(grid, 1e3)  # ~1e9 electrons per pixel
    gen = torch.Generator().manual_seed(0)
    assert cam.mean_electrons(field).min() > 1e6
    assert torch.equal(cam.electrons(field, gen), torch.full((1, 1, 8, 8), 1000.0))
    assert torch.equal(cam.digital_numbers(field, gen), torch.full((1, 1, 8, 8), 1023.0))
    assert torch.equal(cam(field, gen), torch.ones(1, 1, 8, 8))


@pytest.mark.parametrize("bits", [1, 3, 8, 12])
def test_adc_has_exactly_two_to_the_bits_codes(bits):
    electrons = torch.linspace(-50.0, 1.2e4, 100_001, dtype=torch.float64)
    dn = adc(electrons, full_well_e=1e4, bit_depth=bits)
    codes = torch.unique(dn)
    assert codes.numel() == 2**bits
    assert codes.min() == 0 and codes.max() == 2**bits - 1
    assert torch.equal(codes, codes.round())


def test_adc_straight_through_gradient_is_gain_below_full_well_and_zero_above():
    electrons = torch.tensor([10.3, 500.7, 999.0, 1500.0], dtype=torch.float64, requires_grad=True)
    adc(electrons, full_well_e=1000, bit_depth=8).sum().backward()
    gain = 255 / 1000
    torch.testing.assert_close(
        electrons.grad, torch.tensor([gain, gain, gain, 0.0], dtype=torch.float64)
    )


def test_camera_quantisation_passes_the_unquantised_gradient():
    grid = Grid((16, 16), 1e-6)
    base = _random_field(grid, batch=1).to(torch.complex128) * 1.0e-2
    grads = []
    for quantize in (True, False):
        field = base.clone().requires_grad_(True)
        cam = Camera(grid, 2e-6, noise=False, quantize=quantize, full_well_e=1e6)
        assert cam.mean_electrons(field).max() < 1e6  # unsaturated
        (cam(field) * torch.linspace(0, 1, 64, dtype=torch.float64).view(8, 8)).sum().backward()
        grads.append(field.grad)
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().sum() > 0


# --------------------------------------------------------------------------- camera: bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exposure_s": -1e-3}, r"exposure_s.*-0\.001.*seconds"),
        ({"quantum_efficiency": 1.2}, r"quantum_efficiency.*1\.2.*\(0, 1\]"),
        ({"quantum_efficiency": 0.0}, r"quantum_efficiency.*fraction"),
        ({"bit_depth": 0}, r"bit_depth.*got 0"),
        ({"full_well_e": 0}, r"full_well_e.*electrons"),
        ({"read_noise_e": -1.0}, r"read_noise_e.*>= 0"),
        ({"dark_current_e_per_s": -1.0}, r"dark_current_e_per_s.*>= 0"),
        ({"n_pixels": (0, 4)}, r"n_pixels\[0\]"),
        ({"camera_pixel_pitch_m": 0.5e-6}, r"camera_pixel_pitch_m=5e-07.*smaller.*Grid with"),
    ],
)
def test_camera_rejects_bad_settings_naming_parameter_and_fix(kwargs, match):
    args = {"camera_pixel_pitch_m": 2e-6, **kwargs}
    with pytest.raises(ValueError, match=match):
        Camera(Grid((16, 16), 1e-6), **args)


def test_camera_rejects_field_of_the_wrong_shape():
    cam = Camera(Grid((16, 16), 1e-6), 2e-6)
    with pytest.raises(ValueError, match="grid expects"):
        cam(torch.zeros(1, 1, 8, 8, dtype=torch.complex64))


# --------------------------------------------------------------------------- device-agnostic


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_slm_to_camera_on_cuda_matches_cpu():
    grid = Grid((64, 64), 1e-6, (532e-9, 633e-9))
    img = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    slm = SLM(grid, "amplitude", slm_pixel_pitch_m=2e-6, fill_factor=0.75)
    cam = Camera(grid, 2.5e-6, noise=False, quantize=False)
    beam = Laser(grid, 1e-9).plane_wave()
    cpu = cam(slm(img, beam))
    slm_c, cam_c = slm.cuda(), cam.cuda()
    gpu = cam_c(slm_c(img.cuda(), beam.cuda()))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-6)
    gen = torch.Generator(device="cuda").manual_seed(0)
    noisy = Camera(grid, 2e-6).cuda()(slm_c(img.cuda(), beam.cuda()), generator=gen)
    assert noisy.device.type == "cuda"
    dmd = DMD(grid, 2e-6, dither=True).cuda()
    assert dmd(img.cuda()).device.type == "cuda"
