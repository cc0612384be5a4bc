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

The blur-matched control still compares blurred images with *sharp* training images. The
stricter test, :func:`rendered_copying_control`, compares like with like in the model's own
output space: the training set is replaced by its renderings (each training image's
posterior mean through the generator), and held-out images by theirs. A sampler that emits
the renderings of training latents (a memorising density: one narrow component per training
image) lies at distance ~0 from that set; a sampler that draws *new* latents the way new data
falls lies as far as the held-out renderings do (ratio ~1).
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


def _against(
    generated: torch.Tensor, reference: torch.Tensor, train: torch.Tensor, key: str, ref: str
) -> dict:
    """Medians of the nearest-``train`` distances of ``generated`` and of ``reference``,
    their ratio and the fraction of ``generated`` below ``reference``'s 5th percentile."""
    d_gen = nearest_train_distances(generated, train)
    d_ref = nearest_train_distances(reference, train)
    med_gen, med_ref = float(d_gen.median()), float(d_ref.median())
    p5 = float(torch.quantile(d_ref, 0.05))
    return {
        f"{key}_median_generated": med_gen,
        f"{key}_median_held_out": med_ref,
        f"{key}_ratio": med_gen / med_ref if med_ref > 0 else float("nan"),
        f"generated_nearer_than_{ref}_p5": float((d_gen < p5).float().mean()),
    }


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
    out = _against(generated, held_out, train_images, "nearest_train_l2", "held_out")
    med_gen = out["nearest_train_l2_median_generated"]
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
        **out,
        **extra,
        "nearest_train_rule": (
            "pixel L2 (images in [0, 1]) to the nearest of the "
            f"{train_images.shape[0]} training images; target: median of generated >= median "
            "of held-out real images (ratio >= 1)"
        ),
    }


def rendered_copying_control(
    generated: torch.Tensor, rendered_held_out: torch.Tensor, rendered_train: torch.Tensor
) -> dict:
    """The copying control in the model's output space (blur on both sides).

    ``rendered_train``: the model's renderings of (a subset of) the training images;
    ``rendered_held_out``: of the held-out images; ``generated``: the samples. Target: the
    samples' median distance to the nearest rendered training image >= the held-out
    renderings' (ratio >= 1). Also the fraction of samples nearer than the held-out
    renderings' 5th percentile (about 0.05 for new draws, 1 for copies)."""
    return {
        **_against(
            generated,
            rendered_held_out,
            rendered_train,
            "nearest_rendered_train_l2",
            "rendered_held_out",
        ),
        "nearest_rendered_train_rule": (
            "pixel L2 to the nearest of the model's renderings (posterior mean -> generator) "
            f"of {rendered_train.shape[0]} training images; held-out images rendered the same "
            "way; target: median of generated >= median of rendered held-out (ratio >= 1)"
        ),
    }
