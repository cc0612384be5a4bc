import math

import pytest
import torch

from lightgen.chip.chip import LightGenChip, image_to_field
from lightgen.chip.config import ChipConfig
from lightgen.chip.presets import PRESETS, preset
from lightgen.optics.grid import power


@pytest.fixture(scope="module")
def chip():
    torch.manual_seed(0)
    return LightGenChip(preset("tiny")).double()


def _images(n=3, size=12, seed=0):
    return torch.rand(
        n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def test_paper_preset_has_over_2_1_million_neurons_512_input_and_100_fibers():
    cfg = preset("paper")
    assert cfg.neurons()["total"] >= 2_100_000
    assert cfg.image_size == 512 and cfg.n_fibers == 100


def test_every_preset_builds_a_valid_config():
    for name in PRESETS:
        assert preset(name).name == name


def test_slm_field_carries_the_laser_power_at_full_grey(chip):
    cfg = chip.config
    x = torch.ones(1, 1, cfg.image_size, cfg.image_size, dtype=torch.float64)
    field = image_to_field(x, cfg, chip.grid, torch.complex128)
    assert math.isclose(power(field, chip.grid).item(), cfg.input_power_w, rel_tol=1e-9)


def test_fixed_laser_power_scales_with_the_mean_squared_grey(chip):
    cfg = chip.config
    x = _images(2, cfg.image_size, seed=3)
    field = image_to_field(x, cfg, chip.grid, torch.complex128)
    want = cfg.input_power_w * x.square().mean((1, 2, 3))  # amplitude ~ grey, power ~ grey^2
    torch.testing.assert_close(power(field, chip.grid).flatten(), want, rtol=1e-9, atol=0)


def test_constant_power_servo_puts_the_laser_power_on_the_slm_for_every_image():
    cfg = preset("tiny", input_power_control="constant-power", input_power_w=2e-3)
    chip = LightGenChip(cfg).double()
    thin = 0.3 * _images(1, cfg.image_size, seed=4)
    bold = _images(1, cfg.image_size, seed=5)
    for x in (thin, bold, 7 * thin):  # any exposure: the servo sets the same power
        field = image_to_field(x, cfg, chip.grid, torch.complex128)
        assert math.isclose(power(field, chip.grid).item(), 2e-3, rel_tol=1e-9)
    # a scaled image gives the same field; the shape of the field is the fixed laser's
    f1 = image_to_field(thin, cfg, chip.grid, torch.complex128)
    f2 = image_to_field(3 * thin, cfg, chip.grid, torch.complex128)
    torch.testing.assert_close(f1, f2, rtol=1e-12, atol=0)
    fixed = image_to_field(thin, preset("tiny"), chip.grid, torch.complex128)
    ratio = f1[fixed.abs() > 0] / fixed[fixed.abs() > 0]
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio), rtol=1e-9, atol=0)
    dark = image_to_field(torch.zeros_like(thin), cfg, chip.grid, torch.complex128)
    assert torch.count_nonzero(dark) == 0  # no light, no division by zero


def test_constant_power_servo_scales_all_wavelengths_alike():
    cfg = preset("emoji-64", input_power_control="constant-power", grid_samples=140)
    chip_grid = LightGenChip(cfg).grid
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 2] *= 0.2  # little blue
    field = image_to_field(x, cfg, chip_grid, torch.complex128)
    per_wl = (field.abs() ** 2).sum((-2, -1)) * chip_grid.pixel_pitch_m**2  # (B, L)
    torch.testing.assert_close(
        per_wl.sum(1), torch.full((2,), 3 * cfg.input_power_w, dtype=torch.float64)
    )
    want = x.square().sum((-2, -1))
    torch.testing.assert_close(
        per_wl / per_wl.sum(1, keepdim=True), want / want.sum(1, keepdim=True)
    )


def test_passive_encoder_never_creates_power(chip):
    x = _images()
    field_in = image_to_field(x, chip.config, chip.grid, torch.complex128)
    with torch.no_grad():
        out = chip.encoder(x.to(torch.float64))
    assert (power(out, chip.grid) <= power(field_in, chip.grid) * (1 + 1e-9)).all()


def test_fiber_coupled_power_is_at_most_the_arriving_power(chip):
    with torch.no_grad():
        field = chip.encoder(_images())
        c = chip.fibers.couple(field)
    assert (c.abs().square().sum(-1) <= power(field, chip.grid) * (1 + 1e-9)).all()


def test_amplitude_encoded_latent_is_linear_in_the_input(chip):
    x = _images(2)
    with torch.no_grad():
        z1, z2, z12 = chip.encode(x[:1]), chip.encode(x[1:]), chip.encode(x[:1] + 0.5 * x[1:])
    assert torch.allclose(z12, z1 + 0.5 * z2, atol=1e-10)


def test_camera_reads_intensity_so_image_scales_with_latent_power(chip):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, chip.latent_dim, dtype=torch.complex128, generator=g)
    gen = chip.generators[0]
    with torch.no_grad():
        offset = gen.camera_offset.view(1, -1, 1, 1)
        base = chip.decode(z) - offset
        scaled = chip.decode(3 * z) - offset
    assert torch.allclose(scaled, 9 * base, rtol=1e-9, atol=1e-12)


