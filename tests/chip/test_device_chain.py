"""The chip's input and camera go through lightgen.optics.devices (issue 18)."""

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from lightgen.baselines.hybrid import HybridBaseline
from lightgen.chip.chip import LightGenChip, image_to_field
from lightgen.chip.config import CameraConfig, SLMConfig
from lightgen.chip.presets import preset
from lightgen.optics.devices import PLANCK_J_S, SPEED_OF_LIGHT_M_PER_S
from lightgen.optics.grid import intensity
from lightgen.train.config import load_train_config

NOISELESS = CameraConfig(model="device", noise=False, bit_depth=16, full_well_e=1e12)


def _chip(**overrides) -> LightGenChip:
    torch.manual_seed(0)
    chip = LightGenChip(preset("tiny", **overrides)).double()
    with torch.no_grad():
        chip.laser_log_power_gain.fill_(0.7)
        for g in chip.generators:
            g.camera_log_gain.fill_(0.3)
            g.camera_offset.fill_(-0.05)
    return chip


def _images(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 12, 12, generator=g, dtype=torch.float64)


def _old_camera(gen, field):
    """The chip's camera before device models (the formula of every old checkpoint)."""
    cfg = gen.config
    k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
    side = s * k
    top = n // 2 - side // 2
    irr = intensity(field)[..., top : top + side, top : top + side]
    pixel_power = F.avg_pool2d(irr, k) * (k * k)
    uniform = cfg.generator_power_w / (s * s) / gen.grid.pixel_pitch_m**2
    rel = pixel_power / uniform
    return rel * gen.camera_log_gain.exp().view(1, -1, 1, 1) + gen.camera_offset.view(1, -1, 1, 1)


def test_ideal_devices_are_the_default_and_give_old_outputs_to_the_bit():
    default = _chip()
    explicit = _chip(slm=SLMConfig(model="ideal"), camera=CameraConfig(model="ideal"))
    explicit.load_state_dict(default.state_dict())
    x = _images()
    with torch.no_grad():
        assert torch.equal(default(x), explicit(x))
        gen = default.generators[0]
        field = gen.camera_field(default.emitted_field(default.encode(x)))
        assert torch.equal(default(x), _old_camera(gen, field))


def test_an_old_checkpoint_config_without_device_settings_loads_as_ideal():
    cfg = load_train_config({"model": "chip", "preset": "tiny", "chip": {}})
    chip_cfg = cfg.chip_config()
    assert chip_cfg.slm.model == "ideal" and chip_cfg.camera.model == "ideal"


def test_noiseless_device_camera_reads_the_ideal_image_at_many_photons():
    ideal = _chip()
    # 1 mW for 10 us: ~2e8 electrons per pixel, far below the 1e10 e- full well
    cam = NOISELESS.model_copy(update={"exposure_s": 1e-5, "full_well_e": 1e10})
    dev = _chip(camera=cam)
    dev.load_state_dict(ideal.state_dict())
    x = _images()
    with torch.no_grad():
        a, b = ideal(x), dev(x)
    # ADC step 1e10 / 65535 e- against ~2e8 e- per pixel: 0.1 % of a grey level
    assert torch.allclose(a, b, atol=0.01 * a.abs().max().item())
    assert not torch.equal(a, b)


def test_camera_noise_variance_is_mean_electrons_plus_read_noise_squared():
    qe, t, rn, fw = 0.5, 1e-3, 3.0, 1e5
    cam = CameraConfig(
        model="device",
        quantum_efficiency=qe,
        exposure_s=t,
        read_noise_e=rn,
        full_well_e=fw,
        bit_depth=16,
    )
    chip = _chip(camera=cam)
    gen = chip.generators[0]
    photon_j = PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S / chip.config.wavelengths_m[0]
    pixel_area_m2 = (2 * 8e-6) ** 2  # 2 x 2 grid samples per camera pixel
    # a uniform field putting 300 photons on every pixel during the exposure
    irradiance = 300 * photon_j / t / pixel_area_m2
    field = torch.full((1, 1, 48, 48), math.sqrt(irradiance), dtype=torch.complex128)
    gen.noise_generator = torch.Generator().manual_seed(1)
    rel = torch.cat([gen.relative_intensity(field) for _ in range(40)]).flatten()
    uniform_e = qe * chip.config.generator_power_w / 144 * t / photon_j
    electrons = rel * uniform_e
    mean_e = 300 * qe
    assert electrons.mean().item() == pytest.approx(mean_e, rel=0.01)
    want_var = mean_e + rn**2 + (fw / 65535) ** 2 / 12  # shot + read + ADC rounding
    assert electrons.var().item() == pytest.approx(want_var, rel=0.08)


