import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.data.registry import load_dataset
from lightgen.data.styles import (
    apply_style,
    cartoon,
    cut_patches,
    halftone,
    kuwahara,
    mosaic,
    painterly,
    parse_style,
    stained_glass,
    style_defaults,
    style_params,
    tile_patches,
    voronoi_labels,
    voronoi_seeds,
)


def _rand(shape, seed=0, dtype=torch.float32):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_mosaic_tiles_are_constant_and_equal_the_cell_mean_including_clipped_edge_cells():
    x = _rand((2, 3, 10, 10))
    y = mosaic(x, cell_px=4, grout_px=1, grout_value=0.1)
    for r0 in (0, 4, 8):
        for c0 in (0, 4, 8):
            cell = x[..., r0 : r0 + 4, c0 : c0 + 4]  # the edge cells are 2 px wide
            mean = cell.mean((2, 3))
            r1, c1 = min(r0 + 3, 10), min(c0 + 3, 10)  # grout: each cell's last row/column
            tile = y[..., r0:r1, c0:c1]
            torch.testing.assert_close(tile, mean[..., None, None].expand_as(tile))


def test_mosaic_grout_lines_sit_on_each_cells_last_rows_and_columns():
    y = mosaic(torch.ones(1, 1, 9, 9), cell_px=3, grout_px=1, grout_value=0.25)
    grout = torch.zeros(9, 9, dtype=torch.bool)
    grout[2::3, :] = True
    grout[:, 2::3] = True
    assert torch.all(y[0, 0][grout] == 0.25) and torch.all(y[0, 0][~grout] == 1.0)


def test_mosaic_without_grout_conserves_the_total_intensity_of_whole_cells():
    x = _rand((3, 1, 12, 12), seed=1)
    y = mosaic(x, cell_px=4, grout_px=0)
    torch.testing.assert_close(y.sum((2, 3)), x.sum((2, 3)))


@settings(max_examples=10, deadline=None)
@given(c=st.floats(0, 1), channels=st.sampled_from([1, 3]))
def test_painterly_leaves_a_constant_image_constant(c, channels):
    x = torch.full((2, channels, 16, 16), c)
    torch.testing.assert_close(painterly(x, 2, 2, levels=None), x, atol=1e-6, rtol=0)


def test_painterly_with_levels_keeps_a_constant_that_lies_on_a_level():
    x = torch.full((1, 3, 16, 16), 0.6)  # 3/5 is a level of 6
    torch.testing.assert_close(painterly(x, levels=6), x, atol=1e-6, rtol=0)


def test_painterly_keeps_a_sharp_step_edge_sharp():
    # Kuwahara picks the uniform corner window; the brush runs along the edge
    x = torch.zeros(1, 1, 16, 16)
    x[..., 8:] = 0.8
    torch.testing.assert_close(painterly(x, 2, 3, levels=None), x, atol=1e-5, rtol=0)


def test_kuwahara_takes_the_mean_of_the_least_variance_corner_window():
    # the pixel (2, 2) of a 5x5 image: only the bottom-right 2x2 window is uniform
    x = _rand((1, 1, 5, 5), seed=3)
    x[..., 2:4, 2:4] = 0.5
    assert kuwahara(x, 1)[0, 0, 2, 2].item() == pytest.approx(0.5, abs=1e-6)


def test_painterly_output_is_on_the_level_grid_in_range_and_keeps_dtype():
    x = _rand((2, 3, 20, 20), seed=2, dtype=torch.float64)
    y = painterly(x, radius_px=2, stroke_px=2, levels=5)
    assert y.shape == x.shape and y.dtype == torch.float64
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y * 4, (y * 4).round())
    assert torch.equal(y, painterly(x, radius_px=2, stroke_px=2, levels=5))  # deterministic


def test_painterly_changes_a_textured_image():
    x = _rand((1, 3, 32, 32), seed=4)
    assert (painterly(x, levels=None) - x).abs().mean() > 0.05


