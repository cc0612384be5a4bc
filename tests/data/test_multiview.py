"""Multi-view chair renderer: projected areas, mirror symmetry, Lambert shading, layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.data.multiview import (
    CHAIR_FAMILIES,
    Box,
    Cylinder,
    camera_frame,
    chair_primitives,
    downsample,
    intersect_box,
    intersect_cylinder,
    make_multiview,
    pixel_centres,
    render_primitives,
    render_style,
    style_primitives,
    view_azimuths_rad,
)

HALF = 0.68  # image half-extent used below (object units)


def _area_tolerance(width: float, height: float, size: int) -> float:
    # a pixel-centre-sampled silhouette errs by at most half a pixel along its outline;
    # a convex outline is no longer than its bounding rectangle's perimeter 2(W + H)
    p = 2 * HALF / size
    return (width + height) * p + 4 * p * p


@settings(max_examples=10, deadline=None)
@given(
    half=st.tuples(*[st.floats(0.08, 0.3)] * 3),
    azimuth=st.floats(0, 2 * math.pi),
    elevation=st.floats(-1.2, 1.2),
)
def test_box_silhouette_area_is_sum_of_face_areas_times_cosines(half, azimuth, elevation):
    a, b, c = half
    size = 192
    _, cov = render_primitives([Box((-a, -b, -c), (a, b, c))], [azimuth], size, elevation, HALF)
    back, right, up = camera_frame([azimuth], elevation)
    d, r, u = back[0].abs(), right[0].abs(), up[0].abs()
    area = 4 * (b * c * d[0] + a * c * d[1] + a * b * d[2]).item()
    hs = torch.tensor([a, b, c], dtype=torch.float64)
    w, h = 2 * float(hs @ r), 2 * float(hs @ u)
    measured = float(cov.sum()) * (2 * HALF / size) ** 2
    assert measured == pytest.approx(area, abs=_area_tolerance(w, h, size))


@settings(max_examples=10, deadline=None)
@given(
    r=st.floats(0.05, 0.3),
    height=st.floats(0.1, 0.8),
    elevation=st.floats(-1.2, 1.2),
    azimuth=st.floats(0, 2 * math.pi),
)
def test_cylinder_silhouette_area_is_side_rectangle_plus_cap_ellipse(r, height, elevation, azimuth):
    size = 192
    cyl = Cylinder((0.0, 0.0), r, -height / 2, height / 2)
    _, cov = render_primitives([cyl], [azimuth], size, elevation, HALF)
    area = 2 * r * height * math.cos(elevation) + math.pi * r * r * abs(math.sin(elevation))
    h = height * math.cos(elevation) + 2 * r * abs(math.sin(elevation))
    measured = float(cov.sum()) * (2 * HALF / size) ** 2
    assert measured == pytest.approx(area, abs=_area_tolerance(2 * r, h, size))


def test_box_ray_enters_front_face_at_closed_form_distance():
    o = torch.tensor([[0.1, 0.05, 5.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    t, n = intersect_box(o, d, Box((-0.2, -0.2, -0.3), (0.2, 0.2, 0.3)))
    assert float(t[0]) == pytest.approx(5.0 - 0.3)
    assert n[0].tolist() == [0.0, 0.0, 1.0]
    t_miss, _ = intersect_box(o + torch.tensor([0.5, 0.0, 0.0]), d, Box((-0.2,) * 3, (0.2,) * 3))
    assert math.isinf(float(t_miss[0]))


def test_cylinder_ray_hits_side_at_circle_chord_and_cap_from_above():
    r, u = 0.3, 0.18
    o = torch.tensor([[u, 0.0, 5.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    cyl = Cylinder((0.0, 0.0), r, -0.5, 0.5)
    t, n = intersect_cylinder(o, d, cyl)
    zc = math.sqrt(r * r - u * u)
    assert float(t[0]) == pytest.approx(5.0 - zc)
    assert n[0].tolist() == pytest.approx([u / r, 0.0, zc / r])
    t_cap, n_cap = intersect_cylinder(
        torch.tensor([[0.1, 3.0, 0.1]], dtype=torch.float64),
        torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64),
        cyl,
    )
    assert float(t_cap[0]) == pytest.approx(2.5)
    assert n_cap[0].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("style", [0, 1, 3])
@pytest.mark.parametrize("azimuth_deg", [0.0, 35.0])
def test_opposite_views_give_mirror_image_silhouettes(style, azimuth_deg):
    # orthographic projection along -d and +d: same silhouette, right axis reversed
    prims = style_primitives(style, seed=0)
    a = math.radians(azimuth_deg)
    _, cov = render_primitives(prims, [a, a + math.pi], 96, 0.0, HALF)
    mask = cov[:, 0] > 0.5
    assert mask[0].sum() > 200
    mismatch = (mask[1] != mask[0].flip(-1)).float().mean()
    assert mismatch < 2e-3  # float round-off on exact edge pixels only


def test_left_right_symmetric_chair_at_minus_azimuth_is_the_mirror_image():
    prims = style_primitives(4, seed=3)  # ladder-back, symmetric in x
    a = math.radians(50.0)
    _, cov = render_primitives(prims, [a, -a], 96, math.radians(20.0), HALF)
    mask = cov[:, 0] > 0.5
    assert (mask[1] != mask[0].flip(-1)).float().mean() < 2e-3


@pytest.mark.parametrize("light_angle_rad", [0.0, 0.6, 1.2])
def test_face_brightness_follows_lamberts_cosine_law(light_angle_rad):
    albedo, ambient = 0.8, 0.2
    box = Box((-0.5, -0.5, -0.1), (0.5, 0.5, 0.1), albedo)
    light = (math.sin(light_angle_rad), 0.0, math.cos(light_angle_rad))  # camera frame
    img, _ = render_primitives([box], [0.0], 16, 0.0, HALF, ambient=ambient, light=light)
    expected = albedo * (ambient + (1 - ambient) * math.cos(light_angle_rad))
    assert float(img[0, 0, 8, 8]) == pytest.approx(expected, abs=1e-5)


def test_pixel_centres_are_symmetric_about_the_optical_axis():
    c = pixel_centres(10, 1.0)
    assert torch.allclose(c, -c.flip(0))
    assert float(c[1] - c[0]) == pytest.approx(0.2)


def test_every_chair_fits_inside_the_frame_at_every_view():
    az = view_azimuths_rad(12)
    for style in range(2 * len(CHAIR_FAMILIES)):
        _, cov = render_primitives(style_primitives(style), az, 48, math.radians(20.0), HALF)
        m = cov[:, 0]
        border = torch.cat([m[:, 0], m[:, -1], m[:, :, 0], m[:, :, -1]], 1)
        assert float(border.max()) == 0.0, f"style {style} touches the frame border"
        assert float(m.mean()) > 0.03  # and is not vanishingly small


def test_make_multiview_layout_is_style_major_with_even_azimuths():
    n_styles, n_views, size = 2, 6, 24
    images, style, az = make_multiview(n_styles, n_views, size, seed=5)
    assert images.shape == (n_styles * n_views, 1, size, size)
    assert images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert style.tolist() == [0] * n_views + [1] * n_views
    assert torch.allclose(
        az[:n_views], 2 * math.pi * torch.arange(n_views, dtype=torch.float64) / n_views
    )
    one = render_style(1, [float(az[3])], size, seed=5)
    assert torch.equal(images[n_views + 3], one[0])


def test_rendering_is_deterministic_and_a_style_does_not_depend_on_the_style_count():
    a = make_multiview(2, 4, 16, seed=1)[0]
    b = make_multiview(3, 4, 16, seed=1)[0]
    assert torch.equal(a, b[:8])
    assert not torch.equal(a, make_multiview(2, 4, 16, seed=2)[0])


def test_all_families_are_distinct_chairs():
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    imgs = [
        render_primitives(chair_primitives(f, rng()), [0.7], 32, 0.35, 1.0)[0]
        for f in range(len(CHAIR_FAMILIES))
    ]
    for i in range(len(imgs)):
        for j in range(i):
            assert (imgs[i] - imgs[j]).abs().mean() > 0.01


def test_box_downsampling_conserves_mean_intensity():
    x = torch.rand(3, 1, 64, 64)
    y = downsample(x, 16)
    assert y.shape == (3, 1, 16, 16)
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    assert downsample(x, 24).shape == (3, 1, 24, 24)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_styles=0), "n_styles"),
        (dict(n_styles=1, n_views=1), "n_views"),
        (dict(n_styles=1, size=4), "size"),
        (dict(n_styles=1, supersample=0), "supersample"),
    ],
)
def test_make_multiview_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_multiview(**kwargs)


def test_renderer_rejects_bad_arguments():
    box = [Box((-0.1,) * 3, (0.1,) * 3)]
    with pytest.raises(ValueError, match="primitives is empty"):
        render_primitives([], [0.0], 8)
    with pytest.raises(ValueError, match="unknown primitive"):
        render_primitives(["chair"], [0.0], 8)
    with pytest.raises(ValueError, match="half_extent"):
        render_primitives(box, [0.0], 8, half_extent=-1.0)
    with pytest.raises(ValueError, match="ambient"):
        render_primitives(box, [0.0], 8, ambient=2.0)
    with pytest.raises(ValueError, match="style"):
        style_primitives(-1)
    with pytest.raises(ValueError, match="family"):
        chair_primitives(len(CHAIR_FAMILIES), np.random.default_rng(0))
