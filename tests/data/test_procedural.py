"""Procedural data: geometry of the drawn shapes, digit rendering, determinism, balance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.data.procedural import (
    DIGIT_CLASSES,
    SHAPE_CLASSES,
    balanced_labels,
    draw_shapes,
    make_printed_digits,
    make_shapes,
    render_digits,
    shape_sdf,
)

R = 8.0
W = 0.28 * R
# Closed-form areas of the four shapes for size parameter R (see shape_sdf).
AREAS = {
    0: math.pi * R**2,  # disk radius R
    1: (1.6 * R) ** 2,  # square half-side 0.8 R
    2: 3 * math.sqrt(3) / 4 * R**2,  # equilateral triangle, circumradius R
    3: 2 * (2 * R) * (2 * W) - (2 * W) ** 2,  # two bars 2R x 2W overlapping in a 2W square
}


@pytest.mark.parametrize("label", range(4))
@pytest.mark.parametrize("rotation_rad", [0.0, 0.37])
def test_drawn_shape_intensity_sum_equals_its_geometric_area(label, rotation_rad):
    img = draw_shapes(torch.tensor([label]), [R], [rotation_rad], [[0.3, -0.2]], size=28)
    assert float(img.sum()) == pytest.approx(AREAS[label], rel=0.015)


def test_disk_signed_distance_is_radius_minus_range():
    u = torch.tensor([0.0, 3.0, 10.0])
    v = torch.tensor([0.0, 4.0, 0.0])
    d = shape_sdf(0, u, v, torch.tensor(5.0))
    torch.testing.assert_close(d, torch.tensor([-5.0, 0.0, 5.0]))


def test_square_signed_distance_outside_a_corner_is_euclidean():
    # half-side 0.8 * 5 = 4; the point (7, 8) is (3, 4) beyond the corner: distance 5
    d = shape_sdf(1, torch.tensor([7.0]), torch.tensor([8.0]), torch.tensor(5.0))
    torch.testing.assert_close(d, torch.tensor([5.0]))


def test_triangle_inradius_is_half_the_circumradius():
    # centre is r/2 from each edge; the apex (0, -r) is on the boundary
    d = shape_sdf(2, torch.tensor([0.0, 0.0]), torch.tensor([0.0, -6.0]), torch.tensor(6.0))
    torch.testing.assert_close(d, torch.tensor([-3.0, 0.0]), atol=1e-5, rtol=0)


def test_shapes_never_touch_the_outer_pixel_ring():
    x, _ = make_shapes(400, seed=3)
    ring = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1)
    assert float(ring.max()) == 0.0


def test_shapes_have_expected_format_and_range():
    x, y = make_shapes(40, size=32)
    assert x.shape == (40, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(len(SHAPE_CLASSES)))


@pytest.mark.parametrize("maker", [make_shapes, make_printed_digits])
def test_same_seed_same_images_other_seed_other_images(maker):
    a, la = maker(60, seed=7)
    b, lb = maker(60, seed=7)
    c, _ = maker(60, seed=8)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(0, 200), k=st.integers(2, 10), seed=st.integers(0, 1000))
def test_balanced_labels_counts_differ_by_at_most_one(n, k, seed):
    labels = balanced_labels(n, k, np.random.default_rng(seed))
    counts = np.bincount(labels, minlength=k)
    assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_printed_digit_classes_are_exactly_balanced():
    _, y = make_printed_digits(200, seed=1)
    assert torch.bincount(y, minlength=10).tolist() == [20] * 10


def test_clean_digits_are_mnist_sized_and_centred():
    t = render_digits(28)
    assert t.shape == (10, 1, 28, 28)
    heights, centres = [], []
    for img in t[:, 0]:
        rows = torch.nonzero(img.amax(1) > 0.5).flatten()
        cols = torch.nonzero(img.amax(0) > 0.5).flatten()
        heights.append(int(rows[-1] - rows[0] + 1))
        centres.append(((rows[0] + rows[-1]) / 2 - 13.5, (cols[0] + cols[-1]) / 2 - 13.5))
    assert 18 <= max(heights) <= 21  # MNIST digits fit a 20 px box
    assert max(abs(float(c)) for cc in centres for c in cc) <= 1.0


def test_clean_digits_are_mutually_distinct():
    t = render_digits(28).flatten(1)
    d = torch.cdist(t, t) + torch.eye(10) * 1e9
    assert float(d.min()) > 2.0  # any two digits differ by many pixels


def test_unjittered_printed_digit_keeps_the_clean_glyph_mass():
    z, lab = make_printed_digits(
        20, max_rotation_deg=0, scale_range=(1, 1), max_shear=0, max_shift_px=0
    )
    clean = render_digits(28)[lab]
    torch.testing.assert_close(z.sum((1, 2, 3)), clean.sum((1, 2, 3)), rtol=1e-4, atol=1e-3)
    assert float((z - clean).abs().max()) < 0.15  # prefilter adds < 1/4 px of blur


def test_scaling_a_digit_by_s_scales_its_ink_by_s_squared():
    kw = {"max_rotation_deg": 0, "max_shear": 0, "max_shift_px": 0, "seed": 4}
    big, lab = make_printed_digits(30, scale_range=(1.0, 1.0), **kw)
    small, lab2 = make_printed_digits(30, scale_range=(0.8, 0.8), **kw)
    assert torch.equal(lab, lab2)
    ratio = small.sum((1, 2, 3)) / big.sum((1, 2, 3))
    torch.testing.assert_close(ratio, torch.full_like(ratio, 0.64), rtol=0.03, atol=0)


def test_digit_labels_match_the_rendered_glyph():
    # Pixel-wise nearest template is a fair judge only without shifts.
    x, y = make_printed_digits(50, seed=2, max_shift_px=0, max_rotation_deg=5, max_shear=0.05)
    t = render_digits(28).flatten(1)
    nearest = torch.cdist(x.flatten(1), t).argmin(1)
    assert torch.equal(nearest, y)
    assert DIGIT_CLASSES[int(y[0])] == str(int(y[0]))


def test_bad_sizes_name_the_parameter():
    with pytest.raises(ValueError, match="size"):
        make_shapes(10, size=4)
    with pytest.raises(ValueError, match="n must"):
        make_printed_digits(-1)
