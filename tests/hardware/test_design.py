"""ChipDesign: presets, derived physics, serialisation, validation."""

from __future__ import annotations

import json
import math

import pytest

from lightgen.chip.design import preset_design
from lightgen.hardware.design import C_M_PER_S, ChipDesign, LayerSpec, grid_fiber_positions_m


def _toy(**overrides) -> ChipDesign:
    kw = dict(
        name="toy",
        wavelengths_m=(532e-9,),
        input_shape=(4, 4),
        input_pixel_pitch_m=10e-6,
        encoder_layers=(LayerSpec(3, 3, 10e-6), LayerSpec(2, 2, 20e-6)),
        generator_layers=(LayerSpec(5, 5, 10e-6),),
        encoder_distances_m=(1e-3, 2e-3, 3e-3),
        generator_distances_m=(4e-3, 5e-3),
        n_fibers=2,
        fiber_positions_m=((0.0, -5e-6), (0.0, 5e-6)),
        fiber_length_m=0.1,
        fiber_group_index=1.5,
        camera_shape=(3, 3),
        camera_pixel_pitch_m=10e-6,
        refractive_indices=(1.5,),
    )
    kw.update(overrides)
    return ChipDesign(**kw)


def test_paper_preset_has_more_than_two_million_neurons_and_100_fibers():
    d = preset_design("paper")
    assert d.neurons()["total"] == 9 * 512 * 512 == 2_359_296
    assert d.n_fibers == 100 and d.input_shape == (512, 512)
    assert d.package_area_m2 == pytest.approx(136.5e-6)


def test_tiny_preset_neurons_are_layers_times_pixels():
    n = 2 * 48 * 48  # chip preset "tiny": 2 + 2 layers of 48 x 48
    assert preset_design("tiny").neurons() == {"encoder": n, "generators": n, "total": 2 * n}


def test_generators_repeat_the_generator_stack():
    d = _toy(n_generators=3)
    assert d.neurons() == {"encoder": 9 + 4, "generators": 3 * 25, "total": 13 + 75}
    assert d.layer_names() == ["enc01", "enc02", "gen1_01", "gen2_01", "gen3_01"]


def test_latency_is_optical_path_over_speed_of_light():
    d = _toy()
    path = (1 + 2 + 3 + 4 + 5) * 1e-3 * 1.0 + 0.1 * 1.5  # free space x n_amb + fiber x n_g
    assert d.optical_path_m() == pytest.approx(path)
    assert d.latency_s() == pytest.approx(path / 299_792_458.0)
    assert C_M_PER_S == 299_792_458.0


def test_stacked_footprint_is_largest_aperture_and_planar_is_their_sum():
    d = _toy()
    a = [(30e-6) ** 2, (40e-6) ** 2, (50e-6) ** 2]
    assert d.footprint_m2("stacked") == pytest.approx(max(a))
    assert d.footprint_m2("planar") == pytest.approx(sum(a))
    assert d.area_m2() == (pytest.approx(max(a)), "stacked aperture footprint")
    assert _toy(package_area_m2=1e-6).area_m2() == (1e-6, "package_area_m2")


def test_phase_per_height_is_thin_element_formula():
    # phi = 2 pi (n - n_amb) h / lambda  (Goodman, Fourier Optics, sec. 5.1)
    assert _toy().phase_per_height_rad_per_m()[0] == pytest.approx(2 * math.pi * 0.5 / 532e-9)
    assert _toy(ambient_index=1.2).phase_per_height_rad_per_m()[0] == pytest.approx(
        2 * math.pi * 0.3 / 532e-9
    )


def test_material_name_resolves_fused_silica_index_at_532nm():
    d = _toy(refractive_indices=None, material="fused_silica")
    assert d.indices()[0] == pytest.approx(1.4607, abs=2e-4)  # Malitson 1965 at 532 nm


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 100])
def test_grid_fiber_positions_fill_rows_of_ceil_sqrt_n_centred_on_the_axis(n):
    p = 250e-6
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    width = (cols - 1 if rows > 1 else n - 1) * p
    ours = grid_fiber_positions_m(n, p)
    assert len(ours) == n
    for i, (y, x) in enumerate(ours):
        assert y == pytest.approx((i // cols) * p - (rows - 1) * p / 2, abs=1e-15)
        assert x == pytest.approx((i % cols) * p - width / 2, abs=1e-15)


def test_hex_fiber_positions_have_every_nearest_neighbour_one_pitch_away():
    p = 250e-6
    ours = grid_fiber_positions_m(9, p, "hex")
    for i, a in enumerate(ours):
        nearest = min(math.dist(a, b) for j, b in enumerate(ours) if j != i)
        assert nearest == pytest.approx(p, rel=1e-12)


def test_dict_round_trip_through_json_gives_an_equal_design():
    for d in (preset_design("paper"), _toy(n_generators=2, fiber_nonlinear=True)):
        assert ChipDesign.from_dict(json.loads(json.dumps(d.to_dict()))) == d


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (dict(input_pixel_pitch_m=-1e-6), "input_pixel_pitch_m"),
        (dict(encoder_distances_m=(1e-3, 2e-3)), "encoder_distances_m"),
        (dict(generator_distances_m=(1e-3, 0.0)), "generator_distances_m[1]"),
        (dict(n_fibers=3), "fiber_positions_m"),
        (dict(input_device="crt"), "input_device"),
        (dict(fiber_loss_db=-1.0), "fiber_loss_db"),
        (dict(wavelengths_m=(532.0,)), "wavelengths_m[0]"),
        (dict(encoder_layers=((3, 3, 0.0),)), "pixel_pitch_m"),
        (dict(generator_layers=()), "generator_layers"),
        (dict(refractive_indices=None, material="unobtainium"), "material"),
        (dict(refractive_indices=(1.5, 1.6)), "refractive_indices"),
        (dict(packaging="folded"), "packaging"),
        (dict(package_area_m2=0.0), "package_area_m2"),
    ],
)
def test_bad_design_raises_value_error_naming_the_parameter(change, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        _toy(**change)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="paper"):
        preset_design("huge")


def test_only_the_paper_preset_carries_packaging_facts():
    from lightgen.chip.design import chip_design
    from lightgen.chip.presets import preset

    paper = preset_design("paper")
    assert paper.package_area_m2 == 136.5e-6 and paper.notes
    assert paper.replace(package_area_m2=None, notes=()) == chip_design(preset("paper"))
    assert preset_design("tiny") == chip_design(preset("tiny"))


def test_a_chip_of_pixels_two_samples_wide_exports_one_height_per_pixel(tmp_path):
    from lightgen.chip.chip import LightGenChip
    from lightgen.chip.design import chip_design, chip_heights_m
    from lightgen.chip.presets import preset
    from lightgen.export import export_design, load_design

    cfg = preset("tiny", grid_samples=96, pixel_pitch_m=4e-6, layer_pixel_samples=2)
    design, heights = chip_design(cfg), chip_heights_m(LightGenChip(cfg))
    assert [tuple(h.shape) for h in heights] == [(48, 48)] * len(heights)
    assert design.encoder_layers == chip_design(preset("tiny")).encoder_layers  # same neurons
    export_design(
        tmp_path / "out", design, [h.double().numpy() for h in heights], formats="heightmap"
    )
    assert load_design(tmp_path / "out").design == design
