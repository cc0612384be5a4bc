"""`lightgen report`: one self-contained HTML page per run folder.

The page has five sections (:data:`SECTIONS`): the chip's design (a to-scale side view of
its planes, neuron count, sampling checks), its training (curves from ``log.csv``), its
results (samples, reconstructions with PSNR, an interpolation, a per-class grid, any
``eval*.json``), the light inside it (intensity and phase at every plane for one input,
height maps, the fiber array's coupled power and phase, efficiencies) and the hardware
model (``lightgen perf`` for the design). Every image is an inline ``data:`` PNG and the
style sheet is inline: the file opens offline, on a phone or a laptop, and can be mailed.

A folder that is a run but lacks parts (no ``log.csv``, no checkpoint, no held-out data)
still gets a page: each section says what it could not show and why. A folder that is
not a run at all raises :class:`NotARunError`.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import torch

from lightgen.tasks.images import atomic_write, image_grid

SECTIONS = ("design", "training", "results", "inside", "hardware")
"""Section ids of the page, in order (each is an ``<section id=...>``)."""

SECTION_TITLES = {
    "design": "Design",
    "training": "Training",
    "results": "Results",
    "inside": "Inside the chip",
    "hardware": "Hardware model",
}


class NotARunError(ValueError):
    """The folder holds nothing a report could show (no config, log or checkpoint)."""


@dataclass
class RunFolder:
    """What a run folder holds; ``missing`` lists, in words, what it lacks."""

    path: Path
    config: object | None = None  # TrainConfig
    log: list[dict[str, float]] | None = None
    checkpoint: Path | None = None
    eval_files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class ReportResult:
    """Where the page went, what the run lacked, and the sections that failed (and why)."""

    path: Path
    missing: list[str]
    errors: dict[str, str]


def _has_run_files(p: Path) -> bool:
    return (
        (p / "config.json").is_file() or (p / "log.csv").is_file() or (p / "checkpoints").is_dir()
    )


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a trainer's ``log.csv`` (step, loss, recon, kl, mse, seconds) as floats."""
    with open(path, newline="") as f:
        rows = [
            {k: float(v) for k, v in r.items() if v not in (None, "")} for r in csv.DictReader(f)
        ]
    if not rows:
        raise ValueError(f"{path} holds a header but no logged steps.")
    return rows


def find_run(path: str | Path) -> RunFolder:
    """Inspect ``path`` (a ``lightgen train`` run folder, or a ``lightgen demo`` output
    folder whose ``run/`` is one). Raises :class:`NotARunError` when it is neither."""
    from lightgen.train.checkpoint import load_checkpoint
    from lightgen.train.config import load_train_config

    p = Path(path)
    fix = (
        "Pass a run folder made by `lightgen train` (it holds config.json, log.csv and "
        "checkpoints/) or a `lightgen demo` output folder."
    )
    if not p.is_dir():
        raise NotARunError(f"{p} is not a folder. {fix}")
    if not _has_run_files(p) and _has_run_files(p / "run"):
        p = p / "run"
    if not _has_run_files(p):
        raise NotARunError(
            f"{p} is not a lightgen run: it holds none of config.json, log.csv, checkpoints/. {fix}"
        )
    run = RunFolder(p)
    try:
        _, _, run.checkpoint = load_checkpoint(p)
    except ValueError as e:
        run.missing.append(f"no usable checkpoint ({e})")
    sources = [p / "config.json"] + ([run.checkpoint / "state.json"] if run.checkpoint else [])
    for src in sources:
        if not src.is_file():
            continue
        try:
            data = json.loads(src.read_text())
            run.config = load_train_config(data.get("config", data))
            break
        except (ValueError, TypeError) as e:
            run.missing.append(f"{src.name} could not be read ({e})")
    if run.config is None:
        run.missing.append("no training config (config.json): the design cannot be drawn")
    if (p / "log.csv").is_file():
        try:
            run.log = read_log(p / "log.csv")
        except (ValueError, csv.Error) as e:
            run.missing.append(f"log.csv could not be read ({e})")
    else:
        run.missing.append("no log.csv: no training curves")
    run.eval_files = sorted(q for q in p.glob("eval*.json") if q.is_file())
    return run


