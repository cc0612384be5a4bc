"""The training, results and inside-the-chip sections."""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import torch

from lightgen.tasks.images import image_grid
from lightgen.tasks.report.design import plane_positions_m
from lightgen.tasks.report.page import array_uri, figure_uri, grid_uri, img, note, table, upscale
from lightgen.tasks.report.run import Loaded, RunFolder, conditions_for, run_split

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem


def training_figure(log: list[dict[str, float]]):
    """Loss (and its reconstruction term), KL and MSE against the step."""
    steps = [r["step"] for r in log]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    axes[0].plot(steps, [r["loss"] for r in log], label="loss")
    if all("recon" in r for r in log):
        axes[0].plot(steps, [r["recon"] for r in log], label="reconstruction term", ls="--")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [r.get("kl", float("nan")) for r in log], color="tab:purple")
    axes[2].plot(steps, [r.get("mse", float("nan")) for r in log], color="tab:green")
    for ax, title in zip(axes, ("loss (−ELBO)", "KL", "camera MSE"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def training_section(run: RunFolder) -> str:
    parts = []
    if run.log is None:
        parts.append(note("No training log (log.csv) in this run: no curves, time or steps."))
    else:
        last = run.log[-1]
        parts.append(
            table(
                [
                    ("steps", int(last["step"])),
                    ("training time", f"{last.get('seconds', float('nan')):.1f} s"),
                    ("final loss", last["loss"]),
                    ("final KL", last.get("kl", float("nan"))),
                    ("final camera MSE", last.get("mse", float("nan"))),
                ]
            )
        )
        parts.append(img(figure_uri(training_figure(run.log)), "training curves", "From log.csv."))
    if run.config is not None:
        cfg = run.config.model_dump()
        rows = [(k, json.dumps(v)) for k, v in cfg.items()]
        parts.append("<details><summary>Training config</summary>" + table(rows) + "</details>")
    if run.checkpoint is not None:
        parts.append(f"<p>Checkpoint: <code>{html.escape(run.checkpoint.name)}</code></p>")
    return "".join(parts)


def reconstruction_figure(x: torch.Tensor, rec: torch.Tensor, psnr_db: torch.Tensor):
    """Inputs (top row) over their camera images, each titled with its PSNR."""
    n = x.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8), squeeze=False)
    for i in range(n):
        for row, image in ((0, x[i]), (1, rec[i])):
            a = image.permute(1, 2, 0).cpu().clamp(0, 1).numpy()
            axes[row, i].imshow(
                a.squeeze(-1) if a.shape[-1] == 1 else a, cmap="gray", vmin=0, vmax=1
            )
            axes[row, i].set_axis_off()
        axes[1, i].set_title(f"{psnr_db[i]:.1f} dB", fontsize=8)
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def class_grid_figure(rows: list[torch.Tensor], names: list[str]):
    """One row of generated images per class, labelled with its name."""
    tiles = torch.cat(rows)
    grid = image_grid(tiles, rows[0].shape[0], upscale=upscale(tiles.shape[-1]))
    h, w = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(w / 100 + 1.4, h / 100 + 0.1), dpi=100)
    ax.imshow(
        grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest"
    )
    side = h / len(rows)
    ax.set_xticks([])
    ax.set_yticks([side * (i + 0.5) for i in range(len(rows))])
    ax.set_yticklabels(names)
    ax.tick_params(length=0)
    return fig


def per_class_rows(system: BOGTSystem, cfg: TrainConfig, per_class: int = 8, n_train: int = 512):
    """Generated images per class ``([(per_class, C, S, S)], names)``, or None without
    labels or class control. Mixture priors: each class's component by the encoder's
    Hungarian match (:func:`lightgen.tasks.evaluate.match_classes_to_components`);
    class-conditional models: the class's code in the condition fibers."""
    from lightgen.tasks.evaluate import (
        class_codes,
        class_component_counts,
        has_label_components,
        is_class_conditioned,
        match_classes_to_components,
        most_responsible_component,
    )
    from lightgen.tasks.generate import sample

    conditional = is_class_conditioned(system, cfg)
    k = system.prior.n_components
    if k < 2 and not conditional:
        return None
    train = run_split(cfg, "train", n_train)
    if train.labels is None or train.n_classes < 2:
        return None
    if conditional:
        mapping = list(range(train.n_classes))
    elif has_label_components(cfg):
        mapping = list(range(min(k, train.n_classes)))
    else:
        comps = most_responsible_component(system, train.images)
        counts = class_component_counts(comps, train.labels, train.n_classes, k)
        mapping = match_classes_to_components(counts)
    rows, names = [], []
    for cls, comp in enumerate(mapping):
        if comp is None and not conditional:
            continue
        codes = class_codes(system, cfg, torch.full((per_class,), cls)) if conditional else None
        imgs, _ = sample(
            system,
            per_class,
            seed=cfg.seed + 100 + cls,
            component=None if conditional else comp,
            conditions=codes,
        )
        rows.append(imgs.cpu())
        names.append(train.class_names[cls] + ("" if conditional else f" (k={comp})"))
    return rows, names


