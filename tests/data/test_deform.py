"""Handwriting-like deformations of printed glyphs (lightgen.data.deform)."""

import pytest
import torch

from lightgen.data.deform import elastic_distort, handwriting_like


def _bar(n: int = 4, size: int = 28) -> torch.Tensor:
    x = torch.zeros(n, 1, size, size)
    x[..., 6:22, 12:16] = 1.0  # a vertical bold stroke, 4 px wide
    return x


def test_elastic_distortion_of_zero_amplitude_is_the_identity():
    x = _bar()
    torch.testing.assert_close(elastic_distort(x, alpha_px=0.0), x, atol=1e-5, rtol=0)
    assert (elastic_distort(x, alpha_px=2.0) - x).abs().mean() > 0.01


def test_handwriting_like_is_seeded_and_differs_per_image():
    x = _bar()
    a, b = handwriting_like(x, seed=3), handwriting_like(x, seed=3)
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # each image its own pose and warp
    assert not torch.allclose(a, handwriting_like(x, seed=4))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def test_pure_shear_slants_a_vertical_stroke_by_the_shear():
    # shear s moves a point at height y sideways by s * y: the stroke's top and bottom
    # centroids separate by s * (their height difference)
    x = _bar(1)
    out = handwriting_like(
        x, seed=0, rotation_deg=0, shear=0.3, scale=(1, 1), alpha_px=0, thin_probability=0
    )
    cols = torch.arange(28.0)
    ys = []
    for r in (8, 19):
        row = out[0, 0, r]
        ys.append(float((row * cols).sum() / row.sum()))
    # the drawn shear is uniform in +-0.3; its magnitude bounds the slant
    assert 0 < abs(ys[1] - ys[0]) <= 0.3 * 11 + 0.5


def test_thinning_narrows_strokes_and_keeps_their_peak_level():
    x = _bar(1)
    kw = dict(seed=0, rotation_deg=0, shear=0, scale=(1, 1), alpha_px=0)
    plain = handwriting_like(x, thin_probability=0, **kw)
    thin = handwriting_like(x, thin_probability=1, **kw)
    torch.testing.assert_close(plain, x, atol=1e-5, rtol=0)  # no deformation at all
    width = (thin[0, 0, 14] > 0.5).sum().item()
    assert width == 2  # 4 px minus one per side
    assert thin.max().item() == pytest.approx(1.0)


def test_handwriting_like_rejects_bad_shapes_and_probabilities():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        handwriting_like(torch.zeros(28, 28))
    with pytest.raises(ValueError, match="thin_probability"):
        handwriting_like(_bar(), thin_probability=1.5)