# --- inline images ----------------------------------------------------------------------


def figure_uri(fig, dpi: int = 110) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def array_uri(image: np.ndarray) -> str:
    """A uint8 ``(H, W)`` or ``(H, W, 3)`` image as a PNG ``data:`` URI."""
    png = iio.imwrite("<bytes>", image, extension=".png")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _upscale(size: int) -> int:
    return max(1, 64 // size)


def _grid_uri(images: torch.Tensor, ncol: int) -> str:
    return array_uri(image_grid(images.cpu(), ncol, upscale=_upscale(images.shape[-1])))


def _img(uri: str, alt: str, caption: str = "", pixelated: bool = False) -> str:
    cls = ' class="px"' if pixelated else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{html.escape(alt)}"{cls}>{cap}</figure>'


def _table(rows: list[tuple], header: tuple | None = None) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return _num(v)
        return html.escape(str(v))

    head = (
        "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
        if header
        else ""
    )
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="tbl"><table>{head}{body}</table></div>'


def _num(x: float) -> str:
    from lightgen.hardware.report import fmt

    return "nan" if isinstance(x, float) and math.isnan(x) else fmt(x, 4)


def _note(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


# --- design -----------------------------------------------------------------------------


def plane_positions_m(chip_cfg) -> list[tuple[str, float]]:
    """``(plane name, z in metres)`` along the light path; the generator's z restarts at
    the fiber output facets (the fibers carry the light, their length is not modelled)."""
    gap = chip_cfg.layer_spacing_m
    enc = [("SLM", 0.0)]
    z = chip_cfg.input_to_encoder_m
    for i in range(chip_cfg.encoder_layers):
        enc.append((f"encoder layer {i + 1}", z))
        z += gap if i < chip_cfg.encoder_layers - 1 else 0
    enc.append(("fiber input facets", z + chip_cfg.encoder_to_fiber_m))
    gen = [("fiber output facets", 0.0)]
    z = chip_cfg.fiber_to_generator_m
    for i in range(chip_cfg.generator_layers):
        gen.append((f"generator layer {i + 1}", z))
        z += gap if i < chip_cfg.generator_layers - 1 else 0
    gen.append(("camera", z + chip_cfg.generator_to_camera_m))
    return enc + gen


def chip_drawing(chip_cfg):
    """Side view of the planes, z and aperture both in mm: the encoder's path (SLM to fiber
    input facets) and the generator's (fiber output facets to camera), each to scale."""
    planes = plane_positions_m(chip_cfg)
    n_enc = chip_cfg.encoder_layers + 2
    width_mm = chip_cfg.grid_samples * chip_cfg.pixel_pitch_m * 1e3
    slm_mm = chip_cfg.image_size * chip_cfg.slm_pixel_samples * chip_cfg.pixel_pitch_m * 1e3
    cam_mm = chip_cfg.image_size * chip_cfg.camera_pixel_samples * chip_cfg.pixel_pitch_m * 1e3
    side = math.ceil(math.sqrt(chip_cfg.n_fibers))
    fib_mm = (side - 1) * chip_cfg.fiber_pitch_m * 1e3
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.2))
    for ax, part, title in (
        (axes[0], planes[:n_enc], "encoder: SLM → metasurfaces → fiber array (OLS)"),
        (axes[1], planes[n_enc:], "generator: fiber array → metasurfaces → camera"),
    ):
        zs = [z * 1e3 for _, z in part]
        for name, z in zip([n for n, _ in part], zs, strict=True):
            if name == "SLM":
                h, color = slm_mm, "tab:orange"
            elif name == "camera":
                h, color = cam_mm, "tab:green"
            elif name.startswith("fiber"):
                h, color = fib_mm, "tab:red"
            else:
                h, color = width_mm, "tab:blue"
            ax.plot([z, z], [-h / 2, h / 2], color=color, lw=3, solid_capstyle="butt")
            ax.annotate(
                name,
                (z, h / 2),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                rotation=20,
            )
        for z0, z1 in itertools.pairwise(zs):
            ax.annotate(
                "",
                (z1, -width_mm * 0.62),
                (z0, -width_mm * 0.62),
                arrowprops=dict(arrowstyle="<->", lw=0.8),
            )
            ax.text(
                (z0 + z1) / 2, -width_mm * 0.7, f"{z1 - z0:g} mm", ha="center", va="top", fontsize=8
            )
        ax.set_ylim(-width_mm * 0.95, width_mm * 0.95)
        ax.set_xlim(zs[0] - 0.05 * zs[-1] - 0.1, zs[-1] * 1.05 + 0.1)
        ax.set_ylabel("aperture (mm)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].set_xlabel("z along the light (mm); both axes in mm, aspect not equal")
    fig.tight_layout()
    return fig


def sampling_checks(chip_cfg) -> list[tuple]:
    """One row per free-space hop length and per fiber array: what the propagation planner
    and the fiber sampling rule found (distance, FFT size, kept band, reach of one neuron)."""
    from lightgen.optics.fibers import MIN_WAIST_PIXELS
    from lightgen.optics.grid import Grid
    from lightgen.optics.propagation import plan_propagation, spread_samples

    grid = Grid((chip_cfg.grid_samples,) * 2, chip_cfg.pixel_pitch_m, chip_cfg.wavelengths_m)
    n = chip_cfg.grid_samples
    hops = {
        "SLM → encoder": chip_cfg.input_to_encoder_m,
        "between layers": chip_cfg.layer_spacing_m,
        "encoder → fibers": chip_cfg.encoder_to_fiber_m,
        "fibers → generator": chip_cfg.fiber_to_generator_m,
        "generator → camera": chip_cfg.generator_to_camera_m,
    }
    rows = []
    for name, d in hops.items():
        reach = spread_samples(grid, d)
        conn = min(1.0, (2 * reach + 1) / n)
        try:
            plan = plan_propagation(
                grid,
                d,
                padding=chip_cfg.propagation_padding,
                tail_tolerance=chip_cfg.propagation_tail_tolerance,
            )
            kept = min(plan.bandwidth_fraction)
            verdict = "ok"
            fft = f"{plan.padded_shape[0]}×{plan.padded_shape[1]}" + (
                " (exact)" if plan.linear else ""
            )
        except ValueError as e:
            kept, verdict, fft = float("nan"), f"fails: {e}", "-"
        rows.append((name, f"{d * 1e3:g} mm", fft, f"{kept:.0%}", f"{conn:.0%}", verdict))
    waist_px = chip_cfg.fiber_mode_field_diameter_m / 2 / chip_cfg.pixel_pitch_m
    rows.append(
        (
            "fiber mode",
            f"MFD {chip_cfg.fiber_mode_field_diameter_m * 1e6:g} µm",
            "-",
            "-",
            f"waist {waist_px:.2f} px",
            "ok" if waist_px >= MIN_WAIST_PIXELS else f"fails: waist < {MIN_WAIST_PIXELS} px",
        )
    )
    return rows


def design_section(run: RunFolder) -> str:
    cfg = run.config
    if cfg is None:
        return _note("No training config: the design cannot be shown.")
    c = cfg.chip_config()
    neurons = c.neurons()
    max_angle = math.degrees(math.asin(min(1.0, max(c.wavelengths_m) / (2 * c.pixel_pitch_m))))
    rows = [
        ("preset", cfg.preset),
        ("model", cfg.model),
        ("data set", cfg.dataset),
        ("wavelengths", ", ".join(f"{w * 1e9:g} nm" for w in c.wavelengths_m)),
        (
            "planes",
            f"{c.grid_samples}×{c.grid_samples} samples at {c.pixel_pitch_m * 1e6:g} µm "
            f"({c.grid_samples * c.pixel_pitch_m * 1e3:.3g} mm aperture)",
        ),
        ("image", f"{c.image_size}×{c.image_size}×{c.image_channels}"),
        ("SLM pixel pitch", f"{c.slm_pixel_samples * c.pixel_pitch_m * 1e6:g} µm"),
        ("camera pixel pitch", f"{c.camera_pixel_samples * c.pixel_pitch_m * 1e6:g} µm"),
        (
            "layers",
            f"{c.encoder_layers} encoder + {c.generator_layers} generator × {c.n_generators}",
        ),
        (
            "fiber array (OLS)",
            f"{c.n_fibers} single-mode fibers, {c.fiber_layout} at {c.fiber_pitch_m * 1e6:g} µm, "
            f"MFD {c.fiber_mode_field_diameter_m * 1e6:g} µm ({c.latent_dim} complex values)",
        ),
        ("material", c.material),
        (
            "diffractive neurons",
            f"{neurons['total']:,} (encoder {neurons['encoder']:,}, generators {neurons['generators']:,})",
        ),
        ("largest diffraction angle", f"{max_angle:.1f}° (asin(λ / 2 pitch))"),
    ]
    return (
        _table(rows)
        + _img(
            figure_uri(chip_drawing(c)), "side view of the chip's planes", "Planes to scale (mm)."
        )
        + "<h3>Sampling and connectivity</h3>"
        + "<p>Per free-space hop: the FFT size the propagation planner chose, the fraction of the "
        "grid's Nyquist band it keeps, and how much of the next plane one neuron's diffraction "
        "cone reaches (connectivity).</p>"
        + _table(sampling_checks(c), ("hop", "distance", "FFT", "band kept", "reach", "check"))
    )


# --- training ---------------------------------------------------------------------------


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
        parts.append(_note("No training log (log.csv) in this run: no curves, time or steps."))
    else:
        last = run.log[-1]
        parts.append(
            _table(
                [
                    ("steps", int(last["step"])),
                    ("training time", f"{last.get('seconds', float('nan')):.1f} s"),
                    ("final loss", last["loss"]),
                    ("final KL", last.get("kl", float("nan"))),
                    ("final camera MSE", last.get("mse", float("nan"))),
                ]
            )
        )
        parts.append(_img(figure_uri(training_figure(run.log)), "training curves", "From log.csv."))
    if run.config is not None:
        cfg = run.config.model_dump()
        rows = [(k, json.dumps(v)) for k, v in cfg.items()]
        parts.append("<details><summary>Training config</summary>" + _table(rows) + "</details>")
    if run.checkpoint is not None:
        parts.append(f"<p>Checkpoint: <code>{html.escape(run.checkpoint.name)}</code></p>")
    return "".join(parts)


# --- results ----------------------------------------------------------------------------


def held_out(cfg, n: int = 16):
    """The first ``n`` held-out images (and labels) of the run's data set at the chip's size."""
    from lightgen.data.registry import load_dataset

    c = cfg.chip_config()
    return load_dataset(
        cfg.dataset,
        root=cfg.data_root,
        split="test",
        size=c.image_size,
        limit=n,
        seed=cfg.seed,
        channels=c.image_channels,
    )


def reconstruction_figure(x: torch.Tensor, rec: torch.Tensor, psnr_db: torch.Tensor):
    """Inputs (top row) over their camera images, each titled with its PSNR."""
    n = x.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8), squeeze=False)
    for i in range(n):
        for row, img in ((0, x[i]), (1, rec[i])):
            a = img.permute(1, 2, 0).cpu().clamp(0, 1).numpy()
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
    grid = image_grid(tiles, rows[0].shape[0], upscale=_upscale(tiles.shape[-1]))
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


