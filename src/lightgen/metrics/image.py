r"""Per-image quality scores: PSNR, SSIM, PBMP, and classifier accuracy.

Images are real tensors ``(B, C, H, W)`` (or ``(C, H, W)`` / ``(H, W)``, treated as one
image) with intensities on a scale whose full range is ``data_range`` (1.0 for
lightgen's ``[0, 1]`` images).

* PSNR (dB): :math:`10\log_{10}(R^2/\mathrm{MSE})` per image, then averaged over the batch
  (the convention of per-image tables; the PSNR of the pooled MSE is not the same).
* SSIM: Wang et al. 2004, IEEE TIP 13:600, 11 x 11 Gaussian window sigma 1.5,
  ``K1 = 0.01``, ``K2 = 0.03`` (torchmetrics' definition, computed with a separable window).
* PBMP, percentage of bad matching pixels (Scharstein & Szeliski 2002, IJCV 47:7, used
  by Chen et al. 2025 with delta = 35 of 255): :math:`100\cdot\#\{|p-t|>\delta\}/\#pixels`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightgen._checks import require_positive
from lightgen.metrics.classifier import predict


def _pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
        if t.is_complex():
            raise ValueError(
                f"{name} is complex; pass intensities (lightgen.optics.grid.intensity(field))."
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}. "
            "Resize one to match the other."
        )
    if pred.ndim not in (2, 3, 4):
        raise ValueError(
            f"pred must be (H, W), (C, H, W) or (B, C, H, W), got {tuple(pred.shape)}."
        )
    while pred.ndim < 4:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    return pred.to(torch.float64), target.to(pred.device, torch.float64)


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "none":
        return per_image
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")


def psnr(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images).

    Returns a 0-d tensor (``reduction="mean"``) or ``(B,)`` per image (``"none"``).
    """
    data_range = require_positive("data_range", data_range, "Use 1.0 for [0, 1] images.")
    p, t = _pair(pred, target)
    mse = (p - t).pow(2).mean(dim=(1, 2, 3))
    return _reduce(10.0 * torch.log10(data_range**2 / mse), reduction)


_SSIM_SIGMA = 1.5
_SSIM_WINDOW = 11  # torchmetrics' int(3.5 * sigma + 0.5) * 2 + 1 for sigma 1.5
_SSIM_CHUNK = 16  # images per pass: 5 float64 maps of (chunk, C, H + 10, W + 10)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    d = torch.arange(_SSIM_WINDOW, dtype=dtype, device=device) - (_SSIM_WINDOW - 1) / 2
    g = torch.exp(-0.5 * (d / _SSIM_SIGMA) ** 2)
    return g / g.sum()


def _ssim_map_means(p: torch.Tensor, t: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean SSIM of each image of ``p``/``t`` ``(B, C, H, W)``: reflect padding by half the
    window and a Gaussian window applied as two 1-D passes (the 2-D window is their outer
    product, so this equals torchmetrics' 2-D convolution to rounding, ~5x faster)."""
    c, half = p.shape[1], (_SSIM_WINDOW - 1) // 2
    g = _gaussian_window(p.dtype, p.device)
    k_y = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    k_x = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    p = F.pad(p, (half,) * 4, mode="reflect")
    t = F.pad(t, (half,) * 4, mode="reflect")
    moments = torch.cat((p, t, p * p, t * t, p * t))
    moments = F.conv2d(F.conv2d(moments, k_y, groups=c), k_x, groups=c)
    mu_p, mu_t, pp, tt, pt = moments.split(p.shape[0])
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_pp, mu_tt, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    var_p = (pp - mu_pp).clamp(min=0.0)
    var_t = (tt - mu_tt).clamp(min=0.0)
    ssim_map = ((2 * mu_pt + c1) * (2 * (pt - mu_pt) + c2)) / (
        (mu_pp + mu_tt + c1) * (var_p + var_t + c2)
    )
    return ssim_map.flatten(1).mean(1)


def ssim(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004); 1 for identical images.

    Images must be at least 11 x 11 (the Gaussian window). The same definition as
    torchmetrics' ``structural_similarity_index_measure`` (reflect padding, 11 x 11 window,
    sigma 1.5, K1 0.01, K2 0.03), tested equal to it to 1e-12.
    """
    data_range = require_positive("data_range", data_range, "Use 1.0 for [0, 1] images.")
    p, t = _pair(pred, target)
    if min(p.shape[-2:]) < _SSIM_WINDOW:
        raise ValueError(
            f"ssim needs images of at least 11 x 11 pixels, got {tuple(p.shape[-2:])}. "
            "Upsample them or use psnr."
        )
    per_image = torch.cat(
        [
            _ssim_map_means(p[i : i + _SSIM_CHUNK], t[i : i + _SSIM_CHUNK], data_range)
            for i in range(0, p.shape[0], _SSIM_CHUNK)
        ]
    )
    return _reduce(per_image, reduction)


def pbmp(
    pred: torch.Tensor,
    target: torch.Tensor,
    threshold: float = 35 / 255,
    reduction: str = "mean",
) -> torch.Tensor:
    """Percentage (0-100) of pixels with ``|pred - target| > threshold``.

    ``threshold`` is in image units (35/255 is the paper's delta = 35 on a 0-255 scale);
    a difference exactly at ``threshold`` (in the images' dtype) is not bad. With equal
    image sizes the batch mean equals the percentage over all pixels.
    """
    threshold = float(threshold)
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}. Use e.g. 35/255.")
    _pair(pred, target)  # validation only
    # Compare in the images' own precision: a float32 difference of exactly
    # float32(35/255) must not count as "> 35/255" just because float64(35/255) is smaller.
    dtype = torch.promote_types(pred.dtype, target.dtype)
    diff = (pred.to(dtype) - target.to(pred.device, dtype)).abs()
    bad = (diff > torch.tensor(threshold, dtype=dtype)).to(torch.float64)
    while bad.ndim < 4:
        bad = bad.unsqueeze(0)
    return _reduce(100.0 * bad.mean(dim=(1, 2, 3)), reduction)


def class_accuracy(
    classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512
) -> float:
    """Fraction in ``[0, 1]`` of ``images`` ``(N, C, H, W)`` the classifier labels as
    ``labels`` ``(N,)`` (e.g. generated images vs. the class they were asked for)."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if images.ndim != 4 or labels.shape != (images.shape[0],):
        raise ValueError(
            f"images must be (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
            f"{tuple(labels.shape)}. Give one label per image."
        )
    if images.shape[0] == 0:
        raise ValueError("images is empty; accuracy of zero images is undefined.")
    return float((predict(classifier, images, batch_size) == labels.cpu()).double().mean())
