"""The design and hardware sections: the planes drawn to scale, the sampling checks, the
performance model."""

from __future__ import annotations

import html
import itertools
import math
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from lightgen.tasks.report.page import figure_uri, img, note, num, table
from lightgen.tasks.report.run import RunFolder

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig


def plane_positions_m(chip_cfg) -> list[tuple[str, float]]:
    """``(plane name, z in metres)`` along the light path; the generator's z restarts at
    the fiber output facets (the fibers carry the light, their length is not modelled)."""
    c = chip_cfg
    enc = _stack_planes(
        ("SLM", "encoder layer", "fiber input facets"),
        c.encoder_layers,
        (c.input_to_encoder_m, c.layer_spacing_m, c.encoder_to_fiber_m),
    )
    gen = _stack_planes(
        ("fiber output facets", "generator layer", "camera"),
        c.generator_layers,
        (c.fiber_to_generator_m, c.layer_spacing_m, c.generator_to_camera_m),
    )
    return enc + gen


def _stack_planes(
    names: tuple[str, str, str], n_layers: int, gaps_m: tuple[float, float, float]
) -> list[tuple[str, float]]:
    """``(name, z)`` of a stack: its input plane at 0, ``n_layers`` layers (first gap, then
    the spacing between layers) and the plane after the last gap."""
    first, layer, last = names
    z, spacing = gaps_m[0], gaps_m[1]
    out = [(first, 0.0)]
    for i in range(n_layers):
        out.append((f"{layer} {i + 1}", z))
        z += spacing if i < n_layers - 1 else 0
    out.append((last, z + gaps_m[2]))
    return out


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


def _baseline_note(cfg: TrainConfig) -> str:
    if cfg.model == "chip":
        return ""
    return note(
        f"This run trained the {cfg.model!r} baseline, not the all-optical chip; what follows "
        f"describes the {cfg.preset!r} chip design it was configured with."
    )


def design_section(run: RunFolder) -> str:
    cfg = run.config
    if cfg is None:
        return note("No training config: the design cannot be shown.")
    c = cfg.chip_config()
    neurons = c.neurons()
    mask_pitch_m = c.layer_pixel_pitch_m
    max_angle = math.degrees(math.asin(min(1.0, max(c.wavelengths_m) / (2 * mask_pitch_m))))
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
        (
            "metasurface pixels",
            f"{mask_pitch_m * 1e6:g} µm, {c.layer_pixel_samples}×{c.layer_pixel_samples} "
            "samples each",
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
        _baseline_note(cfg)
        + table(rows)
        + img(
            figure_uri(chip_drawing(c)), "side view of the chip's planes", "Planes to scale (mm)."
        )
        + "<h3>Sampling and connectivity</h3>"
        + "<p>Per free-space hop: the FFT size the propagation planner chose, the fraction of the "
        "grid's Nyquist band it keeps, and how much of the next plane one neuron's diffraction "
        "cone reaches (connectivity).</p>"
        + table(sampling_checks(c), ("hop", "distance", "FFT", "band kept", "reach", "check"))
    )


def hardware_section(run: RunFolder) -> str:
    from lightgen.chip.design import chip_design
    from lightgen.hardware import perf_text
    from lightgen.hardware.perf import PerfAssumptions, performance

    if run.config is None:
        return note("No training config: no design to model.")
    design = chip_design(run.config.chip_config())
    r = performance(design, PerfAssumptions())
    rows = [
        ("throughput", f"{num(r.tops())} TOPS", f"counting: {r.counting}"),
        ("efficiency", f"{num(r.tops_per_w())} TOPS/W", "wall plug"),
        ("energy per image", f"{num(r.energy_per_frame_j)} J", ""),
        ("frame rate", f"{num(r.frame_rate_hz)} frames/s", f"limited by {r.rate_limited_by}"),
        ("power", f"{num(r.total_power_w)} W", ""),
        ("latency", f"{num(r.latency_s * 1e9)} ns", "time of flight"),
    ]
    assumptions = [
        (a.name, a.value if isinstance(a.value, str) else num(a.value), a.unit, a.source, a.note)
        for a in r.assumptions
    ]
    text = perf_text(design)
    return (
        _baseline_note(run.config)
        + "<p>A model, not a measurement: <code>lightgen perf</code> for this design with its "
        "default assumptions (each labelled with its source).</p>"
        + table(rows, ("figure", "value", "note"))
        + "<h3>Assumptions</h3>"
        + table(assumptions, ("quantity", "value", "unit", "source", "note"))
        + f"<details><summary>Full <code>lightgen perf</code> output</summary><pre>{html.escape(text)}</pre></details>"
    )