def per_class_rows(system, cfg, per_class: int = 8, n_train: int = 512):
    """Generated images per class ``([(per_class, C, S, S)], names)``, or None without
    labels or class control. Mixture priors: each class's component by the encoder's
    Hungarian match (:func:`lightgen.tasks.evaluate.match_classes_to_components`);
    class-conditional models: the class's code in the condition fibers."""
    from lightgen.data.registry import load_dataset
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
    k = getattr(system.prior, "n_components", 1)
    if k < 2 and not conditional:
        return None
    c = cfg.chip_config()
    train = load_dataset(
        cfg.dataset,
        root=cfg.data_root,
        split="train",
        size=c.image_size,
        limit=n_train,
        seed=cfg.seed,
        channels=c.image_channels,
    )
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
            parts.append(_note(f"{f.name} could not be read: {e}"))
            continue
        if not isinstance(data, dict):
            continue
        rows = [
            (k, v)
            for k, v in data.items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        ]
        parts.append(f"<h3>{html.escape(f.name)}</h3>" + _table(rows, ("metric", "value")))
        grid = f.with_name(f.stem + "-per-class.png")
        if grid.is_file():
            parts.append(
                _img(array_uri(iio.imread(grid)), f"per-class samples of {f.name}", f"{grid.name}")
            )
    return "".join(parts)


