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

import html
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from lightgen.tasks.images import atomic_write
from lightgen.tasks.report.design import design_section, hardware_section
from lightgen.tasks.report.page import SECTIONS, note, render_page
from lightgen.tasks.report.results import inside_section, results_section, training_section
from lightgen.tasks.report.run import NotARunError, RunFolder, find_run, load_for_report

__all__ = ["SECTIONS", "NotARunError", "ReportResult", "RunFolder", "find_run", "write_report"]


@dataclass
class ReportResult:
    """Where the page went, what the run lacked, and the sections that failed (and why)."""

    path: Path
    missing: list[str]
    errors: dict[str, str]


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
            sections[name] = note(f"This section could not be made: {errors[name]}")
    cfg = run.config
    shown = run.path.resolve()
    title = f"lightgen run: {shown.parent.name}/{shown.name}" + (
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
