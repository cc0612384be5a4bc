"""Writing image grids, figures and GIF/MP4 atomically (nothing half-written)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from lightgen._checks import require_choice
from lightgen._io import atomic_write, atomic_write_text  # noqa: F401 (public from here)


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


def save_png(path: Path, image: np.ndarray) -> Path:
    return atomic_write(path, lambda p: iio.imwrite(p, image, extension=".png"))


def save_figure(path: Path, fig) -> Path:
    import matplotlib.pyplot as plt

    out = atomic_write(
        path, lambda p: fig.savefig(p, dpi=120, bbox_inches="tight", format=Path(path).suffix[1:])
    )
    plt.close(fig)
    return out


IMAGE_FORMATS = ("grid", "folder", "npy")
"""How a task writes its images: ``grid`` (one PNG grid to look at, always written),
``folder`` (also every image as its own full-resolution PNG with a manifest) or ``npy``
(also all images as one array with a manifest)."""


def check_image_format(fmt: str) -> str:
    return require_choice(
        "format",
        fmt,
        IMAGE_FORMATS,
        "grid: a PNG grid; folder: one PNG per image + manifest; npy: one array + manifest",
    )


def write_image_set(
    out_dir: Path, stem: str, images: torch.Tensor, records: list[dict], fmt: str
) -> dict[str, str]:
    """Write ``images`` ``(N, C, H, W)`` in [0, 1] for other tools, one ``records[i]``
    (JSON-able: seed, component, sampler, role, ...) per image.

    ``folder``: ``out_dir/stem/000000.png`` ... at full resolution (8-bit grey or RGB, no
    upscaling) and ``out_dir/stem/manifest.csv`` + ``manifest.json`` (``file`` then the
    record of each image). ``npy``: ``out_dir/stem.npy``, float32 ``(N, C, H, W)`` in
    [0, 1] (PyTorch's layout; row i is image i), and ``out_dir/stem-manifest.json``
    (``row`` then the record of each image). ``grid``: nothing (the caller's grid is the
    output). Returns the paths written, by kind.
    """
    import csv
    import io
    import json

    check_image_format(fmt)
    if images.ndim != 4 or len(records) != images.shape[0]:
        raise ValueError(
            f"images {tuple(images.shape)} and {len(records)} records: need (N, C, H, W) "
            "images and one record per image."
        )
    out_dir = Path(out_dir)
    if fmt == "grid":
        return {}
    if fmt == "npy":
        arr = images.detach().float().clamp(0, 1).cpu().numpy()
        npy = atomic_write(out_dir / f"{stem}.npy", lambda p: np.save(p, arr, allow_pickle=False))
        rows = [{"row": i, **r} for i, r in enumerate(records)]
        doc = {"array": npy.name, "layout": "(N, C, H, W) float32 in [0, 1]", "images": rows}
        man = atomic_write(
            out_dir / f"{stem}-manifest.json", lambda p: p.write_text(json.dumps(doc, indent=1))
        )
        return {"npy": str(npy), "manifest": str(man)}
    folder = out_dir / stem
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
        old.unlink()  # a smaller set written over a larger one leaves no stale images
    arr = to_uint8(images)
    rows = []
    for i, rec in enumerate(records):
        name = f"{i:06d}.png"
        img = arr[i, ..., 0] if arr.shape[-1] == 1 else arr[i]
        save_png(folder / name, img)
        rows.append({"file": name, **rec})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys, lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in keys} for r in rows)
    csv_path = atomic_write(folder / "manifest.csv", lambda p: p.write_text(buf.getvalue()))
    json_path = atomic_write(
        folder / "manifest.json", lambda p: p.write_text(json.dumps({"images": rows}, indent=1))
    )
    return {"folder": str(folder), "manifest": str(csv_path), "manifest_json": str(json_path)}
