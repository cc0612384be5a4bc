import pytest
import torch

from lightgen.baselines.hybrid import HybridBaseline
from lightgen.chip.chip import LightGenChip
from lightgen.chip.fabrication import (
    FabricationModel,
    calibrate_camera,
    fabricated,
    metasurface_layers,
    refined,
)
from lightgen.chip.presets import preset
from lightgen.train.config import load_train_config
from lightgen.train.trainer import BOGTSystem


@pytest.fixture()
def chip():
    torch.manual_seed(0)
    c = LightGenChip(preset("tiny")).eval()
    with torch.no_grad():
        for layer in metasurface_layers(c):
            layer.raw_height.normal_()
    return c


def test_fabricated_heights_take_only_the_etch_levels_and_restore_afterwards(chip):
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        before = chip(x)
        with fabricated(chip, FabricationModel(levels=4)):
            for layer in metasurface_layers(chip):
                assert layer.height_m().unique().numel() <= 4
            during = chip(x)
        after = chip(x)
    assert not torch.allclose(before, during)
    assert torch.equal(before, after)


def test_zero_tolerances_change_nothing(chip):
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad(), fabricated(chip, FabricationModel()):
        same = chip(x)
    with torch.no_grad():
        assert torch.equal(same, chip(x))


def test_placement_errors_are_drawn_anew_each_pass_even_in_eval_mode(chip):
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad(), fabricated(chip, FabricationModel(shift_std_m=8e-6), seed=1):
        a, b = chip(x), chip(x)
    assert not torch.allclose(a, b)


def test_fabrication_aware_training_config_builds_quantised_jittered_layers():
    cfg = load_train_config({"fabrication": {"levels": 8, "shift_std_m": 1e-6}})
    system = BOGTSystem(cfg)
    layers = metasurface_layers(system)
    assert layers and all(
        layer.quantizer is not None and layer.misalignment is not None for layer in layers
    )
    with pytest.raises(ValueError, match="levels"):
        load_train_config({"fabrication": {"levels": 1}})


def _smooth_and_rough(config, seed=0):
    """Two chips of ``config``: layers whose raw height parameter is smooth over ~8
    pixels, and the same plus independent N(0, 1) noise on every pixel."""
    g = torch.Generator().manual_seed(seed)
    chips = []
    for rough in (0.0, 1.0):
        c = LightGenChip(config).eval()
        n = config.grid_samples
        with torch.no_grad():
            for layer in metasurface_layers(c):
                coarse = torch.randn(1, 1, n // 8, n // 8, generator=g)
                smooth = torch.nn.functional.interpolate(coarse, size=n, mode="bicubic")[0, 0]
                layer.raw_height.copy_(smooth + rough * torch.randn(n, n, generator=g))
        chips.append(c)
    return chips


def test_the_resolved_preset_is_the_same_physical_chip_on_a_finer_grid():
    coarse, fine = preset("mnist-16f"), preset("mnist-16f-r2")
    assert fine.layer_pixel_samples == 2 and fine.grid_samples == 2 * coarse.grid_samples
    assert fine.layer_pixels == coarse.layer_pixels
    assert fine.layer_pixel_pitch_m == pytest.approx(coarse.layer_pixel_pitch_m)
    assert fine.neurons() == coarse.neurons()
    for part in ("slm", "camera"):  # the same pixels, at the same physical size
        n = getattr(fine, f"{part}_pixel_samples")
        assert n * fine.pixel_pitch_m == pytest.approx(
            getattr(coarse, f"{part}_pixel_samples") * coarse.pixel_pitch_m
        )
    same = fine.model_dump() | {"name": coarse.name}
    assert refined(LightGenChip(coarse), 2).config.model_dump() == same


def test_refined_chip_keeps_the_pixels_and_every_other_parameter():
    cfg = preset("tiny", layer_filter_radius_m=16e-6, amplitude_layers=True)
    c = LightGenChip(cfg).eval()
    with torch.no_grad():
        for layer in metasurface_layers(c):
            layer.raw_height.normal_()
            layer.raw_amplitude.normal_()
        c.fibers.phase_rad.normal_()
        c.generators[0].camera_offset.fill_(0.1)
    assert all(layer.filter_kernel is not None for layer in metasurface_layers(c))
    fine = refined(c, 3)
    fc = fine.config
    assert (fc.grid_samples, fc.pixel_pitch_m) == (3 * cfg.grid_samples, cfg.pixel_pitch_m / 3)
    assert (fc.slm_pixel_samples, fc.camera_pixel_samples, fc.layer_pixel_samples) == (6, 6, 3)
    assert fc.layer_filter_radius_m == cfg.layer_filter_radius_m  # acts on the same pixel map
    for a, b in zip(metasurface_layers(c), metasurface_layers(fine), strict=True):
        assert b.pixel_pitch_m == pytest.approx(a.pixel_pitch_m)
        assert torch.equal(b.height_m(), a.height_m())  # the same pixels, the same heights
        assert torch.equal(b.amplitude(), a.amplitude())
        t, tf = a.transmission().detach(), b.transmission().detach()
        assert tf.shape[-1] == 3 * t.shape[-1]
        assert torch.allclose(tf[..., ::3, ::3], t, rtol=1e-5, atol=1e-6)
        assert torch.allclose(tf[..., 2::3, 1::3], t, rtol=1e-5, atol=1e-6)  # blocks of one height
    assert torch.equal(fine.fibers.phase_rad, c.fibers.phase_rad)
    assert torch.equal(fine.generators[0].camera_offset, c.generators[0].camera_offset)
    assert refined(c, 1).config == cfg
    twice = refined(refined(c, 2), 2).config  # factors compound: 4 samples per pixel side
    assert twice == refined(c, 4).config and twice.layer_pixel_samples == 4
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="factor"):
            refined(c, bad)


