"""Image quality against optical energy per image (``lightgen eval --input-power-w``)."""

import csv
import json
import math

import pytest
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.tasks.energy import (
    CURVE_COLUMNS,
    camera_settings,
    curve_csv,
    energy_curve,
    operating_point,
    parse_powers_w,
)

runner = CliRunner()


def _row(e_j, psnr_db):
    return {
        "reconstruction_energy_j": e_j,
        "reconstruction_psnr_db": psnr_db,
        "laser_power_w": e_j / 1e-3,
        "reconstruction_photons_per_pixel": e_j * 1e13,
    }


def test_powers_parse_and_refuse_non_physical_values():
    assert parse_powers_w("1e-12, 3e-12") == [1e-12, 3e-12]
    for bad in ("", "abc", "-1e-12", "0", "inf"):
        with pytest.raises(ValueError, match="input-power-w"):
            parse_powers_w(bad)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"read_noise_e": -1.0}, "read_noise_e"),
        ({"bit_depth": 0}, "bit_depth"),
        ({"quantum_efficiency": 1.5}, "quantum_efficiency"),
        ({"full_well_e": 1.0, "read_noise_e": 2.0}, "full_well_e"),
        ({"exposure_s": 0.0}, "exposure_s"),
    ],
)
def test_camera_settings_name_the_non_physical_value(settings, named):
    with pytest.raises(ValueError, match=named) as e:
        camera_settings(**settings)
    assert "validation error" not in str(e.value)  # one plain message, no pydantic dump


def test_operating_point_is_the_lowest_energy_from_which_quality_holds():
    rows = [_row(1e-14, 10.0), _row(1e-13, 14.0), _row(1e-12, 15.5), _row(1e-11, 16.0)]
    op = operating_point(rows, reference_psnr_db=16.0, tolerance_db=1.0)  # target 15 dB
    assert op["energy_j"] == 1e-12
    # log-linear between (1e-13, 14 dB) and (1e-12, 15.5 dB): 15 dB at 2/3 of a decade
    assert op["interpolated_energy_j"] == pytest.approx(10 ** (-13 + 2 / 3))
    assert operating_point(rows, reference_psnr_db=20.0)["energy_j"] is None


def test_operating_point_skips_a_lucky_low_point_followed_by_a_miss():
    rows = [_row(1e-14, 15.2), _row(1e-13, 14.0), _row(1e-12, 15.5)]
    assert operating_point(rows, reference_psnr_db=16.0)["energy_j"] == 1e-12


def test_reconstructions_lose_quality_as_the_laser_dims(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    system, cfg = tiny
    powers = [1e-15, 1e-9]
    r = energy_curve(system, cfg, powers, camera_settings(), n=32, progress=False)
    dim, bright = r["curve"]
    assert dim["reconstruction_photons_per_pixel"] < bright["reconstruction_photons_per_pixel"]
    assert bright["reconstruction_photons_per_pixel"] == pytest.approx(
        dim["reconstruction_photons_per_pixel"] * 1e6, rel=1e-3
    )
    assert dim["reconstruction_energy_j"] == pytest.approx(1e-15 * 1e-3)
    ref = r["reference"]["reconstruction_psnr_db"]
    assert dim["reconstruction_psnr_db"] < ref - 1
    assert abs(bright["reconstruction_psnr_db"] - ref) < 0.5
    assert system.model.optical_chip.config.camera.model == "ideal"  # settings restored
    assert 0 < r["fiber_coupling_efficiency"] <= 1


def test_eval_input_power_w_writes_a_json_and_csv_curve(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "energy.json"
    res = runner.invoke(
        app,
        [
            "eval",
            "--checkpoint",
            str(tiny_run),
            "--n",
            "16",
            "--n-generated",
            "16",
            "--input-power-w",
            "1e-12,1e-10",
            "--camera-read-noise-e",
            "2",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["camera"]["read_noise_e"] == 2 and r["camera"]["model"] == "device"
    assert len(r["curve"]) == 2 and r["curve"][1]["fid"] >= 0
    assert all(0 < row["generation_energy_j"] for row in r["curve"])
    assert out.with_suffix(".png").stat().st_size > 1000
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert tuple(rows[0]) == CURVE_COLUMNS
    assert math.isclose(float(rows[1]["laser_power_w"]), 1e-10)
    assert curve_csv(r).count("\n") == 3


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--input-power-w", "-1e-9"], "input-power-w"),
        (["--input-power-w", "1e-9", "--camera-qe", "1.3"], "quantum_efficiency"),
        (["--input-power-w", "1e-9", "--camera-bit-depth", "0"], "bit_depth"),
        (["--input-power-w", "1e-9", "--camera-exposure-s", "0"], "exposure_s"),
        (["--input-power-w", "1e-9", "--fab-levels", "8"], "--fab-levels"),
        (["--camera-read-noise-e", "2"], "--input-power-w"),
        (["--camera-qe", "0.5"], "--camera-qe"),
        (["--slm-bit-depth", "4"], "--slm-bit-depth"),
        (["--input-power-w", "1e-9", "--slm-bit-depth", "0"], "bit_depth"),
        (["--input-power-w", "1e-9", "--slm-model", "lcd"], "slm"),
        (["--input-power-w", "1e-9", "--slm-fill-factor", "2"], "fill_factor"),
    ],
)
def test_eval_energy_refuses_bad_input_with_exit_code_2(tiny_run, tmp_path, extra, named):
    res = runner.invoke(
        app, ["eval", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "e.json"), *extra]
    )
    assert res.exit_code == 2, res.output
    assert named in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_a_power_servo_is_charged_the_light_its_laser_emits():
    """Constant power puts P on the SLM after modulation: the laser emits P / mean(grey^2)."""
    import torch

    from lightgen.chip.chip import LightGenChip
    from lightgen.chip.presets import preset
    from lightgen.tasks.energy import laser_emission_factor

    grey = torch.full((2, 1, 12, 12), 0.5)
    grey[1] = 0.25
    fixed = LightGenChip(preset("tiny"))
    servo = LightGenChip(preset("tiny", input_power_control="constant-power"))
    assert laser_emission_factor(fixed, grey) == 1.0
    assert laser_emission_factor(servo, grey) == pytest.approx((4 + 16) / 2, rel=1e-5)


def test_the_energy_sweep_refuses_a_model_whose_latent_reaches_the_decoder_digitally():
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

    cfg = TrainConfig(preset="tiny", model="hybrid")
    with pytest.raises(ValueError, match="all-optical chip"):
        energy_curve(BOGTSystem(cfg), cfg, [1e-9], progress=False)


def test_the_sweep_writes_inputs_through_the_given_slm(tiny, tmp_path, monkeypatch):
    import torch

    from lightgen.tasks.energy import slm_settings

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    system, cfg = tiny
    chip = system.model.optical_chip
    cam = camera_settings()
    own = energy_curve(system, cfg, [1e-9], cam, n=32, progress=False)
    one_bit = slm_settings(bit_depth=1)
    coarse = energy_curve(system, cfg, [1e-9], cam, n=32, progress=False, slm=one_bit)
    assert coarse["slm"]["bit_depth"] == 1 and own["slm"]["model"] == "ideal"
    # binarised grey levels put a different amount of light through the chip
    a, b = (r["curve"][0]["reconstruction_photons_per_pixel"] for r in (own, coarse))
    assert abs(a - b) > 1e-3 * a
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad(), chip.device_settings(slm=one_bit):
        z1 = chip.encode(x)
    assert not torch.allclose(z1, chip.encode(x).detach())
    assert chip.config.slm.model == "ideal"  # restored
    assert slm_settings() is None
