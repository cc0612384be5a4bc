r"""Denoising through the fiber bottleneck (Chen et al. 2025, Fig. 4).

The chip is trained with BOGT on *clean* digits only (never on clean/noisy pairs).
A noisy digit is encoded into the optical latent space (OLS) and decoded by the
generator; since the OLS has far fewer degrees of freedom than the image and the
generator was trained to produce clean digits, much of the noise does not survive:
``output = reconstruct(system, noisy)``, i.e. the posterior mean with no injected
noise, read by the camera with its trained gain/offset calibration (part of the chip;
nothing is re-fitted here).

Noise model: additive white Gaussian noise of relative amplitude :math:`\sigma`,

.. math:: \tilde x = \mathrm{clip}_{[0,1]}(x + \sigma\, F\, n), \qquad n \sim N(0, 1)\ \text{i.i.d.},

with full scale :math:`F = 1` (the images' [0, 1] range). One seeded draw of ``n`` is
shared by every level (common random numbers), so levels differ only by
:math:`\sigma`.

Scores per level, against the clean image: PBMP (percentage of pixels with
:math:`|p - t| > \delta`, :math:`\delta = 35/255`; Scharstein & Szeliski 2002) and
PSNR, for the noisy input (before) and the camera image (after), and the relative
PBMP reduction :math:`100\,(\mathrm{before} - \mathrm{after}) / \mathrm{before}` (%).
The paper reports up to 20.4 % relative PBMP reduction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightgen._checks import require_int_range, require_nonnegative
from lightgen.metrics.image import pbmp, psnr
from lightgen.tasks.common import check_images, expected_image_shape, write_json
from lightgen.tasks.generate import reconstruct_batched
from lightgen.tasks.images import check_image_format, image_grid, save_png, write_image_set

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

DEFAULT_SIGMAS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)
PBMP_THRESHOLD = 35 / 255
PAPER_BEST_RELATIVE_PBMP_REDUCTION_PCT = 20.4


def check_sigmas(sigmas: Sequence[float]) -> tuple[float, ...]:
    try:
        vals = tuple(float(s) for s in sigmas)
    except (TypeError, ValueError):
        raise ValueError(f"sigmas={sigmas!r} must be a list of numbers, e.g. 0.1,0.2.") from None
    if not vals:
        raise ValueError("sigmas is empty; give at least one noise level, e.g. (0.1, 0.2).")
    for i, s in enumerate(vals):
        _check_sigma(f"sigmas[{i}]", s)
    return vals


def _check_sigma(name: str, s: float) -> float:
    return require_nonnegative(
        name, s, "A noise level is a standard deviation relative to full scale, e.g. 0.1."
    )


def add_gaussian_noise(
    images: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    full_scale: float = 1.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """``clip(images + sigma * full_scale * n, 0, 1)`` with ``n ~ N(0, 1)`` per pixel.

    ``noise``: a given standard-normal draw (same shape as ``images``) instead of a new one.
    """
    sigma = _check_sigma("sigma", float(sigma))
    if noise is None:
        noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return (images + sigma * full_scale * noise.to(images.device)).clamp(0, 1)


def denoise_scores(
    clean: torch.Tensor,
    noisy: torch.Tensor,
    output: torch.Tensor,
    threshold: float = PBMP_THRESHOLD,
) -> dict[str, float | None]:
    """PBMP (%) and PSNR (dB) of ``noisy`` and ``output`` against ``clean`` (all ``(B, C, S, S)``).

    ``pbmp_relative_reduction_pct`` is ``None`` when the input has no bad pixels
    (nothing to reduce); PSNR is ``inf`` for identical images.
    """
    before = float(pbmp(noisy, clean, threshold))
    after = float(pbmp(output, clean, threshold))
    return {
        "pbmp_before_pct": before,
        "pbmp_after_pct": after,
        "pbmp_relative_reduction_pct": 100 * (before - after) / before if before > 0 else None,
        "psnr_before_db": float(psnr(noisy, clean)),
        "psnr_after_db": float(psnr(output, clean)),
    }


def load_digits(
    size: int,
    n: int,
    seed: int = 0,
    channels: int = 1,
    dataset: str | None = None,
    data_root: str | None = None,
) -> tuple[torch.Tensor, str]:
    """``n`` held-out digits ``(n, channels, size, size)`` and the data set's name.

    Default: the MNIST test split (t10k) when it can be found, else printed digits.
    """
    from lightgen.data.errors import MissingDataError
    from lightgen.data.registry import load_dataset

    names = [dataset] if dataset else ["mnist", "printed-digits"]
    for i, name in enumerate(names):
        try:
            ds = load_dataset(
                name, root=data_root, split="test", size=size, limit=n, seed=seed, channels=channels
            )
            return ds.images, ds.name
        except MissingDataError:
            if i == len(names) - 1:
                raise
    raise AssertionError("unreachable")


@torch.no_grad()
def denoise(
    system: BOGTSystem,
    clean: torch.Tensor,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    seed: int = 0,
    batch_size: int = 256,
) -> list[dict]:
    """Add noise at each level, pass it through the chip; one dict per level.

    Each dict holds ``sigma``, the scores of :func:`denoise_scores` and the tensors
    ``noisy`` / ``output`` ``(B, C, S, S)`` (CPU).
    """
    sigmas = check_sigmas(sigmas)
    clean = check_images(system, clean, "clean").cpu()
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    levels = []
    for s in sigmas:
        noisy = add_gaussian_noise(clean, s, noise=noise)
        out = reconstruct_batched(system, noisy, batch_size)
        levels.append(
            {"sigma": s, **denoise_scores(clean, noisy, out), "noisy": noisy, "output": out}
        )
    return levels


def run_denoise(
    system: BOGTSystem,
    cfg: TrainConfig,
    out_dir: str | Path,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    n: int = 256,
    seed: int = 0,
    dataset: str | None = None,
    data_root: str | None = None,
    n_show: int = 8,
    fmt: str = "grid",
) -> dict:
    """Denoise ``n`` held-out digits at each ``sigma``; write ``denoise.json`` and ``denoise.png``.

    The PNG has three rows per level (clean / noisy / camera output), ``n_show`` columns.
    ``fmt`` ``folder`` / ``npy`` also writes every clean, noisy and output image
    (:func:`lightgen.tasks.images.write_image_set`, stem ``denoise``; manifest: role,
    sigma, index, seed).
    The report also gives the PBMP/PSNR of the clean input's own reconstruction, the
    chip's reconstruction error without noise: the reference the outputs approach.
    """
    n = require_int_range("n", n, 1, fix="Use e.g. n=256 images.")
    sigmas = check_sigmas(sigmas)
    check_image_format(fmt)
    c, s, _ = expected_image_shape(system)
    clean, name = load_digits(s, n, seed, c, dataset, data_root or cfg.data_root)
    levels = denoise(system, clean, sigmas, seed)
    rec = reconstruct_batched(system, clean)
    show = slice(0, min(n_show, clean.shape[0]))
    ncol = show.stop
    rows = []
    for lv in levels:
        rows += [clean[show], lv["noisy"][show], lv["output"][show]]
    up = max(1, math.ceil(64 / s))
    png = save_png(Path(out_dir) / "denoise.png", image_grid(torch.cat(rows), ncol, upscale=up))
    sets = [("clean", 0.0, clean)]
    for lv in levels:
        sets += [("noisy", lv["sigma"], lv["noisy"]), ("output", lv["sigma"], lv["output"])]
    records = [
        {"role": role, "sigma": sigma, "index": i, "seed": seed}
        for role, sigma, imgs in sets
        for i in range(imgs.shape[0])
    ]
    images = torch.cat([imgs.cpu() for _, _, imgs in sets])
    files = write_image_set(Path(out_dir), "denoise", images, records, fmt)
    scored = [{k: v for k, v in lv.items() if k not in ("noisy", "output")} for lv in levels]
    reductions = [
        lv["pbmp_relative_reduction_pct"]
        for lv in scored
        if lv["pbmp_relative_reduction_pct"] is not None
    ]
    report = {
        "model": cfg.model,
        "preset": cfg.preset,
        "trained_on": cfg.dataset,
        "dataset": name,
        "n": int(clean.shape[0]),
        "seed": seed,
        "noise": "additive Gaussian, std = sigma x full scale (1.0), clipped to [0, 1]",
        "pbmp_threshold_255": 35,
        "levels": scored,
        "best_relative_pbmp_reduction_pct": max(reductions) if reductions else None,
        "paper_best_relative_pbmp_reduction_pct": PAPER_BEST_RELATIVE_PBMP_REDUCTION_PCT,
        "clean_input_pbmp_pct": float(pbmp(rec, clean)),
        "clean_input_psnr_db": float(psnr(rec, clean)),
        "files": {"grid": str(png), **files},
    }
    write_json(Path(out_dir) / "denoise.json", report)
    return report