def test_refined_hybrid_keeps_its_mlp_masks_and_slm_pixels():
    cfg = preset("tiny")
    h = HybridBaseline(cfg, hidden=8).eval()
    with torch.no_grad():
        for layer in metasurface_layers(h):
            layer.raw_height.normal_()
        h.generator.camera_offset.fill_(0.1)
    fine = refined(h, 2)
    assert isinstance(fine, HybridBaseline) and fine.hidden == 8
    assert fine.config == refined(LightGenChip(cfg), 2).config
    for k, v in h.mlp.state_dict().items():
        assert torch.equal(fine.mlp.state_dict()[k], v)
    for a, b in zip(metasurface_layers(h), metasurface_layers(fine), strict=True):
        assert torch.equal(b.height_m(), a.height_m())
    assert torch.equal(fine.generator.camera_offset, h.generator.camera_offset)
    z = torch.randn(3, cfg.latent_dim, dtype=torch.complex64)
    with torch.no_grad():  # each SLM pixel: the same field on 2 x 2 as many samples
        coarse, fine_field = h.slm_field(z), fine.slm_field(z)
    assert fine_field.shape[-1] == 2 * coarse.shape[-1]
    for dy in (0, 1):
        for dx in (0, 1):
            torch.testing.assert_close(fine_field[..., dy::2, dx::2], coarse)


def test_calibrate_camera_fits_a_hybrids_optical_decoder():
    h = HybridBaseline(preset("tiny"), hidden=8).eval()
    z = torch.randn(6, h.latent_dim, dtype=torch.complex64)
    gen = h.generator
    with torch.no_grad():
        gen.camera_log_gain.fill_(-0.2)
        gen.camera_offset.fill_(0.03)
        images = h.decode(z)
        gen.camera_log_gain.zero_()
        gen.camera_offset.zero_()
    calibrate_camera(h, z, images)
    assert torch.allclose(gen.camera_log_gain, torch.tensor([-0.2]), atol=1e-4)
    assert torch.allclose(gen.camera_offset, torch.tensor([0.03]), atol=1e-5)


def test_refinement_keeps_a_smooth_chip_and_exposes_a_rough_one():
    """The property the check exists for: masks smooth over many pixels give the same light
    on a 2x finer grid; masks that jump from pixel to pixel diffract light beyond the
    coarse grid's band, which the coarse simulation keeps and the fine one loses."""
    cfg = preset(
        "tiny", grid_samples=64, fiber_mode_field_diameter_m=48e-6, n_fibers=4, fiber_pitch_m=96e-6
    )
    smooth, rough = _smooth_and_rough(cfg)
    z = torch.randn(3, cfg.latent_dim, dtype=torch.complex64)

    def power_and_field(chip):
        field = chip.generators[0].camera_field(chip.emitted_field(z))
        return field.abs().square().sum((-2, -1)) * chip.grid.pixel_pitch_m**2

    with torch.no_grad():
        ratios = {}
        for name, chip in (("smooth", smooth), ("rough", rough)):
            fine = refined(chip, 2)
            ratios[name] = (power_and_field(fine) / power_and_field(chip)).mean()
            img, img2 = chip.decode(z), fine.decode(z)
            ratios[name + "_image"] = ((img2 - img).norm() / img.norm()).item()
    # measured: power 0.984 and image error 0.074 (smooth), 0.635 and 0.49 (rough)
    assert abs(ratios["smooth"] - 1) < 0.03
    assert ratios["smooth_image"] < 0.15
    assert ratios["rough"] < 0.8
    assert ratios["rough_image"] > 0.3


def test_calibrate_camera_recovers_the_gain_and_offset_that_made_the_images(chip):
    z = torch.randn(6, chip.latent_dim, dtype=torch.complex64)
    gen = chip.generators[0]
    with torch.no_grad():
        gen.camera_log_gain.copy_(torch.tensor([0.3]))
        gen.camera_offset.copy_(torch.tensor([0.05]))
        images = chip.decode(z)
        gen.camera_log_gain.zero_()
        gen.camera_offset.zero_()
    calibrate_camera(chip, z, images)
    assert torch.allclose(gen.camera_log_gain, torch.tensor([0.3]), atol=1e-4)
    assert torch.allclose(gen.camera_offset, torch.tensor([0.05]), atol=1e-5)
    calibrate_camera(chip, z, images, routes=torch.ones(6, dtype=torch.long))  # none routed
    assert torch.allclose(gen.camera_log_gain, torch.tensor([0.3]), atol=1e-4)
