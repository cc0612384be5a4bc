"""Thin elements against closed forms: lens phase and Airy focus, aperture areas, passivity,
metasurface dispersion, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import j1

from lightgen.optics.elements import (
    AmplitudeMask,
    CircularAperture,
    MetasurfaceLayer,
    PhaseMask,
    RectangularAperture,
    ThinLens,
    apply_phase,
    apply_transmission,
    circular_aperture,
    metasurface_transmission,
    min_lens_focal_length_m,
    rectangular_aperture,
    thin_lens_phase,
)
from lightgen.optics.fabrication import HeightQuantizer, Misalignment, height_levels
from lightgen.optics.grid import Grid, intensity, power
from lightgen.optics.materials import get_material
from lightgen.optics.propagation import propagate


def malitson_n(lam_um: float) -> float:
    l2 = lam_um**2
    return math.sqrt(
        1
        + 0.6961663 * l2 / (l2 - 0.0684043**2)
        + 0.4079426 * l2 / (l2 - 0.1162414**2)
        + 0.8974794 * l2 / (l2 - 9.896161**2)
    )


def random_field(grid: Grid, batch: int = 2, seed: int = 0, dtype=torch.complex64):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, grid.n_wavelengths, *grid.shape)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g)).to(dtype)


# --------------------------------------------------------------------- lenses
def test_thin_lens_phase_equals_paraxial_formula_at_sample_points():
    grid = Grid((16, 12), 4e-6, (450e-9, 633e-9))
    f = 0.02
    phase = thin_lens_phase(grid, f)
    assert phase.shape == (2, 16, 12) and phase.dtype == torch.float64
    for li, lam in enumerate(grid.wavelengths_m):
        for i, j in [(0, 0), (8, 6), (3, 11), (15, 2)]:
            y, x = (i - 8) * 4e-6, (j - 6) * 4e-6
            assert float(phase[li, i, j]) == pytest.approx(
                -2 * math.pi / lam * (x * x + y * y) / (2 * f), rel=1e-12, abs=1e-15
            )


def test_lens_focuses_a_plane_wave_to_the_airy_pattern_at_the_focal_plane():
    lam, dx, n, f, a = 0.5e-6, 2e-6, 256, 3e-3, 0.2e-3
    grid = Grid((n, n), dx, (lam,))
    lens = ThinLens(grid, f, aperture_radius_m=a)
    focus = propagate(lens(torch.ones(1, 1, n, n, dtype=torch.complex128)), grid, f)
    c = n // 2
    # on-axis focal amplitude of a uniform pupil: |U(0)| = U0 * area / (lambda f) (Goodman 4-28)
    area = math.pi * a * a
    assert abs(complex(focus[0, 0, c, c])) == pytest.approx(area / (lam * f), rel=0.01)
    # radial profile: I(r)/I(0) = [2 J1(v)/v]^2, v = pi D r / (lambda f); first zero 1.22 lambda f/D
    inten = intensity(focus)[0, 0]
    profile = (inten[c, c + 1 : c + 8] / inten[c, c]).numpy()
    v = math.pi * 2 * a * np.arange(1, 8) * dx / (lam * f)
    np.testing.assert_allclose(profile, (2 * j1(v) / v) ** 2, atol=5e-3)
    # symmetric spot centred on the axis pixel
    assert int(inten.argmax()) == c * n + c


def test_minimum_lens_focal_length_is_n_dx_squared_over_lambda():
    grid = Grid((64, 64), 8e-6, (532e-9, 633e-9))
    assert min_lens_focal_length_m(grid) == pytest.approx(64 * (8e-6) ** 2 / 532e-9, rel=1e-12)
    # a smaller pupil relaxes the rule to 2 dx (r + dx) / lambda
    assert min_lens_focal_length_m(grid, 50e-6) == pytest.approx(
        2 * 8e-6 * 58e-6 / 532e-9, rel=1e-12
    )


def test_too_short_focal_length_raises_naming_it_and_the_minimum():
    grid = Grid((64, 64), 8e-6, (532e-9,))
    f_min = 64 * (8e-6) ** 2 / 532e-9
    with pytest.raises(ValueError, match=r"focal_length_m=0\.005.*\|f\| >= 0\.00769"):
        ThinLens(grid, 0.005)
    ThinLens(grid, f_min * 1.001)  # just above the limit is accepted
    ThinLens(grid, -f_min * 1.001)  # diverging lens, same rule
    with pytest.raises(ValueError, match="focal_length_m=0"):
        thin_lens_phase(grid, 0.0)


def test_lens_in_complex128_matches_the_formula_to_double_precision():
    grid = Grid((8, 8), 4e-6, (633e-9,))
    lens = ThinLens(grid, 0.05)
    field = torch.ones(1, 1, 8, 8, dtype=torch.complex128)
    out = lens(field)
    assert out.dtype == torch.complex128
    expected = torch.polar(torch.ones(1, 8, 8, dtype=torch.float64), thin_lens_phase(grid, 0.05))
    torch.testing.assert_close(out[0], expected, atol=1e-14, rtol=0)
    assert "fixed_transmission" not in lens.state_dict()


# ------------------------------------------------------------------ apertures
def test_area_weighted_rectangle_transmits_exactly_its_area():
    grid = Grid((32, 40), 1e-6)
    t = rectangular_aperture(grid, (7.7e-6, 13.3e-6), center_m=(0.4e-6, -1.3e-6))
    assert float(t.sum()) * 1e-12 == pytest.approx(13.3e-6 * 7.7e-6, rel=1e-12)
    assert float(t.min()) >= 0 and float(t.max()) == 1.0


def test_rectangle_size_is_y_then_x_like_center_and_grid_shape():
    grid = Grid((16, 24), 1e-6)  # 16 rows (y), 24 columns (x)
    t = rectangular_aperture(grid, (4e-6, 10e-6), edge="hard")  # 4 um tall, 10 um wide
    rows, cols = t.nonzero().unbind(1)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (5, 11)  # closed edges
    by_keyword = rectangular_aperture(grid, width_m=10e-6, height_m=4e-6, edge="hard")
    assert torch.equal(t, by_keyword)
    assert torch.equal(RectangularAperture(grid, (4e-6, 10e-6), edge="hard").transmission()[0], t)
    with pytest.raises(ValueError, match=r"size_m=\(height, width\)"):
        rectangular_aperture(grid, 10e-6, 4e-6)  # the old positional (width, height) order
    with pytest.raises(ValueError, match="not both"):
        rectangular_aperture(grid, (4e-6, 10e-6), width_m=10e-6)


def test_area_weighted_circle_amplitude_integral_equals_disc_area():
    grid = Grid((64, 64), 1e-6)
    for r in (3.3e-6, 10e-6, 21.7e-6):
        t = circular_aperture(grid, r, center_m=(0.25e-6, -0.4e-6))
        assert float(t.sum()) * 1e-12 == pytest.approx(math.pi * r * r, rel=2e-3)


def test_hard_edged_circle_keeps_pixels_whose_centres_are_inside():
    grid = Grid((9, 9), 1.0e-6)
    t = circular_aperture(grid, 1.0e-6, edge="hard")
    assert int(t.sum()) == 5  # centre and its four neighbours at distance exactly 1 pitch


def test_plane_wave_power_through_apertures_equals_the_area_ratio():
    grid = Grid((48, 48), 2e-6, (532e-9, 633e-9))
    field = torch.ones(1, 2, 48, 48, dtype=torch.complex128)
    p_in = power(field, grid)
    total_area = (48 * 2e-6) ** 2
    # pixel-aligned rectangle: exact for either edge model
    for edge in ("hard", "area"):
        # pixel boundaries lie at odd micrometres: edges at x in {-9, 11}, y in {-13, 15} um
        rect = RectangularAperture(grid, (28e-6, 20e-6), center_m=(1e-6, 1e-6), edge=edge)
        ratio = power(rect(field), grid) / p_in
        torch.testing.assert_close(ratio, torch.full_like(ratio, 560e-12 / total_area))
    # circle: only edge pixels can err, so the error is bounded by perimeter * pitch / area
    r = 30e-6
    circ = CircularAperture(grid, r)
    ratio = power(circ(field), grid) / p_in
    bound = 2 * math.pi * r * 2e-6 / total_area
    assert bool(((ratio - math.pi * r * r / total_area).abs() < bound).all())


# ------------------------------------------------------------------ passivity
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), init=st.sampled_from([0.3, 0.99, "uniform"]))
def test_passive_elements_never_increase_power(seed, init):
    grid = Grid((12, 10), 3e-6, (450e-9, 633e-9))
    g = torch.Generator().manual_seed(seed)
    field = random_field(grid, seed=seed)
    p_in = power(field, grid)
    elements = [
        AmplitudeMask(grid, init=init, per_wavelength=True, generator=g),
        MetasurfaceLayer(grid, amplitude=True, init="uniform", generator=g),
        CircularAperture(grid, 10e-6),
        RectangularAperture(grid, (7e-6, 11e-6)),
    ]
    for el in elements:
        p_out = power(el(field), grid)
        assert bool((p_out <= p_in * (1 + 1e-6)).all()), type(el).__name__


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_phase_only_elements_conserve_power(seed):
    grid = Grid((12, 12), 3e-6, (450e-9, 633e-9))
    g = torch.Generator().manual_seed(seed)
    field = random_field(grid, seed=seed, dtype=torch.complex128)
    p_in = power(field, grid)
    for el in (
        PhaseMask(grid, init="uniform", generator=g),
        MetasurfaceLayer(grid, material="tio2", init="uniform", generator=g),
        ThinLens(grid, 0.05),
    ):
        torch.testing.assert_close(power(el(field), grid), p_in, rtol=1e-5, atol=0)


# -------------------------------------------------------------- phase masks
def test_phase_mask_applies_an_independent_phase_per_wavelength_channel():
    grid = Grid((6, 6), 8e-6, (450e-9, 532e-9, 633e-9))
    mask = PhaseMask(grid)
    assert mask.phase_rad.shape == (3, 6, 6)
    with torch.no_grad():
        mask.phase_rad[1] = math.pi / 2
    field = torch.ones(2, 3, 6, 6, dtype=torch.complex64)
    out = mask(field)
    torch.testing.assert_close(out[:, 0], field[:, 0])
    torch.testing.assert_close(out[:, 1], 1j * field[:, 1])
    torch.testing.assert_close(out[:, 2], field[:, 2])


def test_apply_phase_and_apply_transmission_match_the_exponential():
    field = torch.randn(2, 1, 4, 4, dtype=torch.complex128)
    phase = torch.rand(1, 4, 4, dtype=torch.float64) * 6
    expected = field * torch.exp(1j * phase)
    torch.testing.assert_close(apply_phase(field, phase), expected)
    torch.testing.assert_close(apply_transmission(field, torch.exp(1j * phase)), expected)


def test_amplitude_mask_starts_at_the_requested_value_inside_zero_one():
    grid = Grid((5, 5), 1e-6)
    a = AmplitudeMask(grid, init=0.8).amplitude()
    torch.testing.assert_close(a, torch.full((1, 5, 5), 0.8))
    with pytest.raises(ValueError, match="init"):
        AmplitudeMask(grid, init=1.0)


# -------------------------------------------------------------- metasurface
def test_metasurface_phases_at_two_wavelengths_follow_the_dispersion_ratio():
    lam1, lam2 = 450e-9, 633e-9
    grid = Grid((8, 8), 4e-6, (lam1, lam2))
    layer = MetasurfaceLayer(grid, "fused_silica", init="uniform").double()
    phase = layer.phase_rad()
    assert phase.shape == (2, 8, 8)
    ratio = ((malitson_n(0.45) - 1) / lam1) / ((malitson_n(0.633) - 1) / lam2)
    torch.testing.assert_close(phase[0] / phase[1], torch.full((8, 8), ratio, dtype=torch.float64))
    # and each is the thin-element phase of the shared height map
    h = layer.height_m()
    expected = 2 * math.pi * (malitson_n(0.633) - 1) * h / lam2
    torch.testing.assert_close(phase[1], expected, rtol=1e-12, atol=0)


def test_metasurface_default_max_height_gives_two_pi_at_the_longest_wavelength():
    grid = Grid((4, 4), 4e-6, (450e-9, 633e-9))
    layer = MetasurfaceLayer(grid, "sin")
    n = get_material("sin").refractive_index(633e-9)
    assert layer.max_height_m == pytest.approx(633e-9 / (n - 1), rel=1e-12)


def test_metasurface_heights_stay_within_zero_and_max_for_any_raw_value():
    grid = Grid((4, 4), 4e-6, (532e-9,))
    layer = MetasurfaceLayer(grid, max_height_m=1e-6).double()
    with torch.no_grad():
        layer.raw_height.copy_(torch.linspace(-60, 60, 16, dtype=torch.float64).view(4, 4))
    h = layer.height_m().detach()
    assert float(h.min()) >= 0 and float(h.max()) <= 1e-6


def test_metasurface_flat_init_is_a_uniform_phase_plate():
    grid = Grid((6, 6), 4e-6, (532e-9,))
    layer = MetasurfaceLayer(grid, max_height_m=1e-6)
    torch.testing.assert_close(layer.height_m(), torch.full((6, 6), 0.5e-6))


def test_metasurface_forward_equals_field_times_its_transmission_for_every_sample():
    grid = Grid((6, 5), 4e-6, (450e-9, 633e-9))
    layer = MetasurfaceLayer(grid, amplitude=True, init="uniform")
    field = random_field(grid, batch=3)
    torch.testing.assert_close(layer(field), field * layer.transmission()[None])
    t_fn = metasurface_transmission(
        layer.height_m(), "fused_silica", grid.wavelengths_m, layer.amplitude()
    )
    torch.testing.assert_close(layer.transmission(), t_fn)


def test_metasurface_quantisation_puts_every_height_on_an_etch_level():
    grid = Grid((8, 8), 4e-6, (532e-9,))
    layer = MetasurfaceLayer(grid, max_height_m=1.2e-6, quantization=4, init="uniform")
    h = layer.height_m().double()
    levels = height_levels(4, 1.2e-6)
    assert bool(((h[..., None] - levels).abs().min(-1).values < 1e-12).all())
    gumbel = MetasurfaceLayer(grid, quantization=HeightQuantizer(3, "gumbel"))
    assert isinstance(gumbel.quantizer, HeightQuantizer)


def test_gradients_flow_to_every_pixel_of_the_height_map():
    grid = Grid((6, 6), 4e-6, (450e-9, 633e-9))
    layer = MetasurfaceLayer(grid, amplitude=True, init="uniform", filter_radius_m=5e-6)
    field = random_field(grid)
    target = random_field(grid, seed=1)
    loss = (layer(field) - target).abs().square().sum()
    loss.backward()
    assert bool((layer.raw_height.grad.abs() > 0).all())
    assert bool((layer.raw_amplitude.grad.abs() > 0).all())


def test_a_layer_of_pixels_several_samples_wide_shows_blocks_and_trains_per_pixel():
    grid = Grid((12, 12), 2e-6, (450e-9, 633e-9))
    layer = MetasurfaceLayer(grid, amplitude=True, init="uniform", pixel_samples=3)
    assert layer.raw_height.shape == layer.raw_amplitude.shape == (4, 4)
    assert layer.pixel_pitch_m == pytest.approx(6e-6)
    t = layer.transmission()
    assert t.shape == (2, 12, 12)
    for dy in range(3):
        for dx in range(3):
            assert torch.equal(t[:, dy::3, dx::3], t[:, ::3, ::3])
    coarse = MetasurfaceLayer(Grid((4, 4), 6e-6, (450e-9, 633e-9)), amplitude=True)
    with torch.no_grad():
        coarse.raw_height.copy_(layer.raw_height)
        coarse.raw_amplitude.copy_(layer.raw_amplitude)
    assert torch.allclose(t[:, ::3, ::3], coarse.transmission())
    loss = (layer(random_field(grid)) - random_field(grid, seed=1)).abs().square().sum()
    loss.backward()
    assert bool((layer.raw_height.grad.abs() > 0).all())
    with pytest.raises(ValueError, match="pixel_samples=5 does not divide"):
        MetasurfaceLayer(grid, pixel_samples=5)
    with pytest.raises(ValueError, match="pixel_samples=0"):
        MetasurfaceLayer(grid, pixel_samples=0)


def test_pixels_several_samples_wide_diffract_the_binary_gratings_fourier_orders():
    """A binary pi-phase grating of period 2 pixels, each pixel R samples wide. Continuous
    closed form: order m (odd) holds |c_m|^2 = (2 / (pi m))^2; the grid's sampled square
    wave holds 1 / (R sin(pi m / 2R))^2, which tends to it as R grows. With one sample per
    pixel (R = 1) the grid has a single order at its Nyquist frequency: the light the
    pixel edges diffract further is not represented."""
    for r in (1, 2, 8):
        n = 32 * r
        grid = Grid((n, n), 1e-6, (633e-9,))
        layer = MetasurfaceLayer(grid, max_height_m=2e-6, pixel_samples=r)
        h = torch.zeros(n // r, n // r, dtype=torch.float64)
        h[:, 1::2] = math.pi / layer.phase_per_height.item()
        layer.set_height_m(h)
        row = layer.transmission()[0, 0].detach().to(torch.complex128)
        spec = torch.fft.fft(row).abs().square() / n**2
        if r == 1:
            assert spec[n // 2].item() == pytest.approx(1.0, rel=1e-5)
            continue
        for m in [1, 3] if r == 8 else [1]:
            k = m * n // (2 * r)
            sampled = 1 / (r * math.sin(math.pi * m / (2 * r))) ** 2
            assert spec[k].item() == pytest.approx(sampled, rel=1e-4)
            assert spec[-k].item() == pytest.approx(sampled, rel=1e-4)
            if r == 8:
                # 1.3 % off the continuous order 1 and 12 % off order 3 at 8 samples a pixel
                assert spec[k].item() == pytest.approx((2 / (math.pi * m)) ** 2, rel=0.02 * m**2)


def test_metasurface_layer_passes_gradcheck_in_complex128():
    grid = Grid((3, 4), 4e-6, (450e-9, 633e-9))
    layer = MetasurfaceLayer(grid, "tio2", amplitude=True, init="uniform").double()
    field = random_field(grid, batch=1, dtype=torch.complex128)
    raw_h = layer.raw_height.detach().clone().requires_grad_()
    raw_a = layer.raw_amplitude.detach().clone().requires_grad_()

    def run(rh, ra):
        params = {"raw_height": rh, "raw_amplitude": ra}
        return torch.func.functional_call(layer, params, (field,))

    assert torch.autograd.gradcheck(run, (raw_h, raw_a), eps=1e-6, atol=1e-6)


def test_metasurface_material_must_cover_the_grid_wavelengths():
    with pytest.raises(ValueError, match="validity range"):
        MetasurfaceLayer(Grid((4, 4), 4e-6, (400e-9,)), material="tio2")


# ------------------------------------------------------------- misalignment
def test_misaligned_layer_is_unperturbed_in_eval_mode_and_perturbed_in_training():
    grid = Grid((16, 16), 4e-6, (532e-9,))
    gen = torch.Generator().manual_seed(0)
    mis = Misalignment(shift_std_m=6e-6, rotation_std_rad=0.05, distance_std_m=20e-6, generator=gen)
    layer = MetasurfaceLayer(grid, init="uniform", misalignment=mis, generator=gen)
    field = random_field(grid, dtype=torch.complex128)
    nominal = field * layer.transmission().to(field.dtype)
    layer.eval()
    torch.testing.assert_close(layer(field), nominal)
    layer.train()
    out = layer(field)
    assert not torch.allclose(out, nominal, atol=1e-3)
    assert mis.last_perturbation.distance_m != 0.0


def test_axial_displacement_of_a_flat_layer_changes_nothing():
    # a uniform phase plate commutes with propagation, so +dz then -dz is the identity for a
    # beam that stays inside the window (a Gaussian of 12 um waist on a 128 um window)
    grid = Grid((32, 32), 4e-6, (532e-9,))
    mis = Misalignment(distance_std_m=200e-6, generator=torch.Generator().manual_seed(2))
    layer = MetasurfaceLayer(grid, misalignment=mis).double()
    yy, xx = grid.meshgrid()
    field = torch.exp(-(xx**2 + yy**2) / (12e-6) ** 2).to(torch.complex128)[None, None]
    out = layer(field)
    assert abs(mis.last_perturbation.distance_m) > 50e-6
    torch.testing.assert_close(out, field * layer.transmission(), atol=1e-6, rtol=0)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "build, match",
    [
        (lambda g: PhaseMask(g, init="random"), "init"),
        (lambda g: MetasurfaceLayer(g, init="zeros"), "init"),
        (lambda g: MetasurfaceLayer(g, max_height_m=-1e-6), "max_height_m"),
        (lambda g: MetasurfaceLayer(g, amplitude=True, amplitude_init=0.0), "amplitude_init"),
        (lambda g: MetasurfaceLayer(g, material="glass"), "material"),
        (lambda g: CircularAperture(g, 0.0), "radius_m"),
        (lambda g: CircularAperture(g, 1e-6, edge="soft"), "edge"),
        (lambda g: RectangularAperture(g, (-1e-6, 1e-6)), "height_m"),
        (lambda g: ThinLens(g, float("nan")), "focal_length_m"),
        (lambda g: PhaseMask("grid"), "grid"),
    ],
)
def test_bad_element_input_raises_value_error_naming_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build(Grid((8, 8), 4e-6, (532e-9,)))


def test_field_on_the_wrong_grid_is_rejected():
    layer = MetasurfaceLayer(Grid((8, 8), 4e-6, (532e-9,)))
    with pytest.raises(ValueError, match="grid expects"):
        layer(torch.ones(1, 2, 8, 8, dtype=torch.complex64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_given_height_map_is_shown_exactly_at_zero_and_max_and_to_rounding_between(dtype):
    grid = Grid((4, 5), 8e-6, (532e-9,))
    layer = MetasurfaceLayer(grid, max_height_m=1.2e-6).to(dtype)
    h = torch.linspace(0, 1.2e-6, 20, dtype=torch.float64).view(4, 5)
    layer.set_height_m(h)
    got = layer.height_m()
    assert got.dtype == dtype
    assert got[0, 0] == 0 and got[-1, -1] == torch.tensor(1.2e-6, dtype=dtype)
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(got.double(), h, atol=4 * eps * 1.2e-6, rtol=0)
    same = MetasurfaceLayer.from_height_m(grid, h, max_height_m=1.2e-6)
    torch.testing.assert_close(same.height_m().double(), h, atol=4e-7 * 1.2e-6, rtol=0)
    with pytest.raises(ValueError, match="max_height_m"):
        layer.set_height_m(h * 2)
    with pytest.raises(ValueError, match="shape"):
        layer.set_height_m(h.T)
