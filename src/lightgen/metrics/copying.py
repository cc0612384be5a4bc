"""Copying control: how close generated images lie to the training images, in pixels.

A sampler can win FID by reproducing training images (an ex-post density with many narrow
components is one way). The control: for every generated image, the pixel L2 distance
``min_j ||x - t_j||_2`` to its nearest training image ``t_j``; the same for held-out real
images, which were never trained on and so show how near a *new* image from the data
distribution typically lies. Generated samples whose median distance falls below the
held-out images' are closer to the training set than new data is: copies, not samples.
Images are compared as given (``[0, 1]`` intensities), flattened over channels and pixels.

Blur lowers the distance too: a smooth "average" image lies nearer many training images
than a sharp new one. So the held-out images' *reconstructions* (encoder -> fibers ->
generator) are the blur-matched control: the model's own rendering of images it never saw.
Samples nearer the training set than those are closer than the model's blur explains.
"""

from __future__ import annotations

import torch


def _flat(name: str, images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] < 1:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a non-empty (N, C, H, W) image tensor, got {got}.")
    return images.detach().to("cpu", torch.float64).reshape(images.shape[0], -1)


def nearest_train_distances(
    images: torch.Tensor, train_images: torch.Tensor, chunk: int = 512
) -> torch.Tensor:
    """Pixel L2 distance ``(N,)`` from each of ``images`` to its nearest ``train_images``."""
    q, t = _flat("images", images), _flat("train_images", train_images)
    if q.shape[1] != t.shape[1]:
        raise ValueError(
            f"images have {q.shape[1]} values each but train_images {t.shape[1]}; "
            "compare images of the same size and channels."
        )
    return torch.cat(
        [torch.cdist(q[i : i + chunk], t).min(1).values for i in range(0, len(q), chunk)]
    )


def copying_control(
    generated: torch.Tensor,
    held_out: torch.Tensor,
    train_images: torch.Tensor,
    reconstructed_held_out: torch.Tensor | None = None,
) -> dict:
    """Median nearest-training-image distance of generated and of held-out real images,
    their ratio (target >= 1: samples no nearer the training set than new data) and the
    fraction of generated images nearer than the held-out images' 5th percentile; with
    ``reconstructed_held_out`` (the model's reconstructions of ``held_out``) also their
    median and the ratio of the samples' median to it (the blur-matched control)."""
    d_gen = nearest_train_distances(generated, train_images)
    d_real = nearest_train_distances(held_out, train_images)
    med_gen, med_real = float(d_gen.median()), float(d_real.median())
    p5 = float(torch.quantile(d_real, 0.05))
    extra = {}
    if reconstructed_held_out is not None:
        med_rec = float(nearest_train_distances(reconstructed_held_out, train_images).median())
        extra = {
            "nearest_train_l2_median_reconstructed_held_out": med_rec,
            "nearest_train_l2_ratio_to_reconstructed": med_gen / med_rec
            if med_rec > 0
            else float("nan"),
        }
    return {
        "nearest_train_l2_median_generated": med_gen,
        "nearest_train_l2_median_held_out": med_real,
        "nearest_train_l2_ratio": med_gen / med_real if med_real > 0 else float("nan"),
        "generated_nearer_than_held_out_p5": float((d_gen < p5).float().mean()),
        **extra,
        "nearest_train_rule": (
            "pixel L2 (images in [0, 1]) to the nearest of the "
            f"{train_images.shape[0]} training images; target: median of generated >= median "
            "of held-out real images (ratio >= 1)"
        ),
    }
