"""Writing image grids, figures and GIF/MP4 atomically (nothing half-written)."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` floats in [0, 1] (clipped) -> ``(N, H, W, C)`` uint8, C in {1, 3}."""
    x = images.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: torch.Tensor, ncol: int, pad: int = 1, upscale: int = 1) -> np.ndarray:
    """Tile ``(N, C, H, W)`` into one ``(rows*H, ncol*W, C)`` uint8 image (white gaps)."""
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    rows = -(-n // ncol)
    out = np.full((rows * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, ncol)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + q * (w + pad) : pad + q * (w + pad) + w,
        ] = arr[i]
    if upscale > 1:
        out = out.repeat(upscale, 0).repeat(upscale, 1)
    return out[..., 0] if c == 1 else out


def atomic_write(path: Path, write) -> Path:
    """Call ``write(tmp_path)`` then rename into ``path``; the temporary keeps the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_png(path: Path, image: np.ndarray) -> Path:
    return atomic_write(path, lambda p: iio.imwrite(p, image, extension=".png"))


def save_figure(path: Path, fig) -> Path:
    import matplotlib.pyplot as plt

    out = atomic_write(
        path, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight", format=Path(path).suffix[1:])
    )
    plt.close(fig)
    return out
