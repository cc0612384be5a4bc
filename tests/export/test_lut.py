"""Metasurface lookup tables: the documented default, files, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightgen.export.lut import MetasurfaceLUT, default_lut, emt_effective_index, load_lut
from lightgen.optics.materials import get_material


def test_default_lut_phases_follow_the_effective_medium_formula():
    lut = default_lut(532e-9, levels=16, pixel_pitch_m=8e-6)
    n_p = get_material("tio2").refractive_index(532e-9)
    n0 = emt_effective_index(lut.diameters_m[0], lut.period_m, n_p)
    for d, phi in zip(lut.diameters_m, lut.phases_rad, strict=True):
        # phi(d) = 2 pi (n_eff(d) - n_eff(d_min)) H / lambda
        n = emt_effective_index(d, lut.period_m, n_p)
        assert 2 * math.pi * (n - n0) * lut.pillar_height_m / 532e-9 == pytest.approx(phi, abs=1e-9)
    assert lut.phases_rad == pytest.approx(tuple(2 * math.pi * k / 16 for k in range(16)))
    assert np.all(np.diff(lut.diameters_m) > 0)
    assert lut.diameters_m[0] == pytest.approx(80e-9)
    assert lut.diameters_m[-1] <= lut.period_m - 80e-9 + 1e-15


def test_default_lut_period_divides_the_pitch_and_is_subwavelength():
    lut = default_lut(532e-9, pixel_pitch_m=8e-6)
    assert 8e-6 / lut.period_m == pytest.approx(24)
    assert lut.period_m < 532e-9 / lut.substrate_index


def test_emt_index_limits():
    assert emt_effective_index(0.0, 1.0, 2.0) == 1.0  # no pillar: ambient
    full = emt_effective_index(2 / math.sqrt(math.pi), 1.0, 2.0)  # fill factor 1
    assert full == pytest.approx(2.0)


def test_nearest_entry_wraps_around_two_pi():
    lut = default_lut(532e-9, levels=4)
    assert lut.nearest([2 * math.pi - 0.01, 0.01, math.pi / 2 + 0.1, -math.pi / 2]).tolist() == [
        0,
        0,
        1,
        3,
    ]
    err = lut.phase_error_rad(np.linspace(0, 2 * math.pi, 101))
    assert np.abs(err).max() <= math.pi / 4 + 1e-12  # half a level


def test_csv_round_trip(tmp_path):
    lut = default_lut(633e-9, levels=8)
    lut.to_csv(tmp_path / "lut.csv")
    back = load_lut(tmp_path / "lut.csv")
    assert back.diameters_m == pytest.approx(lut.diameters_m, rel=1e-15)
    assert back.phases_rad == pytest.approx(lut.phases_rad, abs=1e-15)
    assert (back.period_m, back.pillar_height_m, back.wavelength_m) == (
        lut.period_m,
        lut.pillar_height_m,
        633e-9,
    )


def _lut(**kw):
    base = dict(
        wavelength_m=532e-9,
        period_m=300e-9,
        pillar_height_m=600e-9,
        diameters_m=(100e-9, 200e-9),
        phases_rad=(0.0, math.pi),
    )
    return MetasurfaceLUT(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(period_m=400e-9), "period_m.*sub-wavelength"),
        (dict(diameters_m=(100e-9, 300e-9)), r"diameters_m\[1\]"),
        (dict(phases_rad=(0.0,)), "two"),
        (dict(phases_rad=(0.0, float("nan"))), "phases_rad"),
        (dict(transmissions=(1.0, 2.0)), "transmissions"),
        (dict(pillar_height_m=0.0), "pillar_height_m"),
    ],
)
def test_unphysical_tables_raise_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        _lut(**kw)


def test_missing_or_malformed_table_files_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"lut=.*not found"):
        load_lut(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("diameter_m,phase_rad\n1e-7,0\n")
    with pytest.raises(ValueError, match="metadata"):
        load_lut(bad)
    with pytest.raises(ValueError, match="lut="):
        load_lut(42)