def test_style_defaults_scale_with_image_size():
    assert style_defaults("mosaic", 64)["cell_px"] == 4
    assert style_defaults("painterly", 64)["radius_px"] == 3
    assert style_defaults("painterly", 12)["radius_px"] == 1
    x = _rand((1, 1, 16, 16))
    torch.testing.assert_close(apply_style("mosaic", x), mosaic(x, cell_px=3))
    assert style_defaults("halftone", 64)["cell_px"] == 4
    torch.testing.assert_close(apply_style("halftone", x), halftone(x, cell_px=3))


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda x: mosaic(x, cell_px=1), "cell_px"),
        (lambda x: mosaic(x, cell_px=4, grout_px=4), "grout_px"),
        (lambda x: mosaic(x, grout_value=2.0), "grout_value"),
        (lambda x: painterly(x, radius_px=0), "radius_px"),
        (lambda x: painterly(x, stroke_px=-1), "stroke_px"),
        (lambda x: painterly(x, levels=1), "levels"),
        (lambda x: mosaic(x[0]), "4-D"),
        (lambda x: mosaic(x[:, :2]), "channels"),
        (lambda x: mosaic((x * 255).byte()), "dtype"),
        (lambda x: painterly(x * float("nan")), "NaN"),
        (lambda x: apply_style("cubism", x), "cubism"),
        (lambda x: cut_patches(x, 5), "divide"),
        (lambda x: halftone(x, cell_px=1), "cell_px"),
        (lambda x: cartoon(x, radius_px=0), "radius_px"),
        (lambda x: cartoon(x, levels=1), "levels"),
        (lambda x: cartoon(x, edge_threshold=0.0), "edge_threshold"),
        (lambda x: cartoon(x, edge_threshold=float("nan")), "edge_threshold"),
        (lambda x: cartoon(x, blur_px=-1), "blur_px"),
        (lambda x: cartoon(x, line_value=1.5), "line_value"),
    ],
)
def test_bad_style_arguments_name_the_parameter(call, word):
    with pytest.raises(ValueError, match=word):
        call(_rand((1, 3, 12, 12)))


def test_patches_are_row_major_and_tile_back_exactly():
    x = _rand((2, 1, 28, 28), seed=5)
    p = cut_patches(x, 7)
    assert p.shape == (32, 1, 7, 7)
    assert torch.equal(p[1], x[0, :, 0:7, 7:14]) and torch.equal(p[4], x[0, :, 7:14, 0:7])
    assert torch.equal(p[16], x[1, :, 0:7, 0:7])
    assert torch.equal(tile_patches(p, 4, 4), x)
    with pytest.raises(ValueError, match="rows"):
        tile_patches(p[:5], 4, 4)


def test_registry_styled_set_is_the_styled_base_set():
    base = load_dataset("shapes", split="test", size=16, limit=4)
    styled = load_dataset("shapes+painterly", split="test", size=16, limit=4)
    assert styled.name == "shapes+painterly" and torch.equal(styled.labels, base.labels)
    torch.testing.assert_close(styled.images, apply_style("painterly", base.images))


def test_registry_patch_set_cuts_native_images_and_keeps_labels():
    base = load_dataset("printed-digits", limit=20)  # procedural draws depend on the count
    ds = load_dataset("printed-digits+patches7", size=7, limit=20)
    assert ds.images.shape == (20, 1, 7, 7)
    torch.testing.assert_close(ds.images[:16], cut_patches(base.images, 7)[:16])
    assert torch.all(ds.labels[:16] == base.labels[0])


@pytest.mark.parametrize(
    "name, size, word", [("printed-digits+patches7", 12, "size=12"), ("shapes+blur", None, "blur")]
)
def test_registry_refuses_bad_derived_sets(name, size, word):
    with pytest.raises(ValueError, match=word):
        load_dataset(name, size=size, limit=2)


# ------------------------------------------------------------------ halftone
@settings(max_examples=20, deadline=None)
@given(st.floats(0.05, 0.7))
def test_halftone_dot_area_is_the_cell_mean(level):
    # pi r^2 = level * c^2: a flat image keeps its mean (within the rim's sampling error)
    x = torch.full((1, 1, 64, 64), level)
    y = halftone(x, cell_px=16)
    assert abs(y.mean().item() - level) < 0.03


def test_halftone_dots_are_centred_discs_that_grow_with_intensity_and_black_stays_black():
    x = torch.zeros(1, 1, 16, 32)
    x[..., 16:] = 0.5  # left cell black, right cell grey
    y = halftone(x, cell_px=16)
    assert y[..., :16].max() == 0
    cell = y[0, 0, :, 16:]
    assert cell[7:9, 7:9].min() == 1.0 and cell[0, 0] == 0.0  # dot in the centre, corner dark
    r = 16 * (0.5 / torch.pi) ** 0.5
    assert cell[8, 8 + int(r) - 1] == 1.0 and cell[8, min(15, 8 + int(r) + 2)] == 0.0


