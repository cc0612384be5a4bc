"""Generation with a trained chip: sample P(Z), inject into the fibers, read the camera.

Also reconstructions (encode -> decode), latent interpolations, and plots of the
optical latent space. Everything here runs the trained model in eval mode without
gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem


@torch.no_grad()
def sample(
    system: BOGTSystem,
    n: int,
    seed: int = 0,
    component: int | None = None,
    conditions: torch.Tensor | None = None,
    temperature: float = 1.0,
    sampler=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` generated images ``(n, C, S, S)`` and their latents; ``component`` picks a mixture
    mode; ``conditions`` ``(n, k)`` drive a conditioned model's injected fibers;
    ``temperature`` scales the prior's standard deviation (1 = sample P(Z) itself).
    ``sampler``: where the fiber drive values are drawn from (default: the trained prior;
    e.g. an :class:`~lightgen.train.expost.ExPostSampler`)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(system.parameters()).device
    z = (system.prior if sampler is None else sampler).sample(
        n, generator=g, component=component, device=dev, temperature=temperature
    )
    z = system.with_conditions(z, conditions)
    return system.model.decode(z, system.routing(z)).clamp(0, 1), z


@torch.no_grad()
def reconstruct(
    system: BOGTSystem, images: torch.Tensor, conditions: torch.Tensor | None = None
) -> torch.Tensor:
    """Camera images for inputs ``images`` through the posterior mean (no injected noise)."""
    dev = next(system.parameters()).device
    mu, _ = system.model.posterior(images.to(dev))
    mu = system.with_conditions(mu, conditions)
    return system.model.decode(mu, system.routing(mu)).clamp(0, 1)


@torch.no_grad()
def reconstruct_batched(
    system: BOGTSystem, images: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """:func:`reconstruct` of any number of ``images`` in batches of ``batch_size``, on the
    CPU, with the inputs' channel count (a grey input of an RGB chip gives grey outputs)."""
    from lightgen.tasks.common import match_channels

    out = [
        reconstruct(system, images[i : i + batch_size]).cpu()
        for i in range(0, images.shape[0], batch_size)
    ]
    return match_channels(torch.cat(out), images.shape[1])


@torch.no_grad()
def encode(system: BOGTSystem, images: torch.Tensor) -> torch.Tensor:
    dev = next(system.parameters()).device
    return system.model.posterior(images.to(dev))[0]


@torch.no_grad()
def decode(system: BOGTSystem, z: torch.Tensor) -> torch.Tensor:
    z = system.with_reference(z)
    return system.model.decode(z, system.routing(z)).clamp(0, 1)


def slerp_path(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Straight-line path ``(steps, D)`` from ``z0`` to ``z1`` in the latent space."""
    t = torch.linspace(0, 1, steps, device=z0.device).view(-1, 1)
    return (1 - t) * z0[None] + t * z1[None]


@torch.no_grad()
def interpolate(
    system: BOGTSystem, image_a: torch.Tensor, image_b: torch.Tensor, steps: int = 8
) -> torch.Tensor:
    """Decode a straight path between the encodings of two images: ``(steps, C, S, S)``."""
    z = encode(system, torch.stack([image_a, image_b]))
    return decode(system, slerp_path(z[0], z[1], steps))


def write_samples(
    system: BOGTSystem,
    cfg: TrainConfig,
    out_dir,
    n: int,
    seed: int = 0,
    component: int | None = None,
    fmt: str = "grid",
    sampler=None,
    sampler_name: str | None = None,
) -> dict[str, str]:
    """``n`` samples written as ``out_dir/samples.png`` (a grid, always) and, with
    ``fmt`` ``folder`` or ``npy``, every image for other tools with a manifest of its
    seed, component and sampler (:func:`lightgen.tasks.images.write_image_set`).

    All ``n`` images come from one draw with ``seed``: image ``i`` is row ``i`` of that
    draw (its manifest says ``seed`` and ``index_in_draw``), so the set reproduces.
    ``sampler``/``sampler_name``: the fiber drive values' source (:func:`sample`) and its
    name for the manifest (default: the trained prior).
    """
    from pathlib import Path

    from lightgen.tasks.images import check_image_format, image_grid, save_png, write_image_set

    check_image_format(fmt)
    imgs, _ = sample(system, n, seed=seed, component=component, sampler=sampler)
    out_dir = Path(out_dir)
    files = {"grid": str(save_png(out_dir / "samples.png", image_grid(imgs, 8, upscale=2)))}
    source = (
        f"P(Z): {cfg.prior} prior, temperature 1, {cfg.model} model {cfg.preset!r}"
        if sampler_name in (None, "prior")
        else f"{sampler_name}: ex-post density of the encoded training set, {cfg.model} model "
        f"{cfg.preset!r}"
    )
    records = [
        {
            "seed": seed,
            "index_in_draw": i,
            "component": "any" if component is None else component,
            "sampler": source,
        }
        for i in range(n)
    ]
    files.update(write_image_set(out_dir, "samples", imgs, records, fmt))
    return files
