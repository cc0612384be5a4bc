"""Energy per image at a stated quality (``lightgen perf --quality-curve``)."""

import json

import pytest
from typer.testing import CliRunner

from lightgen.chip.design import preset_design
from lightgen.cli import app
from lightgen.hardware.counting import count_operations
from lightgen.hardware.quality import quality_point, read_quality_curve

runner = CliRunner()

CAMERA = {
    "model": "device",
    "quantum_efficiency": 0.6,
    "exposure_s": 1e-3,
    "read_noise_e": 3.25,
    "dark_current_e_per_s": 0.0,
    "full_well_e": 10000.0,
    "bit_depth": 12,
    "noise": True,
}


def _curve(energy_j=4e-13):
    rows = [
        {
            "laser_power_w": 1e-9,
            "reconstruction_energy_j": 1e-12,
            "reconstruction_psnr_db": 15.9,
            "generation_energy_j": 2e-13,
            "fid": 50.0,
        }
    ]
    return {
        "preset": "tiny",
        "camera": CAMERA,
        "reference": {"reconstruction_psnr_db": 16.0},
        "curve": rows,
        "operating_point": {
            "rule": "lowest energy per reconstruction with PSNR >= noise-free - 1 dB",
            "target_psnr_db": 15.0,
            "reference_psnr_db": 16.0,
            "energy_j": 1e-12,
            "interpolated_energy_j": energy_j,
            "laser_power_w": 1e-9,
            "photons_per_pixel": 18.0,
        },
    }


def test_tops_per_w_at_the_operating_point_is_operations_over_energy():
    design = preset_design("tiny")
    q = quality_point(_curve(4e-13), design, "conservative", laser_wall_plug_efficiency=0.25)
    ops = count_operations(design, "conservative").ops_per_frame
    assert q.tops_per_w_optical() == pytest.approx(ops / 4e-13 / 1e12)
    assert q.laser_electrical_energy_j == pytest.approx(4e-13 / 0.25)
    assert q.tops_per_w_laser() == pytest.approx(q.tops_per_w_optical() * 0.25)
    assert q.generation_energy_j == 2e-13 and q.generation_fid == 50.0


def test_a_file_that_is_no_quality_curve_is_refused(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"fid": 3}))
    with pytest.raises(ValueError, match="lacks operating_point"):
        read_quality_curve(p)
    with pytest.raises(ValueError, match="not a file"):
        read_quality_curve(tmp_path / "missing.json")


def test_perf_quality_curve_prints_the_energy_at_the_stated_quality(tmp_path):
    p = tmp_path / "curve.json"
    p.write_text(json.dumps(_curve()))
    res = runner.invoke(app, ["perf", "--quality-curve", str(p)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Design 'tiny'" in out  # the curve's own preset
    assert "Energy at a stated quality" in out and "4.00e-13 J" in out
    assert "CPU-measured" in out and "664 TOPS/W" in out
    # the photon budget uses the curve's camera
    assert "3.25 e- read noise" in out


def test_perf_refuses_a_bad_quality_curve_with_exit_code_2(tmp_path):
    res = runner.invoke(app, ["perf", "--quality-curve", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "not a file" in " ".join(res.output.split())