def test_halftone_draws_each_colour_channel_from_its_own_mean():
    x = torch.zeros(1, 3, 8, 8)
    x[:, 0] = 0.6  # red only
    y = halftone(x, cell_px=8)
    assert y[:, 0].sum() > 0 and y[:, 1:].sum() == 0


# ------------------------------------------------------------------ stained glass
@settings(max_examples=25, deadline=None)
@given(st.integers(5, 40), st.integers(5, 40), st.integers(2, 9), st.integers(0, 10_000))
def test_voronoi_labels_are_the_nearest_seed_by_brute_force(h, w, cell_px, seed):
    labels, k = voronoi_labels(h, w, cell_px, seed)
    rows, cols = -(-h // cell_px), -(-w // cell_px)
    assert k == rows * cols and labels.shape == (h, w)
    sy, sx = voronoi_seeds(rows, cols, cell_px, seed)
    py = torch.arange(h, dtype=torch.float64)[:, None, None] + 0.5
    px = torch.arange(w, dtype=torch.float64)[None, :, None] + 0.5
    d = (sy.flatten() - py) ** 2 + (sx.flatten() - px) ** 2  # (h, w, k): every seed
    chosen = d.gather(-1, labels[..., None])[..., 0]
    torch.testing.assert_close(chosen, d.min(-1).values, rtol=0, atol=1e-9)  # ties may differ


def test_voronoi_seeds_sit_in_their_own_grid_squares_and_depend_only_on_the_seed():
    sy, sx = voronoi_seeds(4, 5, 6, seed=3)
    i = torch.arange(4, dtype=torch.float64)[:, None]
    j = torch.arange(5, dtype=torch.float64)[None, :]
    assert torch.all((sy >= (i + 0.1) * 6) & (sy <= (i + 0.9) * 6))
    assert torch.all((sx >= (j + 0.1) * 6) & (sx <= (j + 0.9) * 6))
    assert torch.equal(voronoi_seeds(4, 5, 6, seed=3)[0], sy)
    assert not torch.equal(voronoi_seeds(4, 5, 6, seed=4)[0], sy)


def test_stained_glass_panes_are_the_pane_mean_and_lead_sits_on_pane_boundaries():
    x = _rand((2, 3, 24, 20), seed=7)
    y = stained_glass(x, cell_px=6, lead_px=1, lead_value=0.05, seed=1)
    labels, k = voronoi_labels(24, 20, 6, seed=1)
    lead = torch.zeros(24, 20, dtype=torch.bool)
    lead[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    lead[:-1, :] |= labels[:-1, :] != labels[1:, :]
    assert torch.all(y[..., lead] == 0.05)
    for pane in range(k):
        inside = labels == pane
        mean = x[..., inside].mean(-1)  # over the whole pane, lead pixels included
        glass = inside & ~lead
        if glass.any():
            torch.testing.assert_close(
                y[..., glass], mean[..., None].expand(-1, -1, int(glass.sum()))
            )


def test_stained_glass_lead_width_dilates_the_boundary_and_flat_images_stay_flat_off_the_lead():
    flat = torch.full((1, 1, 32, 32), 0.6)
    thin = stained_glass(flat, cell_px=8, lead_px=1)
    thick = stained_glass(flat, cell_px=8, lead_px=2)
    glass = thin[thin != 0]
    torch.testing.assert_close(glass, torch.full_like(glass, 0.6))
    lead1, lead2 = thin[0, 0] == 0, thick[0, 0] == 0
    assert torch.all(lead2[lead1]) and lead2.sum() > lead1.sum()  # a superset, strictly wider
    assert lead1.float().mean() < 0.4  # the panes, not the lead, fill the window


def test_stained_glass_through_apply_style_and_the_registry_keeps_dtype_and_device():
    x = _rand((2, 3, 16, 16), seed=2, dtype=torch.float64)
    y = apply_style("stained-glass", x)
    assert y.dtype == torch.float64 and y.shape == x.shape
    assert style_defaults("stained-glass", 64) == {
        "cell_px": 8,
        "lead_px": 1,
        "lead_value": 0.0,
        "seed": 0,
    }
    torch.testing.assert_close(y, stained_glass(x, cell_px=4, lead_px=1))
    base = load_dataset("shapes", split="test", size=16, limit=3)
    styled = load_dataset("shapes+stained-glass", split="test", size=16, limit=3)
    torch.testing.assert_close(styled.images, apply_style("stained-glass", base.images))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"cell_px": 1}, "cell_px"),
        ({"lead_px": 0}, "lead_px"),
        ({"cell_px": 4, "lead_px": 3}, "lead_px"),
        ({"lead_value": 1.5}, "lead_value"),
        ({"lead_value": float("nan")}, "lead_value"),
    ],
)
def test_stained_glass_refuses_bad_parameters_by_name(kwargs, word):
    with pytest.raises(ValueError, match=word):
        stained_glass(torch.rand(1, 1, 8, 8), **kwargs)