@dataclass
class Loaded:
    """The trained model and one batch of held-out inputs (``None`` where missing)."""

    system: object | None = None
    cfg: object | None = None
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)


def load_for_report(run: RunFolder) -> Loaded:
    from lightgen.train.trainer import load_trained

    out = Loaded(cfg=run.config)
    if run.checkpoint is None:
        out.notes.append("No checkpoint in this run: no samples, reconstructions or fields.")
        return out
    try:
        out.system, out.cfg = load_trained(run.checkpoint)
    except ValueError as e:
        out.notes.append(f"The checkpoint could not be loaded: {e}")
        return out
    try:
        ds = held_out(out.cfg)
        out.images, out.labels = ds.images, ds.labels
    except (ValueError, FileNotFoundError) as e:
        out.notes.append(
            f"Held-out images of {out.cfg.dataset!r} not found ({e}); reconstructions and the "
            "interpolation are left out, the inside view uses a generated image."
        )
    return out


def _conditions(loaded: Loaded, n: int):
    from lightgen.tasks.evaluate import class_codes, is_class_conditioned

    system, cfg = loaded.system, loaded.cfg
    if is_class_conditioned(system, cfg) and loaded.labels is not None:
        return class_codes(system, cfg, loaded.labels[:n])
    if getattr(system, "n_conditions", 0):
        raise ValueError(
            f"this model injects {system.n_conditions} condition value(s) the report cannot "
            "supply (it is not class-conditional); use the task that trained it."
        )
    return None


