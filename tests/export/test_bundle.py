"""Whole-design export: the round trip reproduces the simulated output; bad input fails early.

Round-trip tolerance (stated and derived, not tuned). The toy chip is a chain of
phase masks :math:`e^{i\\phi_l}` and band-limited angular-spectrum propagations, each
an l2 contraction (:math:`|H|\\le 1`, zero padding and cropping). Replacing every mask
by its PNG-decoded version changes each phase by at most
:math:`\\delta_l = k_\\lambda \\Delta h_l / 2` (:math:`k_\\lambda = 2\\pi(n-1)/\\lambda`,
:math:`\\Delta h_l` the 16-bit step), so the output field moves by at most
:math:`\\sum_l \\delta_l\\,\\lVert u_{in}\\rVert` and the output intensity by
:math:`\\lVert I'-I\\rVert_1 \\le 2\\sum_l\\delta_l\\,P_{in}`. For 1.2 um of relief that is
3e-4 of the input power for the three-layer toy; NPY round trips are exact.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lightgen.export import bundle as bundle_mod
from lightgen.export import default_lut, export_design, load_design
from lightgen.export.lut import MetasurfaceLUT
from lightgen.hardware.design import ChipDesign, LayerSpec, grid_fiber_positions_m
from lightgen.optics.grid import Grid, intensity
from lightgen.optics.materials import height_to_phase
from lightgen.optics.propagation import FreeSpace

N, PITCH = 32, 8e-6


def _toy(**kw) -> ChipDesign:
    layer = LayerSpec(N, N, PITCH)
    base = dict(
        name="toy",
        wavelengths_m=(532e-9, 633e-9),
        input_shape=(N, N),
        input_pixel_pitch_m=PITCH,
        encoder_layers=(layer, layer),
        generator_layers=(layer,),
        encoder_distances_m=(1e-3, 1.5e-3, 1e-3),
        generator_distances_m=(1e-3, 2e-3),
        n_fibers=4,
        fiber_positions_m=grid_fiber_positions_m(4, 40e-6),
        camera_shape=(N, N),
        camera_pixel_pitch_m=PITCH,
        material="fused_silica",
    )
    return ChipDesign(**{**base, **kw})


def _heights(design: ChipDesign, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 1.2e-6, (s.n_y, s.n_x)) for _, s in design.layers()]


def simulate(design: ChipDesign, heights: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Toy forward model: input -> enc01 -> enc02 -> gen1_01 -> camera intensity.

    The fiber array is replaced by free space (distances encoder->fiber plus
    fiber->generator): the round trip tests the exported layers, not the fibers.
    """
    grid = Grid((N, N), PITCH, design.wavelengths_m)
    d_e, d_g = design.encoder_distances_m, design.generator_distances_m
    gaps = [d_e[0], d_e[1], d_e[2] + d_g[0], d_g[1]]
    yy, xx = grid.meshgrid()
    u = (
        torch.exp(-(xx**2 + yy**2) / (60e-6) ** 2)
        .to(torch.complex128)[None, None]
        .repeat(1, 2, 1, 1)
    )
    p_in = intensity(u).sum()
    for h, z in zip([*heights, None], gaps, strict=True):
        u = FreeSpace(grid, z)(u)
        if h is not None:
            phase = height_to_phase(torch.as_tensor(h), design.material, design.wavelengths_m)
            u = u * torch.polar(torch.ones_like(phase), phase)[None]
    return intensity(u), p_in


def test_png_round_trip_reproduces_simulated_output_within_quantisation_bound(tmp_path):
    design = _toy()
    heights = _heights(design)
    export_design(tmp_path / "out", design, heights, formats="heightmap")
    loaded = load_design(tmp_path / "out", source="png")
    assert loaded.design == design
    ref, p_in = simulate(design, heights)
    out, _ = simulate(loaded.design, loaded.heights_list())
    k_max = max(design.phase_per_height_rad_per_m())
    bound = 2 * sum(k_max * (h.max() - h.min()) / 65535 / 2 for h in heights)
    err = float((out - ref).abs().sum() / p_in)
    assert 0 < err <= bound
    assert bound < 3e-4  # stated tolerance: 3 layers, 1.2 um relief, 16-bit PNG: < 0.03 % of P_in


def test_npy_round_trip_is_bit_exact(tmp_path):
    design = _toy()
    heights = _heights(design, seed=3)
    export_design(tmp_path / "out", design, heights, formats=["heightmap"])
    loaded = load_design(tmp_path / "out")  # auto -> npy
    assert loaded.source == "npy"
    for a, b in zip(loaded.heights_list(), heights, strict=True):
        assert np.array_equal(a, b)
    assert torch.equal(
        simulate(design, heights)[0], simulate(loaded.design, loaded.heights_list())[0]
    )