# ------------------------------------------------------------------ style specs with a pitch
def test_parse_style_reads_a_cell_pitch_appended_to_a_cell_style():
    assert parse_style("halftone") == ("halftone", {})
    assert parse_style("Halftone8") == ("halftone", {"cell_px": 8})
    assert parse_style("stained-glass12") == ("stained-glass", {"cell_px": 12})
    assert style_params("mosaic6", 64) == {"cell_px": 6, "grout_px": 1, "grout_value": 0.0}
    x = _rand((1, 3, 16, 16), seed=4)
    torch.testing.assert_close(apply_style("halftone8", x), halftone(x, cell_px=8))
    base = load_dataset("shapes", split="test", size=16, limit=3)
    styled = load_dataset("shapes+halftone8", split="test", size=16, limit=3)
    torch.testing.assert_close(styled.images, halftone(base.images, cell_px=8))


@pytest.mark.parametrize("spec", ["painterly5", "halftone1", "mosaic-4", "8"])
def test_parse_style_refuses_a_pitch_where_none_is_taken(spec):
    with pytest.raises(ValueError, match="not a lightgen style"):
        parse_style(spec)


@settings(max_examples=20, deadline=None)
@given(level=st.integers(0, 2), channels=st.sampled_from([1, 3]))
def test_cartoon_leaves_a_constant_on_a_level_constant_and_draws_no_outline(level, channels):
    x = torch.full((2, channels, 16, 16), level / 2)
    torch.testing.assert_close(cartoon(x, levels=3), x)


def test_cartoon_outlines_a_step_edge_and_flattens_both_sides_onto_levels():
    # left half 0.3, right half 0.9: with 3 levels the sides become 0.5 and 1.0. The luma
    # box-blurred over 3 px reads 0.3, 0.5, 0.7, 0.9 at columns 4-7; its central difference
    # is 0.1, 0.2, 0.2, 0.1 per pixel there and 0 elsewhere, so a 0.15 threshold outlines
    # columns 5 and 6 only
    x = torch.full((1, 3, 12, 12), 0.3)
    x[..., 6:] = 0.9
    y = cartoon(x, radius_px=1, levels=3, edge_threshold=0.15, blur_px=1)
    line = (y == 0).all(1)[0]
    assert line[:, 5:7].all() and not line[:, :5].any() and not line[:, 7:].any()
    torch.testing.assert_close(y[..., :5], torch.full_like(y[..., :5], 0.5))
    torch.testing.assert_close(y[..., 7:], torch.full_like(y[..., 7:], 1.0))
    # a gentler threshold than the gradient draws no outline at all
    assert (cartoon(x, radius_px=1, levels=3, edge_threshold=0.21, blur_px=1) > 0).all()


def test_cartoon_defaults_scale_with_size_and_the_registry_applies_them():
    d64, d512 = style_defaults("cartoon", 64), style_defaults("cartoon", 512)
    assert (d64["radius_px"], d64["blur_px"], d64["levels"]) == (2, 1, 3)
    assert (d512["radius_px"], d512["blur_px"]) == (16, 8)
    assert d512["edge_threshold"] == pytest.approx(0.01)
    x = _rand((2, 3, 16, 16))
    torch.testing.assert_close(apply_style("cartoon", x), cartoon(x, **style_params("cartoon", 16)))
    y = apply_style("cartoon", x)
    assert y.dtype == x.dtype and ((y == 0) | (y == 0.5) | (y == 1)).all()