def results_section(run: RunFolder, loaded: Loaded) -> str:
    from lightgen.metrics.image import psnr
    from lightgen.tasks.generate import interpolate, reconstruct, sample

    parts = [_note(n) for n in loaded.notes]
    system, cfg = loaded.system, loaded.cfg
    if system is not None:
        from lightgen.tasks.evaluate import class_codes, is_class_conditioned

        codes = None
        if is_class_conditioned(system, cfg):
            n_cls = system.n_conditions
            codes = class_codes(system, cfg, torch.arange(32) % n_cls)
        imgs, _ = sample(system, 32, seed=cfg.seed, conditions=codes)
        parts.append("<h3>Samples</h3>")
        parts.append(
            _img(
                _grid_uri(imgs, 8),
                "generated samples",
                "32 draws of P(Z) driving the fibers.",
                True,
            )
        )
        if loaded.images is not None:
            x = loaded.images[:8]
            rec = reconstruct(system, x, conditions=_conditions(loaded, 8)).cpu()
            rec = rec.mean(1, keepdim=True) if rec.shape[1] != x.shape[1] else rec
            db = psnr(rec, x, reduction="none")
            parts.append("<h3>Reconstructions</h3>")
            parts.append(
                _img(
                    figure_uri(reconstruction_figure(x, rec, db)),
                    "held-out inputs and their camera images",
                    f"Held-out inputs (top) and camera images (bottom); mean PSNR {db.mean():.2f} dB.",
                )
            )
            if _conditions(loaded, 2) is None:
                strip = interpolate(system, x[0], x[1], 10).cpu()
                parts.append("<h3>Interpolation</h3>")
                parts.append(
                    _img(
                        _grid_uri(strip, 10),
                        "interpolation strip",
                        "A straight walk in the OLS between two encoded inputs.",
                        True,
                    )
                )
        grid = (
            per_class_rows(system, cfg)
            if not any(f.with_name(f.stem + "-per-class.png").is_file() for f in run.eval_files)
            else None
        )
        if grid is not None:
            parts.append("<h3>Per class</h3>")
            parts.append(
                _img(
                    figure_uri(class_grid_figure(*grid)),
                    "samples per class",
                    "Generated images, one row per class.",
                )
            )
    evals = _eval_tables(run)
    parts.append(
        "<h3>Evaluations</h3>" + evals
        if evals
        else _note(
            "No eval*.json in this run: run `lightgen eval --checkpoint RUN` for FID/KID/precision/recall."
        )
    )
    return "".join(parts)