def _eval_tables(run: RunFolder) -> str:
    parts = []
    for f in run.eval_files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            parts.append(note(f"{f.name} could not be read: {e}"))
            continue
        if not isinstance(data, dict):
            continue
        rows = [
            (k, v)
            for k, v in data.items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        ]
        parts.append(f"<h3>{html.escape(f.name)}</h3>" + table(rows, ("metric", "value")))
        curve_png = f.with_suffix(".png")  # lightgen eval --input-power-w draws its curve
        if isinstance(data.get("curve"), list) and curve_png.is_file():
            parts.append(
                img(
                    array_uri(iio.imread(curve_png)),
                    f"image quality against optical energy per image, {f.name}",
                    curve_png.name,
                )
            )
        grid = f.with_name(f.stem + "-per-class.png")
        if grid.is_file():
            parts.append(
                img(array_uri(iio.imread(grid)), f"per-class samples of {f.name}", f"{grid.name}")
            )
    return "".join(parts)


def _samples(system: BOGTSystem, cfg: TrainConfig) -> str:
    from lightgen.tasks.evaluate import class_codes, is_class_conditioned
    from lightgen.tasks.generate import sample

    codes, what = None, "32 draws of P(Z) driving the fibers."
    if is_class_conditioned(system, cfg):
        codes = class_codes(system, cfg, torch.arange(32) % system.n_conditions)
        what = "32 draws of P(Z) driving the fibers, the class codes in turn."
    imgs, _ = sample(system, 32, seed=cfg.seed, conditions=codes)
    return img(grid_uri(imgs, 8), "generated samples", what, True)


def _reconstructions(system: BOGTSystem, loaded: Loaded) -> str:
    from lightgen.metrics.image import psnr
    from lightgen.tasks.generate import reconstruct

    x = loaded.images[:8]
    rec = reconstruct(system, x, conditions=conditions_for(loaded, 8)).cpu()
    rec = rec.mean(1, keepdim=True) if rec.shape[1] != x.shape[1] else rec
    db = psnr(rec, x, reduction="none")
    return img(
        figure_uri(reconstruction_figure(x, rec, db)),
        "held-out inputs and their camera images",
        f"Held-out inputs (top) and camera images (bottom); mean PSNR {db.mean():.2f} dB.",
    )


def _interpolation(system: BOGTSystem, loaded: Loaded) -> str:
    from lightgen.tasks.generate import interpolate

    if conditions_for(loaded, 2) is not None:
        return note("A class-conditional model: no interpolation between two encodings.")
    x = loaded.images
    strip = interpolate(system, x[0], x[1], 10).cpu()
    return img(
        grid_uri(strip, 10),
        "interpolation strip",
        "A straight walk in the OLS between two encoded inputs.",
        True,
    )


def _per_class(system: BOGTSystem, cfg: TrainConfig) -> str:
    grid = per_class_rows(system, cfg)
    if grid is None:
        return note("No labels or no class control (a Gaussian prior): no per-class grid.")
    return img(
        figure_uri(class_grid_figure(*grid)),
        "samples per class",
        "Generated images, one row per class.",
    )


