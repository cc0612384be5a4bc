"""Figures of a trained chip: the optical latent space and the height maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from lightgen.tasks.generate import encode
from lightgen.tasks.images import save_figure

if TYPE_CHECKING:
    from lightgen.train.system import BOGTSystem


def plot_ols(system: BOGTSystem, images: torch.Tensor, path: Path) -> Path:
    """:func:`ols_figure` written to ``path``."""
    return save_figure(path, ols_figure(system, images))


def ols_figure(system: BOGTSystem, images: torch.Tensor):
    """Per-fiber |z|^2 (marker size/colour) and phase for each input, on the fiber layout."""
    chip = system.model.optical_chip
    z = encode(system, images).cpu()
    n = images.shape[0]
    fig, axes = plt.subplots(2, n + 1, figsize=(3 * (n + 1), 6))
    for i in range(n):
        axes[0, i].imshow(images[i].permute(1, 2, 0).squeeze(-1).cpu(), cmap="gray", vmin=0, vmax=1)
        axes[0, i].set_axis_off()
        axes[0, i].set_title(f"input {i}")
        if chip is not None:
            pos = chip.fibers.positions_m.cpu() * 1e6
            m = pos.shape[0]
            zi = z[i, :m]
            sc = axes[1, i].scatter(
                pos[:, 1],
                pos[:, 0],
                c=zi.angle(),
                s=10 + 200 * zi.abs().square() / zi.abs().square().max(),
                cmap="twilight",
                vmin=-3.1416,
                vmax=3.1416,
            )
            axes[1, i].set_aspect("equal")
            axes[1, i].set_xlabel("x (µm)")
            axes[1, i].set_title("size: |z|², colour: phase")
        else:
            axes[1, i].bar(range(z.shape[1]), z[i].abs())
    if chip is not None:
        fig.colorbar(sc, ax=axes[1, n - 1], label="phase (rad)")
    axes[0, n].hist(z.abs().square().flatten().numpy(), bins=30)
    axes[0, n].set_title("|z|² over all fibers")
    axes[1, n].scatter(z.real.flatten(), z.imag.flatten(), s=4)
    axes[1, n].set_title("latent values (complex plane)")
    axes[1, n].set_aspect("equal")
    return fig


def plot_height_maps(system: BOGTSystem, path: Path) -> Path:
    """:func:`height_maps_figure` written to ``path`` (an empty figure without a chip)."""
    return save_figure(path, height_maps_figure(system))


def height_maps_figure(system: BOGTSystem):
    """One panel per trained metasurface layer: its height map in µm."""
    chip = system.model.optical_chip
    if chip is None:
        return plt.figure()
    maps = chip.height_maps_m()
    rows = [(part, i, h) for part, hs in maps.items() for i, h in enumerate(hs)]
    fig, axes = plt.subplots(1, len(rows), figsize=(3 * len(rows), 3), squeeze=False)
    for ax, (part, i, h) in zip(axes[0], rows, strict=True):
        im = ax.imshow(h.cpu() * 1e6, cmap="viridis")
        ax.set_title(f"{part} layer {i + 1}")
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046, label="height (µm)")
    return fig