# --- inside the chip --------------------------------------------------------------------


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
        return "".join(_note(n) for n in loaded.notes) or _note("No trained model.")
    chip = getattr(system.model, "chip", None)
    if chip is None or not hasattr(chip, "plane_fields"):
        return _note(f"The {cfg.model!r} model has no optical chip: nothing to show inside.")
    if loaded.images is not None:
        x, what = loaded.images[:4], "a held-out image"
    else:
        x, what = sample(system, 4, seed=cfg.seed)[0].cpu(), "a generated image (no held-out data)"
    dev = next(system.parameters()).device
    x = x.to(dev)
    conditions = _conditions(loaded, 4) if loaded.images is not None else None
    z = system.model.posterior(x[:1])[0]
    z = system.with_conditions(z, None if conditions is None else conditions[:1])
    planes = chip.plane_fields(x[:1], z=z)
    z_m = dict(plane_positions_m(chip.config))
    parts = [
        f"<p>Input: {what}. The camera row is the field before the camera's pixel "
        "integration and calibration.</p>",
        _img(
            figure_uri(planes_figure(planes, z_m)),
            "intensity and phase at every plane",
            "Intensity and phase at every plane (first wavelength).",
        ),
        "<h3>Metasurface height maps</h3>",
        _img(figure_uri(height_maps_figure(system)), "height maps"),
        "<h3>Fiber array: coupled power and phase (the OLS)</h3>",
        _img(figure_uri(ols_figure(system, x.cpu())), "coupled power and phase per fiber"),
    ]
    eff = optical_efficiencies(system, x, conditions)
    if eff:
        parts.append(
            _table(
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


# --- hardware ---------------------------------------------------------------------------


def hardware_section(run: RunFolder) -> str:
    from lightgen.chip.design import chip_design
    from lightgen.hardware import perf_text
    from lightgen.hardware.perf import PerfAssumptions, performance

    if run.config is None:
        return _note("No training config: no design to model.")
    design = chip_design(run.config.chip_config())
    r = performance(design, PerfAssumptions())
    rows = [
        ("throughput", f"{_num(r.tops())} TOPS", f"counting: {r.counting}"),
        ("efficiency", f"{_num(r.tops_per_w())} TOPS/W", "wall plug"),
        ("energy per image", f"{_num(r.energy_per_frame_j)} J", ""),
        ("frame rate", f"{_num(r.frame_rate_hz)} frames/s", f"limited by {r.rate_limited_by}"),
        ("power", f"{_num(r.total_power_w)} W", ""),
        ("latency", f"{_num(r.latency_s * 1e9)} ns", "time of flight"),
    ]
    assumptions = [
        (a.name, a.value if isinstance(a.value, str) else _num(a.value), a.unit, a.source, a.note)
        for a in r.assumptions
    ]
    text = perf_text(run.config.preset, design=design)
    return (
        "<p>A model, not a measurement: <code>lightgen perf</code> for this design with its "
        "default assumptions (each labelled with its source).</p>"
        + _table(rows, ("figure", "value", "note"))
        + "<h3>Assumptions</h3>"
        + _table(assumptions, ("quantity", "value", "unit", "source", "note"))
        + f"<details><summary>Full <code>lightgen perf</code> output</summary><pre>{html.escape(text)}</pre></details>"
    )


# --- page -------------------------------------------------------------------------------

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;--warn:#9a6700;--warnbg:#fff8c5}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main{max-width:1100px;margin:0 auto;padding:0 1rem}
header{padding-top:1rem}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:.4rem 1rem;z-index:1;overflow-x:auto;white-space:nowrap}
nav a{margin-right:1rem;color:#0969da;text-decoration:none}
h1{font-size:1.5rem;margin:.3rem 0}
h2{font-size:1.25rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
figure{margin:.8rem 0}
img{max-width:100%;height:auto;display:block}
img.px{image-rendering:pixelated}
figcaption{color:var(--muted);font-size:.9rem}
.tbl{overflow-x:auto}
table{border-collapse:collapse;font-size:.92rem;margin:.5rem 0}
td,th{border:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
pre{overflow-x:auto;font-size:.8rem;background:#f6f8fa;padding:.6rem}
.missing{background:var(--warnbg);color:var(--warn);padding:.4rem .6rem;border-radius:4px}
@media (max-width:600px){body{font-size:15px}td,th{padding:.2rem .3rem}}
"""


def render_page(title: str, summary: str, sections: dict[str, str]) -> str:
    nav = "".join(f'<a href="#{s}">{SECTION_TITLES[s]}</a>' for s in sections)
    body = "".join(
        f'<section id="{s}"><h2>{SECTION_TITLES[s]}</h2>{content}</section>'
        for s, content in sections.items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>{summary}</header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> ReportResult:
    """Write the HTML page of ``run_dir`` to ``out`` (default ``run_dir/report.html``).

    Raises :class:`NotARunError` for a folder that is not a run; anything else missing
    (log, checkpoint, held-out data) is said on the page and listed in the result, and a
    section that fails shows its error instead of the page failing.
    """
    run = find_run(run_dir)
    out = Path(out) if out is not None else run.path / "report.html"
    loaded = load_for_report(run)
    builders = {
        "design": lambda: design_section(run),
        "training": lambda: training_section(run),
        "results": lambda: results_section(run, loaded),
        "inside": lambda: inside_section(loaded),
        "hardware": lambda: hardware_section(run),
    }
    sections, errors = {}, {}
    for name, build in builders.items():
        try:
            sections[name] = build()
        except Exception as e:  # one broken part must not lose the page
            plt.close("all")
            errors[name] = f"{type(e).__name__}: {e}"
            sections[name] = _note(f"This section could not be made: {errors[name]}")
    cfg = run.config
    title = f"lightgen run: {run.path.name}" + (
        f" ({cfg.preset} chip on {cfg.dataset})" if cfg is not None else ""
    )
    missing = run.missing + [n for n in loaded.notes if run.checkpoint is not None]
    summary = (
        "<p>What this run lacks:</p><ul>"
        + "".join(f'<li class="missing">{html.escape(m)}</li>' for m in missing)
        + "</ul>"
        if missing
        else ""
    )
    page = render_page(title, summary, sections)
    atomic_write(out, lambda p: p.write_text(page, encoding="utf-8"))
    return ReportResult(out, missing, errors)
