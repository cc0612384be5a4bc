"""Connectivity of a design, and chips with 2f Fourier lenses at the fiber facets."""

import math

import pytest
import torch

from lightgen.chip.chip import LightGenChip
from lightgen.chip.connectivity import connectivity
from lightgen.chip.presets import preset
from lightgen.optics.grid import power

LENS_F_M = 0.03  # tiny chip: beam radius lambda f / (pi w) = 423 um over a 384 um aperture


def lens_chip(**over) -> LightGenChip:
    cfg = preset(
        "tiny",
        encoder_lens_focal_length_m=LENS_F_M,
        generator_lens_focal_length_m=LENS_F_M,
        encoder_to_fiber_m=2 * LENS_F_M,
        fiber_to_generator_m=2 * LENS_F_M + 1e-3,
        **over,
    )
    return LightGenChip(cfg).double()


def test_hop_reach_is_distance_times_tan_theta_max_over_the_aperture():
    cfg = preset("emoji-512")
    c = connectivity(cfg)
    sin_t = 640e-9 / (2 * 8e-6)  # longest wavelength: the narrowest cone
    tan_t = sin_t / math.sqrt(1 - sin_t**2)
    assert c.hops[1].distance_m == cfg.layer_spacing_m
    assert c.hops[1].reach_fraction == pytest.approx(20e-3 * tan_t / (512 * 8e-6))
    assert c.max_angle_rad == pytest.approx(math.asin(sin_t))


def test_a_pixel_several_samples_wide_narrows_the_cone_by_its_own_pitch():
    cfg = preset("emoji-512", grid_samples=1024, pixel_pitch_m=4e-6, layer_pixel_samples=2)
    assert connectivity(cfg).max_angle_rad == pytest.approx(
        connectivity(preset("emoji-512")).max_angle_rad
    )
    with pytest.raises(ValueError, match="layer_pixel_samples=3 does not divide grid_samples=512"):
        preset("emoji-512", layer_pixel_samples=3)


def test_generator_fiber_reach_adds_the_gaussian_spread_and_each_layers_cone():
    cfg = preset("emoji-512")
    w0, lam = cfg.fiber_mode_field_diameter_m / 2, 640e-9
    z_r = math.pi * w0**2 / lam
    spot = 2 * w0 * math.sqrt(1 + (20e-3 / z_r) ** 2)
    tan_t = math.tan(math.asin(lam / 16e-6))
    reach = spot + 3 * 20e-3 * tan_t
    assert connectivity(cfg).generator_fiber_reach_fraction == pytest.approx(reach / (512 * 8e-6))


def test_under_connected_design_warns_and_a_fourier_lens_removes_the_warning():
    assert any(
        "generator under-connected" in w for w in connectivity(preset("emoji-512")).warnings()
    )
    lensed = preset(
        "emoji-512",
        generator_lens_focal_length_m=0.2,
        encoder_lens_focal_length_m=0.2,
        encoder_to_fiber_m=0.4,
        fiber_to_generator_m=0.4,
    )
    assert connectivity(lensed).warnings() == []


def test_lens_focal_length_needs_a_2f_distance():
    with pytest.raises(ValueError, match=r"encoder_to_fiber_m >= 0\.06"):
        preset("tiny", encoder_lens_focal_length_m=LENS_F_M, encoder_to_fiber_m=5e-3)


def test_lens_chip_has_no_free_space_where_the_layer_sits_in_the_focal_plane():
    chip = lens_chip()
    assert chip.encoder.stack._gaps[-1] is None  # last encoder layer in the front focal plane
    assert chip.generators[0].stack._gaps[0].distance_m == pytest.approx(1e-3)


def test_lens_chip_couples_no_more_power_than_reaches_the_fibers_and_emits_what_it_is_given():
    torch.manual_seed(0)
    chip = lens_chip()
    field = chip.encoder(torch.rand(2, 1, 12, 12, dtype=torch.float64))
    c = chip.fibers.couple(field)
    assert ((c.abs() ** 2).sum(-1) <= power(field, chip.grid) * (1 + 1e-9)).all()
    z = torch.randn(2, 1, 16, dtype=torch.complex128) * 1e-2
    emitted = chip.fibers.emit(z)
    # each fiber's beam is a Gaussian of radius W cut by the aperture: power <= what is injected
    assert (power(emitted, chip.grid) <= (z.abs() ** 2).sum(-1) * (1 + 1e-9)).all()


def test_lens_chip_trains_gradients_reach_every_layer():
    chip = lens_chip()
    loss = chip(torch.rand(2, 1, 12, 12, dtype=torch.float64)).mean()
    loss.backward()
    for name, p in chip.named_parameters():
        if "raw" in name or "height" in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fourier_lenses_at_the_slm_and_camera_connect_every_fiber_to_every_pixel():
    cfg = preset(
        "tiny",
        slm_lens_focal_length_m=0.02,
        camera_lens_focal_length_m=0.02,
        input_to_encoder_m=0.04,
        generator_to_camera_m=0.04,
    )
    c = connectivity(cfg)
    assert c.generator_fiber_reach_fraction == math.inf and c.warnings() == []
    chip = LightGenChip(cfg).double()
    assert chip.generators[0].stack._gaps[-1] is None  # the last layer sits in the focal plane
    field = chip.encoder(torch.rand(2, 1, 12, 12, dtype=torch.float64))
    assert field.shape == (2, 1, 48, 48)
    with pytest.raises(ValueError, match=r"generator_to_camera_m >= 0\.04"):
        preset("tiny", camera_lens_focal_length_m=0.02)
