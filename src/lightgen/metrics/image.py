r"""Per-image quality scores: PSNR, SSIM, PBMP, and classifier accuracy.

Images are real tensors ``(B, C, H, W)`` (or ``(C, H, W)`` / ``(H, W)``, treated as one
image) with intensities on a scale whose full range is ``data_range`` (1.0 for
lightgen's ``[0, 1]`` images).

* PSNR (dB): :math:`10\log_{10}(R^2/\mathrm{MSE})` per image, then averaged over the batch
  (the convention of per-image tables; the PSNR of the pooled MSE is not the same).
* SSIM: Wang et al. 2004, IEEE TIP 13:600, 11 x 11 Gaussian window sigma 1.5,
  ``K1 = 0.01``, ``K2 = 0.03`` (torchmetrics' implementation).
* PBMP, percentage of bad matching pixels (Scharstein & Szeliski 2002, IJCV 47:7, used
  by Chen et al. 2025 with delta = 35 of 255): :math:`100\cdot\#\{|p-t|>\delta\}/\#pixels`.
"""

from __future__ import annotations

import torch
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


_SSIM_CHUNK = 4


def ssim(
    pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004); 1 for identical images.

    Images must be at least 11 x 11 (the Gaussian window). Needs torchmetrics
    (``pip install lightgen[metrics]``).
    """
    data_range = require_positive("data_range", data_range, "Use 1.0 for [0, 1] images.")
    p, t = _pair(pred, target)
    if min(p.shape[-2:]) < 11:
        raise ValueError(
            f"ssim needs images of at least 11 x 11 pixels, got {tuple(p.shape[-2:])}. "
            "Upsample them or use psnr."
        )
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure
    except ImportError:
        raise ImportError(
            "ssim needs torchmetrics: pip install 'lightgen[metrics]' (or torchmetrics)."
        ) from None
    # a few images at a time: torchmetrics' intermediate tensors grow steeply with batch x size
    # (it asked for 85 GB on 67 x 3 x 512 x 512); per-image values do not depend on the batch
    per_image = torch.cat(
        [
            structural_similarity_index_measure(
                p[i : i + _SSIM_CHUNK],
                t[i : i + _SSIM_CHUNK],
                data_range=data_range,
                reduction="none",
            ).reshape(-1)
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
