"""16-bit PNG / NPY height maps and their sidecars."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lightgen.export.heightmap import LEVELS, read_map, write_map


def _heights(shape=(24, 40), seed=0):
    return np.random.default_rng(seed).uniform(0.1e-6, 1.2e-6, shape)


def test_npy_round_trip_is_exact_and_png_is_within_half_a_step(tmp_path):
    h = _heights()
    write_map(
        tmp_path,
        "enc01",
        h,
        pixel_pitch_m=8e-6,
        wavelengths_m=(532e-9,),
        phase_per_height_rad_per_m=(5e6,),
    )
    exact, meta = read_map(tmp_path, "enc01", "npy")
    assert np.array_equal(exact, h)
    png, _ = read_map(tmp_path, "enc01", "png")
    step = (h.max() - h.min()) / LEVELS
    assert meta["quantisation"]["step"] == pytest.approx(step)
    err = np.abs(png - h).max()
    assert 0 < err <= step / 2 * (1 + 1e-9)
    assert png.min() == pytest.approx(h.min()) and png.max() == pytest.approx(h.max())


def test_sidecar_states_pitch_wavelengths_units_and_phase_error_bound(tmp_path):
    h = _heights()
    k = 2 * np.pi * 0.46 / 532e-9
    paths = write_map(
        tmp_path,
        "gen1_01",
        torch.tensor(h),
        pixel_pitch_m=8e-6,
        wavelengths_m=(532e-9,),
        phase_per_height_rad_per_m=(k,),
        metadata={"material": "fused_silica"},
    )
    meta = json.loads(paths["json"].read_text())
    assert (
        meta["pixel_pitch_m"] == 8e-6 and meta["unit"] == "m" and meta["material"] == "fused_silica"
    )
    assert meta["wavelengths_m"] == [532e-9] and meta["shape"] == [24, 40]
    q = meta["quantisation"]
    assert q["bits"] == 16
    assert q["max_phase_error_rad"][0] == pytest.approx(k * q["step"] / 2)
    with open(paths["png"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_flat_map_round_trips_exactly(tmp_path):
    h = np.full((5, 7), 3e-7)
    write_map(tmp_path, "flat", h, pixel_pitch_m=1e-5)
    png, meta = read_map(tmp_path, "flat", "png")
    assert meta["quantisation"]["step"] == 0 and np.array_equal(png, h)


def test_amplitude_maps_use_a_fixed_unit_scale(tmp_path):
    a = np.linspace(0, 1, 12).reshape(3, 4)
    write_map(tmp_path, "enc01_amplitude", a, kind="amplitude", pixel_pitch_m=1e-5)
    png, meta = read_map(tmp_path, "enc01_amplitude", "png")
    assert meta["unit"] == "1" and np.abs(png - a).max() <= 0.5 / LEVELS + 1e-15


@pytest.mark.parametrize(
    ("values", "kind", "match"),
    [
        (np.full((3, 3), -1e-7), "height", "negative heights"),
        (np.full((3, 3), np.nan), "height", "NaN"),
        (np.zeros((2, 3, 3)), "height", "shape"),
        (np.full((3, 3), 1.5), "amplitude", r"\[0, 1\]"),
        (np.zeros((3, 3), complex), "height", "complex"),
    ],
)
def test_bad_maps_raise_value_error(tmp_path, values, kind, match):
    with pytest.raises(ValueError, match=match):
        write_map(tmp_path, "bad", values, kind=kind, pixel_pitch_m=1e-5)
    assert list(tmp_path.iterdir()) == []


def test_missing_files_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="sidecar"):
        read_map(tmp_path, "nothing")
