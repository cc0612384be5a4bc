"""PSNR, SSIM, PBMP and class accuracy against closed forms and hand counts."""

from __future__ import annotations

import math

import pytest
import torch

from lightgen.metrics.image import class_accuracy, pbmp, psnr, ssim


@pytest.mark.parametrize("e", [0.01, 0.1, 0.3])
def test_psnr_of_a_uniform_error_is_minus_20_log10_e(e):
    target = torch.rand(3, 1, 16, 16, dtype=torch.float64) * 0.5
    assert float(psnr(target + e, target)) == pytest.approx(10 * math.log10(1 / e**2), rel=1e-9)


def test_psnr_scales_with_data_range_and_reports_per_image():
    target = torch.zeros(2, 3, 8, 8)
    pred = target.clone()
    pred[0] += 5.0
    pred[1] += 50.0
    per = psnr(pred, target, data_range=255.0, reduction="none")
    torch.testing.assert_close(
        per, torch.tensor([20 * math.log10(255 / 5), 20 * math.log10(255 / 50)], dtype=per.dtype)
    )
    assert float(psnr(pred, target, data_range=255.0)) == pytest.approx(float(per.mean()))


def test_psnr_of_identical_images_is_infinite():
    x = torch.rand(1, 1, 4, 4)
    assert math.isinf(float(psnr(x, x)))


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 1, 28, 28)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("a", "b"), [(0.2, 0.6), (0.5, 0.55), (0.9, 0.1)])
def test_ssim_of_constant_images_is_the_luminance_term(a, b):
    # Zero variances make the contrast-structure term C2/C2 = 1, leaving
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 L)^2 (Wang et al. 2004, eq. 13).
    c1 = 0.01**2
    got = ssim(torch.full((1, 1, 24, 24), a), torch.full((1, 1, 24, 24), b))
    assert float(got) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def test_ssim_drops_with_noise_and_is_symmetric():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    small = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    big = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert 1.0 > float(ssim(small, x)) > float(ssim(big, x))
    assert float(ssim(big, x)) == pytest.approx(float(ssim(x, big)), rel=1e-9)


def test_pbmp_counts_pixels_strictly_above_delta():
    target = torch.zeros(1, 1, 1, 5)
    pred = torch.tensor([0.0, 0.1, 35 / 255, 36 / 255, 1.0]).view(1, 1, 1, 5)
    assert float(pbmp(pred, target)) == pytest.approx(40.0)  # 36/255 and 1.0 only
    assert float(pbmp(target, pred)) == pytest.approx(40.0)  # |.| is symmetric


def test_pbmp_per_image_and_custom_threshold():
    target = torch.zeros(2, 1, 2, 2)
    pred = torch.tensor([[0.0, 0.0, 0.0, 0.5], [0.5, 0.5, 0.5, 0.5]]).view(2, 1, 2, 2)
    torch.testing.assert_close(
        pbmp(pred, target, threshold=0.25, reduction="none"),
        torch.tensor([25.0, 100.0], dtype=torch.float64),
    )
    assert float(pbmp(pred, target, threshold=0.5)) == 0.0


def test_two_dimensional_images_are_one_image():
    assert float(pbmp(torch.ones(3, 3), torch.zeros(3, 3))) == 100.0


class _PickChannel(torch.nn.Module):
    """Predicts the index of the brightest of the first 3 pixels (a known classifier)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.flatten(1)[:, :3] + self.dummy


def test_class_accuracy_is_the_fraction_classified_as_labelled():
    images = torch.zeros(4, 1, 1, 3)
    for i, c in enumerate([0, 1, 2, 0]):
        images[i, 0, 0, c] = 1.0  # the brightest pixel encodes the predicted class
    labels = torch.tensor([0, 1, 2, 1])  # last one is wrong
    model = _PickChannel().train()
    assert class_accuracy(model, images, labels, batch_size=3) == pytest.approx(0.75)
    assert model.training


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: psnr(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3)), "shape"),
        (lambda: psnr(torch.zeros(2, 2), torch.zeros(2, 2), data_range=0), "data_range"),
        (lambda: psnr(torch.zeros(2, 2, dtype=torch.complex64), torch.zeros(2, 2)), "complex"),
        (lambda: ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)), "11 x 11"),
        (lambda: pbmp(torch.zeros(2, 2), torch.zeros(2, 2), threshold=-1), "threshold"),
        (lambda: psnr(torch.zeros(2, 2), torch.zeros(2, 2), reduction="sum"), "reduction"),
        (lambda: class_accuracy(_PickChannel(), torch.zeros(3, 1, 2, 2), [0, 1]), "labels"),
    ],
)
def test_bad_inputs_raise_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_ssim_in_chunks_equals_ssim_of_each_image_alone(monkeypatch):
    import torch

    from lightgen.metrics import image
    from lightgen.metrics.image import ssim

    monkeypatch.setattr(image, "_SSIM_CHUNK", 4)  # 9 images -> chunks of 4, 4, 1
    g = torch.Generator().manual_seed(0)
    a = torch.rand(9, 3, 16, 16, generator=g)
    b = (a + 0.1 * torch.rand(9, 3, 16, 16, generator=g)).clamp(0, 1)
    batched = ssim(a, b, reduction="none")
    alone = torch.stack([ssim(a[i : i + 1], b[i : i + 1]) for i in range(9)])
    assert batched.shape == (9,) and torch.allclose(batched, alone, atol=1e-6)


def test_ssim_equals_torchmetrics_two_dimensional_window():
    """The separable window gives torchmetrics' 2-D convolution result (an independent
    implementation) on colour images of odd and non-square size."""
    tm = pytest.importorskip("torchmetrics.functional.image")
    import torch

    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 3, 37, 52, generator=g, dtype=torch.float64)
    b = (a + 0.4 * torch.rand(3, 3, 37, 52, generator=g, dtype=torch.float64)).clamp(0, 1)
    want = tm.structural_similarity_index_measure(a, b, data_range=1.0, reduction="none")
    got = ssim(a, b, reduction="none")
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    assert float(ssim(a, b, data_range=2.0)) == pytest.approx(
        float(tm.structural_similarity_index_measure(a, b, data_range=2.0)), abs=1e-12
    )
