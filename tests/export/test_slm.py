"""SLM bitmaps and the phase -> gray table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightgen.export.slm import SlmLUT, read_slm_bitmap, write_slm_bitmap, write_slm_lut


def test_linear_table_error_is_at_most_half_a_gray_step(tmp_path):
    lut = SlmLUT.linear(532e-9)
    ph = np.random.default_rng(0).uniform(-10, 10, (20, 30))
    path, err = write_slm_bitmap(tmp_path / "enc01.png", ph, lut)
    shown = read_slm_bitmap(path, lut)
    diff = (shown - ph + math.pi) % (2 * math.pi) - math.pi
    assert np.abs(diff).max() <= math.pi / 256 + 1e-12
    assert err == pytest.approx(np.abs(diff).max())


def test_gray_levels_of_known_phases():
    lut = SlmLUT.linear(532e-9)
    assert lut.gray([0.0, math.pi, 2 * math.pi - 1e-4, -math.pi / 2]).tolist() == [0, 128, 0, 192]


def test_calibration_csv_round_trip_and_nonlinear_table(tmp_path):
    phases = tuple(1.8 * math.pi * (g / 255) ** 1.2 for g in range(256))
    lut = SlmLUT(phases, 633e-9, "measured")
    write_slm_lut(tmp_path / "slm_lut.csv", lut)
    back = SlmLUT.from_csv(tmp_path / "slm_lut.csv")
    assert back.phases_rad == pytest.approx(phases) and back.wavelength_m == 633e-9
    assert back.gray([phases[77]]).tolist() == [77]


def test_bad_tables_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="256"):
        SlmLUT((0.0,) * 10, 532e-9)
    with pytest.raises(ValueError, match=r"slm_lut=.*not found"):
        SlmLUT.from_csv(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="phase_rad"):
        write_slm_bitmap(tmp_path / "x.png", np.zeros(4), SlmLUT.linear(532e-9))


def test_a_calibration_csv_without_the_gray_column_names_the_columns(tmp_path):
    p = tmp_path / "slm_lut.csv"
    p.write_text("# wavelength_m=5.32e-07\nlevel,phase_rad\n0,0.0\n")
    with pytest.raises(ValueError, match=r"slm_lut=.* needs the columns gray,phase_rad\."):
        SlmLUT.from_csv(p)
