"""GDSII layouts: they open in gdstk, hold one neuron per pixel, in the right place."""

from __future__ import annotations

import math

import numpy as np
import pytest

gdstk = pytest.importorskip("gdstk")

from lightgen.export.gds import pillars_per_side, read_gds_levels, write_metasurface_gds  # noqa: E402
from lightgen.export.lut import default_lut  # noqa: E402


def _phase(shape=(12, 10), seed=1):
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * math.pi, shape)
    ph[3, 2:8] = 0.1  # a run of equal neurons -> one AREF
    return ph


def _decode(path, pitch_m):
    """Rebuild the neuron map from the layout: cell name at each placement."""
    lib = gdstk.read_gds(str(path))
    top = lib.top_level()[0]
    placed = {}
    for ref in top.references:
        offsets = ref.repetition.get_offsets() if ref.repetition.size else np.zeros((1, 2))
        for ox, oy in offsets:
            x, y = ref.origin[0] + ox, ref.origin[1] + oy
            key = (round(y / (pitch_m * 1e6)), round(x / (pitch_m * 1e6)))
            assert key not in placed, "two neurons on one pixel"
            placed[key] = ref.cell.name
    return lib, top, placed


def test_layout_places_the_nearest_table_entry_at_every_pixel(tmp_path):
    lut = default_lut(532e-9, levels=8, pixel_pitch_m=2e-6)
    ph = _phase()
    rep = write_metasurface_gds(tmp_path / "l.gds", ph, 2e-6, lut, top_cell="TOP")
    _lib, top, placed = _decode(tmp_path / "l.gds", 2e-6)
    assert top.name == "TOP"
    h, w = ph.shape
    assert len(placed) == rep.n_instances == h * w
    want = lut.nearest(ph)
    for i in range(h):
        for j in range(w):
            assert placed[(i - h // 2, j - w // 2)] == f"N{want[i, j]:02d}"
    assert rep.n_references == len(top.references) < h * w  # the run became one AREF
    assert rep.level_counts == tuple(np.bincount(want.ravel(), minlength=8))
    assert read_gds_levels(tmp_path / "l.gds") == {
        f"N{q:02d}": int(c) for q, c in enumerate(rep.level_counts) if c
    }


def test_neuron_cells_hold_k_by_k_pillars_of_the_table_diameter(tmp_path):
    lut = default_lut(532e-9, levels=8, pixel_pitch_m=2e-6)
    k = pillars_per_side(2e-6, lut)
    assert k == round(2e-6 / lut.period_m) == 6
    write_metasurface_gds(tmp_path / "l.gds", _phase(), 2e-6, lut)
    cells = {c.name: c for c in gdstk.read_gds(str(tmp_path / "l.gds")).cells}
    for q in range(8):
        if f"N{q:02d}" not in cells:
            continue
        (arr,) = cells[f"N{q:02d}"].references
        assert (arr.repetition.columns, arr.repetition.rows) == (k, k)
        (poly,) = cells[f"P{q:02d}"].polygons
        (x0, _y0), (x1, _y1) = poly.bounding_box()
        assert x1 - x0 == pytest.approx(lut.diameters_m[q] * 1e6, abs=2e-3)  # um, polygon tolerance
        assert poly.area() == pytest.approx(math.pi * (lut.diameters_m[q] * 1e6 / 2) ** 2, rel=2e-2)


def test_report_states_size_time_and_quantisation_error(tmp_path):
    lut = default_lut(532e-9, levels=16, pixel_pitch_m=1e-6)
    rep = write_metasurface_gds(tmp_path / "l.gds", _phase(), 1e-6, lut)
    assert rep.file_size_bytes == (tmp_path / "l.gds").stat().st_size > 0
    assert rep.write_time_s >= 0
    assert rep.max_phase_error_rad <= math.pi / 16 + 1e-12


@pytest.mark.parametrize(
    ("pitch", "match"),
    [
        (4e-7, "below the table's wavelength"),
        (2.05e-6, "whole multiple"),
    ],
)
def test_pitch_that_cannot_hold_the_table_raises(tmp_path, pitch, match):
    lut = default_lut(532e-9, pixel_pitch_m=2e-6)
    with pytest.raises(ValueError, match=match):
        write_metasurface_gds(tmp_path / "l.gds", _phase(), pitch, lut)
    assert not (tmp_path / "l.gds").exists()


def test_pitch_below_one_period_raises_even_when_allowed_subwavelength(tmp_path):
    lut = default_lut(532e-9, pixel_pitch_m=2e-6)
    with pytest.raises(ValueError, match="cannot hold one pillar"):
        pillars_per_side(lut.period_m / 3, lut, min_pitch_wavelengths=0)