def test_all_formats_write_every_file_and_the_sheet_lists_them(tmp_path):
    design = _toy()
    rep = export_design(
        tmp_path / "out", design, [torch.tensor(h) for h in _heights(design)], formats="all"
    )
    names = design.layer_names()
    for n in names:
        for f in (
            f"heightmaps/{n}.png",
            f"heightmaps/{n}.npy",
            f"heightmaps/{n}.json",
            f"gds/{n}.gds",
            f"slm/{n}.png",
        ):
            assert f in rep.files
    for f in ("design.json", "design.md", "fibers.csv", "gds/lut.csv", "slm/slm_lut.csv"):
        assert f in rep.files
    sheet = json.loads((tmp_path / "out" / "design.json").read_text())
    assert [layer["name"] for layer in sheet["layers"]] == names
    assert sheet["design"]["wavelengths_m"] == [532e-9, 633e-9]
    assert len(rep.gds) == len(names) and all(g.n_instances == N * N for g in rep.gds)
    assert "MB" in rep.summary() and "references" in rep.summary()
    md = (tmp_path / "out" / "design.md").read_text()
    for field in ("encoder_distances_m", "fiber_length_m", "material", "package_area_m2"):
        assert field in md
    loaded = load_design(tmp_path / "out")
    np.testing.assert_allclose(
        np.array(loaded.fiber_positions_m), np.array(design.fiber_positions_m), atol=1e-15
    )


def test_amplitude_layers_round_trip(tmp_path):
    design = _toy(has_amplitude=True)
    heights = _heights(design)
    amps = [np.full((N, N), 0.25 * (i + 1)) for i in range(len(heights))]
    with pytest.raises(ValueError, match="amplitudes=None"):
        export_design(tmp_path / "a", design, heights)
    export_design(tmp_path / "out", design, heights, amplitudes=amps, formats="heightmap")
    loaded = load_design(tmp_path / "out", source="png")
    for n, a in zip(design.layer_names(), amps, strict=True):
        np.testing.assert_allclose(loaded.amplitudes[n], a, atol=1 / 65535)


def test_unwritable_output_path_raises_before_writing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    design = _toy()
    with pytest.raises(ValueError, match="not writable"):
        export_design(blocker / "out", design, _heights(design))
    with pytest.raises(ValueError, match="existing file"):
        export_design(blocker, design, _heights(design))


def test_existing_export_needs_overwrite_and_is_replaced_whole(tmp_path):
    design = _toy()
    export_design(tmp_path / "out", design, _heights(design), formats="all")
    with pytest.raises(ValueError, match="overwrite"):
        export_design(tmp_path / "out", design, _heights(design))
    export_design(tmp_path / "out", design, _heights(design), formats="sheet", overwrite=True)
    assert not (tmp_path / "out" / "gds").exists()  # old files do not linger
    assert load_design(tmp_path / "out").heights_m == {}


def test_failure_midway_leaves_no_folder(tmp_path, monkeypatch):
    design = _toy()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundle_mod, "write_metasurface_gds", broken)
    with pytest.raises(OSError, match="disk full"):
        export_design(tmp_path / "out", design, _heights(design), formats="all")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(formats="pdf"), "format"),
        (dict(lut="/nonexistent/lut.csv"), "lut=.*not found"),
        (dict(design_wavelength_m=450e-9), "design_wavelength_m"),
        (dict(slm_lut="/nonexistent/slm.csv"), "slm_lut=.*not found"),
    ],
)
def test_bad_export_options_raise_value_error(tmp_path, kwargs, match):
    design = _toy()
    with pytest.raises(ValueError, match=match):
        export_design(tmp_path / "out", design, _heights(design), **kwargs)
    assert not (tmp_path / "out").exists()


def test_bad_maps_and_tables_raise_value_error(tmp_path):
    design = _toy()
    h = _heights(design)
    with pytest.raises(ValueError, match="3 layers"):
        export_design(tmp_path / "o", design, h[:2])
    with pytest.raises(ValueError, match=r"heights_m\[enc02\] has shape"):
        export_design(tmp_path / "o", design, [h[0], np.zeros((4, 4)), h[2]])
    with pytest.raises(ValueError, match="negative"):
        export_design(tmp_path / "o", design, [h[0] - 1e-6, h[1], h[2]])
    with pytest.raises(ValueError, match=r"amplitudes\[enc01\] spans"):
        amps = [np.full((N, N), 1.5), np.ones((N, N)), np.ones((N, N))]
        export_design(tmp_path / "o", _toy(has_amplitude=True), h, amplitudes=amps)
    wrong_wl = default_lut(633e-9, pixel_pitch_m=PITCH)
    with pytest.raises(ValueError, match="lut is for wavelength"):
        export_design(tmp_path / "o", design, h, lut=wrong_wl)
    coarse = MetasurfaceLUT(
        532e-9, 300e-9, 6e-7, (1e-7, 2e-7), (0.0, 3.0)
    )  # 8 um / 300 nm is not whole
    with pytest.raises(ValueError, match=r"layer enc01: .*whole multiple"):
        export_design(tmp_path / "o", design, h, lut=coarse)
    assert not (tmp_path / "o").exists()


def test_load_design_of_a_non_export_folder_raises(tmp_path):
    with pytest.raises(ValueError, match=r"design\.json"):
        load_design(tmp_path)
