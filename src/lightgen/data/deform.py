"""Geometric deformations of image batches: handwriting-like warps of printed glyphs.

Pure, deterministic (seeded) torch functions on intensities ``(N, C, H, W)`` in
``[0, 1]``. They give the training set's own images a handwriting-like variety
(:func:`handwriting_like`), so that a chip trained on printed digits only can learn to
map a deformed digit back to its print (``TrainConfig.input_augment = "handwriting"``:
encoder input = deformed image, camera target = the image itself; no handwriting and no
handwriting/print pairs are used).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _smooth_noise(n: int, h: int, w: int, sigma_px: float, g: torch.Generator) -> torch.Tensor:
    """``(n, 2, h, w)`` uniform noise in [-1, 1] smoothed by a Gaussian of std ``sigma_px``."""
    noise = torch.rand(n, 2, h, w, generator=g) * 2 - 1
    r = max(1, int(3 * sigma_px))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1) / sigma_px) ** 2)
    k = (k / k.sum()).to(noise.dtype)
    noise = F.conv2d(
        F.pad(noise, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(2, 1, 1, 1), groups=2
    )
    return F.conv2d(
        F.pad(noise, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(2, 1, 1, 1), groups=2
    )


def _pixel_grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    ys = (torch.arange(h) + 0.5) * 2 / h - 1
    xs = (torch.arange(w) + 0.5) * 2 / w - 1
    return torch.meshgrid(ys, xs, indexing="ij")


def elastic_distort(
    images: torch.Tensor, alpha_px: float = 2.0, sigma_px: float = 3.0, seed: int = 0
) -> torch.Tensor:
    """Handwriting-like warp (Simard et al. 2003): displacement = ``alpha_px`` x Gaussian-
    smoothed (std ``sigma_px``) uniform noise, normalised to unit peak; bilinear resampling."""
    n, _, h, w = images.shape
    noise = _smooth_noise(n, h, w, sigma_px, torch.Generator().manual_seed(seed))
    disp = alpha_px * noise / noise.abs().amax((1, 2, 3), keepdim=True).clamp_min(1e-12)
    gy, gx = _pixel_grid(h, w)
    grid = torch.stack([gx + disp[:, 0] * 2 / w, gy + disp[:, 1] * 2 / h], -1)
    out = F.grid_sample(images, grid.to(images.dtype), align_corners=False, padding_mode="zeros")
    return out.clamp(0, 1)


def handwriting_like(
    images: torch.Tensor,
    seed: int = 0,
    rotation_deg: float = 12.0,
    shear: float = 0.3,
    scale: tuple[float, float] = (0.85, 1.05),
    alpha_px: float = 2.0,
    thin_probability: float = 0.7,
) -> torch.Tensor:
    """Each image with its own random slant and pose, an elastic warp, and thinner strokes.

    Per image (seeded): a rotation uniform in ±``rotation_deg``, a horizontal shear
    (slant) uniform in ±``shear``, an isotropic scale uniform in ``scale``, all about the
    image centre; then :func:`elastic_distort` of amplitude ``alpha_px``; then, with
    probability ``thin_probability``, a 3 x 3 grey erosion (minimum filter) that thins
    every stroke by about a pixel per side (printed bold glyphs are ~2x wider than pen
    strokes), rescaled to the image's peak level before the erosion. Shapes
    ``(N, C, H, W)`` in, same out, in [0, 1].
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}.")
    if not 0 <= thin_probability <= 1:
        raise ValueError(f"thin_probability={thin_probability} must lie in [0, 1].")
    n = images.shape[0]
    g = torch.Generator().manual_seed(seed)
    rot = (torch.rand(n, generator=g) * 2 - 1) * math.radians(rotation_deg)
    sh = (torch.rand(n, generator=g) * 2 - 1) * shear
    sc = scale[0] + torch.rand(n, generator=g) * (scale[1] - scale[0])
    thin = torch.rand(n, generator=g) < thin_probability
    # output pixel p samples input A p: A = (R S H)^-1, in normalised coordinates
    c, s = torch.cos(rot), torch.sin(rot)
    rs = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2) * sc[:, None, None]
    hm = torch.eye(2).repeat(n, 1, 1)
    hm[:, 0, 1] = sh
    theta = torch.cat([torch.linalg.inv(rs @ hm), torch.zeros(n, 2, 1)], -1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
    out = elastic_distort(out, alpha_px=alpha_px, seed=seed + 1)
    eroded = -F.max_pool2d(-out, 3, stride=1, padding=1)
    # a pen stroke saturates like the bold glyph did: thinned images keep their peak level
    peak = out.amax((1, 2, 3), keepdim=True)
    eroded = eroded * (peak / eroded.amax((1, 2, 3), keepdim=True).clamp_min(1e-6))
    return torch.where(thin[:, None, None, None].to(out.device), eroded, out).clamp(0, 1)