def test_a_global_phase_on_every_fiber_is_invisible_to_the_camera(chip):
    z = torch.randn(
        2, chip.latent_dim, dtype=torch.complex128, generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        a = chip.decode(z)
        chip.port_phase_rad.fill_(1.234)
        b = chip.decode(z)
        chip.port_phase_rad.zero_()
    assert torch.allclose(a, b, atol=1e-12)


def test_port_attenuation_of_20_db_cuts_that_fibers_power_a_hundredfold(chip):
    z = torch.zeros(1, chip.latent_dim, dtype=torch.complex128)
    z[0, 3] = 1.0
    gen = chip.generators[0]
    with torch.no_grad():
        off = gen.camera_offset.view(1, -1, 1, 1)
        a = chip.decode(z) - off
        chip.port_attenuation_db[0, 3] = 20.0
        b = chip.decode(z) - off
        chip.port_attenuation_db.zero_()
    assert torch.allclose(b, a / 100, rtol=1e-9, atol=1e-15)


def test_gradients_reach_every_height_map(chip):
    chip.zero_grad()
    chip(_images(2)).sum().backward()
    for name, p in chip.named_parameters():
        if "height" in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_image_size_is_rejected_with_the_expected_shape(chip):
    with pytest.raises(ValueError, match=r"takes \(batch, 1, 12, 12\)"):
        chip.encode(torch.rand(1, 1, 28, 28, dtype=torch.float64))


def test_real_latent_is_rejected(chip):
    with pytest.raises(ValueError, match="complex"):
        chip.decode(torch.zeros(1, chip.latent_dim, dtype=torch.float64))


def test_config_rejects_unknown_keys_and_images_that_do_not_fit():
    with pytest.raises(ValueError, match="extra"):
        ChipConfig(**{**PRESETS["tiny"], "n_fiber": 3})
    with pytest.raises(ValueError, match="does not fit"):
        preset("tiny", image_size=40)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_propagation_tail_tolerance_reaches_every_free_space_of_the_chip():
    from lightgen.optics.propagation import FreeSpace, guard_samples, spread_samples

    loose = LightGenChip(preset("tiny", propagation_tail_tolerance=0.5))
    tight = LightGenChip(preset("tiny", propagation_tail_tolerance=1e-4))
    for chip, tol in ((loose, 0.5), (tight, 1e-4)):
        spaces = [m for m in chip.modules() if isinstance(m, FreeSpace)]
        assert spaces
        for fs in spaces:
            n = fs.grid.shape[0]
            wanted = min(
                spread_samples(fs.grid, fs.distance_m) + guard_samples(fs.grid, fs.distance_m, tol),
                n,
            )
            assert fs.plan.padding[0] >= wanted
    assert sum(m.plan.padded_shape[0] for m in tight.modules() if isinstance(m, FreeSpace)) > sum(
        m.plan.padded_shape[0] for m in loose.modules() if isinstance(m, FreeSpace)
    )


def test_propagation_padding_linear_reaches_every_free_space_and_runs():
    from lightgen.optics.propagation import FreeSpace

    chip = LightGenChip(preset("tiny", propagation_padding="linear"))
    spaces = [m for m in chip.modules() if isinstance(m, FreeSpace)]
    assert spaces and all(fs.plan.linear for fs in spaces)
    assert all(fs.plan.padded_shape[0] >= 2 * fs.grid.shape[0] - 1 for fs in spaces)
    out = chip(torch.rand(2, 1, 12, 12))
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="propagation_padding"):
        preset("tiny", propagation_padding="exact")


def test_bad_propagation_tail_tolerance_is_named():
    with pytest.raises(ValueError, match="propagation_tail_tolerance"):
        preset("tiny", propagation_tail_tolerance=0.0)


def test_a_preset_can_be_renamed_through_the_overrides():
    assert preset("tiny", name="my-tiny").name == "my-tiny"


def test_plane_fields_follow_the_light_from_slm_to_the_camera_image(chip):
    x = _images(2)
    planes = chip.plane_fields(x)
    names = [n for n, _ in planes]
    assert names == [
        "SLM",
        "encoder layer 1",
        "encoder layer 2",
        "fiber input facets",
        "fiber output facets",
        "generator layer 1",
        "generator layer 2",
        "camera",
    ]
    assert torch.equal(planes[0][1], image_to_field(x, chip.config, chip.grid).to(planes[0][1]))
    # the encoder's last plane is what the fibers couple; the camera plane is what it reads
    unit = math.sqrt(chip.config.input_power_w / chip.config.n_fibers)
    gain = torch.exp(0.5 * chip.laser_log_power_gain)
    z = chip.fibers.couple(planes[3][1]).flatten(1) * gain / unit
    with torch.no_grad():
        assert torch.allclose(z, chip.encode(x))
        assert torch.allclose(chip.generators[0].camera(planes[-1][1]), chip(x))


def test_port_settings_add_to_the_ports_and_restore_them_even_after_an_error():
    chip = LightGenChip(preset("tiny"))
    chip.port_phase_rad.fill_(0.25)
    with chip.port_settings([1, 3], attenuation_db=20.0, phase_rad=0.5):
        assert chip.port_attenuation_db[0, 1] == chip.port_attenuation_db[0, 3] == 20.0
        assert chip.port_attenuation_db.sum() == 40.0
        assert chip.port_phase_rad[0, 1] == 0.75 and chip.port_phase_rad.sum() == pytest.approx(
            0.25 * chip.port_phase_rad.numel() + 1.0
        )
        z = torch.ones(1, chip.latent_dim, dtype=torch.complex64)
        t = chip.ports(z)[0]
        assert t[1].abs() == pytest.approx(0.1)  # 20 dB = 1/10 in amplitude
        assert t[0].abs() == pytest.approx(1.0)
    assert not chip.port_attenuation_db.any() and (chip.port_phase_rad == 0.25).all()
    with pytest.raises(RuntimeError, match="boom"), chip.port_settings([0], 3.0):
        raise RuntimeError("boom")
    assert not chip.port_attenuation_db.any()