def test_photons_on_the_camera_scale_with_the_laser_power_and_the_exposure():
    chip = _chip(camera=NOISELESS)
    x = _images()
    with torch.no_grad():
        z = chip.encode(x)
        with chip.device_settings(laser_power_w=1e-12):
            p1 = chip.camera_photons(chip.encode(x)).sum().item()
        with chip.device_settings(laser_power_w=3e-12):
            p3 = chip.camera_photons(chip.encode(x)).sum().item()
        slow = NOISELESS.model_copy(update={"exposure_s": 2e-3})
        with chip.device_settings(camera=slow, laser_power_w=1e-12):
            p2t = chip.camera_photons(chip.encode(x)).sum().item()
    assert p3 == pytest.approx(3 * p1, rel=1e-5)  # the SLM field is complex64
    assert p2t == pytest.approx(2 * p1, rel=1e-5)
    assert torch.equal(chip.encode(x), z)  # settings restored


def test_camera_photons_never_exceed_the_photons_the_laser_sent():
    """Passive optics: the camera cannot count more photons than the laser emitted."""
    chip = _chip(camera=NOISELESS)
    x = torch.ones(2, 1, 12, 12, dtype=torch.float64)
    p_w, t = 1e-12, NOISELESS.exposure_s
    lam = chip.config.wavelengths_m[0]
    sent = p_w * t * lam / (PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S)
    with torch.no_grad(), chip.device_settings(laser_power_w=p_w):
        got = chip.camera_photons(chip.encode(x)).sum((1, 2, 3))
        injected = chip.injected_power_w(chip.encode(x))
    assert (injected <= p_w * (1 + 1e-9)).all()
    assert (got <= sent * (1 + 1e-6)).all() and (got > 0).all()


def test_the_laser_gain_is_frozen_when_the_camera_counts_photons():
    assert _chip().laser_log_power_gain.requires_grad
    assert not _chip(camera=CameraConfig(model="device")).laser_log_power_gain.requires_grad


def test_laser_power_is_the_stated_power_times_the_learned_gain():
    chip = _chip()
    assert chip.laser_power_w == pytest.approx(1e-3 * math.exp(0.7))
    with chip.device_settings(laser_power_w=2e-11):
        assert chip.laser_power_w == pytest.approx(2e-11)
    assert chip.laser_power_w == pytest.approx(1e-3 * math.exp(0.7))


def test_a_one_bit_amplitude_slm_writes_dark_or_full_pixels():
    cfg = preset("tiny", slm=SLMConfig(model="slm", bit_depth=1))
    chip = LightGenChip(cfg).double()
    field = image_to_field(_images(), cfg, chip.grid, torch.complex128)
    amp0 = math.sqrt(cfg.input_power_w / (24 * 8e-6) ** 2)
    levels = torch.unique(field.abs().round(decimals=6))
    assert set(levels.tolist()) <= {0.0, round(amp0, 6)}


def test_an_8_bit_slm_is_the_ideal_field_to_within_half_a_level():
    ideal_cfg = preset("tiny")
    dev_cfg = preset("tiny", slm=SLMConfig(model="slm", bit_depth=8))
    chip = LightGenChip(ideal_cfg).double()
    x = _images()
    a = image_to_field(x, ideal_cfg, chip.grid, torch.complex128)
    b = image_to_field(x, dev_cfg, chip.grid, torch.complex128)
    amp0 = math.sqrt(ideal_cfg.input_power_w / (24 * 8e-6) ** 2)
    assert (a - b).abs().max().item() <= amp0 * 0.5 / 255 + 1e-12