def results_section(run: RunFolder, loaded: Loaded) -> str:
    parts = [note(n) for n in loaded.notes]
    system, cfg = loaded.system, loaded.cfg
    if system is not None:
        has_eval_grid = any(
            f.with_name(f.stem + "-per-class.png").is_file() for f in run.eval_files
        )
        subsections = [("Samples", lambda: _samples(system, cfg))]
        if loaded.images is not None:
            subsections += [
                ("Reconstructions", lambda: _reconstructions(system, loaded)),
                ("Interpolation", lambda: _interpolation(system, loaded)),
            ]
        if not has_eval_grid:  # else the eval's own per-class grid is shown below
            subsections.append(("Per class", lambda: _per_class(system, cfg)))
        for title, make in subsections:
            try:
                body = make()
            except (ValueError, FileNotFoundError) as e:  # e.g. no training split on disk
                plt.close("all")
                body = note(f"Not shown: {e}")
            parts.append(f"<h3>{title}</h3>{body}")
    evals = _eval_tables(run)
    parts.append(
        "<h3>Evaluations</h3>" + evals
        if evals
        else note(
            "No eval*.json in this run: run `lightgen eval --checkpoint RUN` for "
            "FID/KID/precision/recall."
        )
    )
    return "".join(parts)


def planes_figure(planes: list[tuple[str, torch.Tensor]], z_m: dict[str, float]):
    """Intensity (top) and phase (bottom, blank where the light is < 1 % of the plane's
    peak) of the first field and wavelength at every plane."""
    n = len(planes)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.2), squeeze=False)
    for i, (name, f) in enumerate(planes):
        e = f[0, 0].detach().cpu()
        inten = e.abs().square()
        phase = e.angle().numpy().copy()
        phase[(inten < 0.01 * inten.max()).numpy()] = np.nan
        axes[0, i].imshow(inten.numpy(), cmap="inferno")
        axes[1, i].imshow(phase, cmap="twilight", vmin=-math.pi, vmax=math.pi)
        z = z_m.get(name)
        axes[0, i].set_title(name + ("" if z is None else f"\nz = {z * 1e3:g} mm"), fontsize=7)
        for ax in axes[:, i]:
            ax.set_axis_off()
    axes[0, 0].text(
        -0.1, 0.5, "intensity", transform=axes[0, 0].transAxes, rotation=90, va="center", ha="right"
    )
    axes[1, 0].text(
        -0.1, 0.5, "phase", transform=axes[1, 0].transAxes, rotation=90, va="center", ha="right"
    )
    fig.tight_layout()
    return fig


def inside_section(loaded: Loaded) -> str:
    from lightgen.tasks.evaluate import optical_efficiencies
    from lightgen.tasks.figures import height_maps_figure, ols_figure
    from lightgen.tasks.generate import sample

    system, cfg = loaded.system, loaded.cfg
    if system is None:
        return "".join(note(n) for n in loaded.notes) or note("No trained model.")
    chip = system.model.optical_chip
    if chip is None:
        return note(
            f"This run trained the {cfg.model!r} model, not the all-optical chip: the light at "
            "every plane is drawn for model 'chip' only."
        )
    if loaded.images is not None:
        x, what = loaded.images[:4], "a held-out image"
    else:
        x, what = sample(system, 4, seed=cfg.seed)[0].cpu(), "a generated image (no held-out data)"
    dev = next(system.parameters()).device
    x = x.to(dev)
    conditions = conditions_for(loaded, 4) if loaded.images is not None else None
    z = system.model.posterior(x[:1])[0]
    z = system.with_conditions(z, None if conditions is None else conditions[:1])
    planes = chip.plane_fields(x[:1], z=z)
    z_m = dict(plane_positions_m(chip.config))
    parts = [
        f"<p>Input: {what}. The camera row is the field before the camera's pixel "
        "integration and calibration.</p>",
        img(
            figure_uri(planes_figure(planes, z_m)),
            "intensity and phase at every plane",
            "Intensity and phase at every plane (first wavelength).",
        ),
        "<h3>Metasurface height maps</h3>",
        img(figure_uri(height_maps_figure(system)), "height maps"),
        "<h3>Fiber array: coupled power and phase (the OLS)</h3>",
        img(figure_uri(ols_figure(system, x.cpu())), "coupled power and phase per fiber"),
    ]
    eff = optical_efficiencies(system, x, conditions)
    if eff:
        parts.append(
            table(
                [
                    (
                        "fiber coupling efficiency",
                        f"{eff['fiber_coupling_efficiency']:.2%}",
                        "input power coupled into the fibers' LP01 modes",
                    ),
                    (
                        "generator diffraction efficiency",
                        f"{eff['generator_diffraction_efficiency']:.2%}",
                        "injected power reaching the camera's pixels",
                    ),
                ],
                ("quantity", "value", "meaning"),
            )
        )
    return "".join(parts)