def test_fill_factor_scales_the_zeroth_order_as_its_square():
    cfg = preset("tiny", slm=SLMConfig(model="slm", bit_depth=16, fill_factor=0.5))
    chip = LightGenChip(cfg).double()
    x = torch.ones(1, 1, 12, 12, dtype=torch.float64)
    field = image_to_field(x, cfg, chip.grid, torch.complex128)
    amp0 = math.sqrt(cfg.input_power_w / (24 * 8e-6) ** 2)
    mean_amplitude = field.abs().sum().item() / (24 * 24)  # over the SLM aperture
    assert mean_amplitude == pytest.approx(amp0 * 0.25, rel=1e-9)


def test_a_dmd_cannot_write_phase():
    with pytest.raises(ValidationError, match="dmd"):
        preset("tiny", input_encoding="phase", slm=SLMConfig(model="dmd"))


def test_a_dithered_dmd_writes_binary_mirrors():
    cfg = preset("tiny", slm=SLMConfig(model="dmd"))
    chip = LightGenChip(cfg).double()
    field = image_to_field(torch.full((1, 1, 12, 12), 0.5, dtype=torch.float64), cfg, chip.grid)
    on = (field.abs() > 0).float()
    assert 0.3 < on.sum().item() / (24 * 24) < 0.7


def test_the_hybrid_writes_its_seed_through_the_same_slm():
    torch.manual_seed(0)
    ideal = HybridBaseline(preset("tiny")).double()
    dev = HybridBaseline(preset("tiny", slm=SLMConfig(model="slm", bit_depth=12))).double()
    dev.load_state_dict(ideal.state_dict())
    z = torch.randn(2, 16, dtype=torch.complex128)
    with torch.no_grad():
        a, b = ideal.decode(z), dev.decode(z)
    assert torch.allclose(a, b, atol=1e-2 * a.abs().max().item())
    coarse = HybridBaseline(preset("tiny", slm=SLMConfig(model="slm", bit_depth=1))).double()
    coarse.load_state_dict(ideal.state_dict())
    with torch.no_grad():
        assert not torch.allclose(a, coarse.decode(z), atol=1e-2 * a.abs().max().item())


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"read_noise_e": -1.0}, "read_noise_e"),
        ({"bit_depth": 0}, "bit_depth"),
        ({"quantum_efficiency": 1.2}, "quantum_efficiency"),
        ({"full_well_e": 2.0, "read_noise_e": 5.0}, "full_well_e"),
        ({"exposure_s": 0.0}, "exposure_s"),
        ({"dark_current_e_per_s": -3.0}, "dark_current"),
    ],
)
def test_non_physical_camera_values_are_named_errors(settings, named):
    with pytest.raises(ValidationError, match=named):
        CameraConfig(model="device", **settings)


@pytest.mark.parametrize(
    ("settings", "named"), [({"bit_depth": 0}, "bit_depth"), ({"fill_factor": 1.5}, "fill_factor")]
)
def test_non_physical_slm_values_are_named_errors(settings, named):
    with pytest.raises(ValidationError, match=named):
        SLMConfig(model="slm", **settings)


def test_a_training_config_names_a_bad_camera_setting_and_the_camera_keys():
    with pytest.raises(ValueError, match="read_noise_e") as e:
        load_train_config({"preset": "tiny", "chip": {"camera": {"read_noise_e": -1}}})
    assert "chip.camera" in str(e.value)
    with pytest.raises(ValueError, match="exposure_s") as e:
        load_train_config({"preset": "tiny", "chip": {"camera": {"exposure": 1e-3}}})
    assert "unknown key 'chip.camera.exposure'" in str(e.value)


def test_a_photon_counting_chip_re_emits_at_the_lasers_scale():
    with pytest.raises(ValidationError, match="generator_power_w"):
        preset("tiny", camera=CameraConfig(model="device"), generator_power_w=2e-3)
    preset("tiny", generator_power_w=2e-3)  # scale-free ideal camera: any scale


def test_device_settings_refuse_a_dmd_on_a_phase_encoded_chip():
    chip = _chip(input_encoding="phase")
    with pytest.raises(ValueError, match="dmd"):
        with chip.device_settings(slm=SLMConfig(model="dmd")):
            pass
    assert chip.config.slm.model == "ideal"
