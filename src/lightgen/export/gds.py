"""GDSII metasurface layouts, one file per layer, written with gdstk.

Hierarchy keeps a 512 x 512-neuron layer small: the table's ``L`` pillar sizes are
``L`` cells ``P00..`` (one polygon each); each neuron is a cell ``N00..`` holding a
``k x k`` array reference (AREF) of its pillar, ``k = pitch / period``; the layer's
top cell places one neuron per pixel, merging runs of equal neurons along a row into
one AREF. A layer therefore costs about 27 bytes (SREF) per neuron at worst, against
~270 bytes per pillar for flat polygons -- ``k^2 x 10`` times more.

Placement: neuron ``(i, j)`` of an ``H x W`` map is centred at ``x = (j - W//2) p``,
``y = (i - H//2) p`` (the simulation grid's coordinates; mirror the layout in your
layout tool if the wafer is flipped at assembly). Database unit 1 nm, user unit 1 µm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightgen._checks import require_positive
from lightgen._io import atomic_write
from lightgen.export.lut import MetasurfaceLUT

UNIT_M = 1e-6
PRECISION_M = 1e-9


def _gdstk():
    try:
        import gdstk
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("GDSII export needs gdstk: pip install 'lightgen[export]'.") from None
    return gdstk


@dataclass(frozen=True)
class GdsReport:
    """What :func:`write_metasurface_gds` wrote.

    Attributes:
        n_references: reference records in the top cell (SREF + AREF).
        n_instances: neurons placed (= pixels of the map).
        level_counts: neurons per table entry.
        pillars_per_side: ``k = pitch / period``.
    """

    path: Path
    top_cell: str
    shape: tuple[int, int]
    n_references: int
    n_instances: int
    level_counts: tuple[int, ...]
    pillars_per_side: int
    file_size_bytes: int
    write_time_s: float
    rms_phase_error_rad: float
    max_phase_error_rad: float


def pillars_per_side(
    pixel_pitch_m: float, lut: MetasurfaceLUT, min_pitch_wavelengths: float = 1.0
) -> int:
    """``k = pitch / period``, checking that a neuron is a whole patch of pillars.

    Raises ValueError if the pitch is below ``min_pitch_wavelengths`` wavelengths (the
    table's local-periodic approximation needs patches about a wavelength wide), below
    one lattice period, or not a whole multiple of the period.
    """
    pitch = require_positive("pixel_pitch_m", pixel_pitch_m, "Give the neuron pitch in metres.")
    if pitch < min_pitch_wavelengths * lut.wavelength_m:
        raise ValueError(
            f"pixel_pitch_m={pitch:g} is below the table's wavelength {lut.wavelength_m:g} m: a "
            "metasurface lookup table assumes each neuron is a locally periodic patch of identical "
            "pillars about a wavelength wide, so its phases do not hold for smaller neurons. Use a "
            "pitch >= the wavelength, or pass min_pitch_wavelengths=0 to accept the approximation."
        )
    k_real = pitch / lut.period_m
    k = round(k_real)
    if k < 1:
        raise ValueError(
            f"pixel_pitch_m={pitch:g} is smaller than the table's lattice period lut.period_m="
            f"{lut.period_m:g}: a neuron cannot hold one pillar. Use a table with a smaller period."
        )
    if abs(k_real - k) > 1e-6 * k_real:
        raise ValueError(
            f"pixel_pitch_m={pitch:g} is not a whole multiple of lut.period_m={lut.period_m:g} "
            f"(ratio {k_real:.6g}); neurons must hold whole pillars. Use a table whose period "
            "divides "
            "the pitch, e.g. default_lut(pixel_pitch_m=...)."
        )
    return k


def write_metasurface_gds(
    path: str | Path,
    phase_rad: Any,
    pixel_pitch_m: float,
    lut: MetasurfaceLUT,
    *,
    top_cell: str = "LAYER",
    gds_layer: int = 1,
    gds_datatype: int = 0,
    tolerance_m: float = 0.5e-9,
    min_pitch_wavelengths: float = 1.0,
) -> GdsReport:
    """Write the metasurface realising ``phase_rad`` (``(H, W)``, at ``lut.wavelength_m``).

    Each neuron gets the table entry nearest in phase (on the circle). Returns a
    :class:`GdsReport` with reference counts, file size, write time and the phase error
    the table's quantisation leaves.
    """
    gdstk = _gdstk()
    phase = np.asarray(phase_rad, dtype=np.float64)
    if phase.ndim != 2 or not np.all(np.isfinite(phase)):
        raise ValueError(
            f"phase_rad must be a finite (H, W) map in radians, got shape {phase.shape}."
        )
    k = pillars_per_side(pixel_pitch_m, lut, min_pitch_wavelengths)
    t0 = time.perf_counter()
    levels = lut.nearest(phase)
    err = lut.phase_error_rad(phase)
    h, w = phase.shape
    pitch_u = pixel_pitch_m / UNIT_M
    period_u = lut.period_m / UNIT_M

    lib = gdstk.Library(unit=UNIT_M, precision=PRECISION_M)
    used = np.unique(levels)
    neuron_cells = {}
    for q in used:
        pillar = gdstk.Cell(f"P{q:02d}")
        pillar.add(
            gdstk.ellipse(
                (0, 0),
                lut.diameters_m[q] / 2 / UNIT_M,
                tolerance=tolerance_m / UNIT_M,
                layer=gds_layer,
                datatype=gds_datatype,
            )
        )
        lib.add(pillar)
        if k == 1:
            neuron_cells[q] = pillar
            continue
        neuron = gdstk.Cell(f"N{q:02d}")
        corner = -(k - 1) * period_u / 2
        neuron.add(
            gdstk.Reference(
                pillar, (corner, corner), columns=k, rows=k, spacing=(period_u, period_u)
            )
        )
        lib.add(neuron)
        neuron_cells[q] = neuron

    top = gdstk.Cell(top_cell)
    lib.add(top)
    xs = (np.arange(w) - w // 2) * pitch_u
    ys = (np.arange(h) - h // 2) * pitch_u
    # runs of equal neurons along each row: start where the level changes or a row begins
    change = np.ones((h, w), bool)
    change[:, 1:] = levels[:, 1:] != levels[:, :-1]
    rows, starts = np.nonzero(change)
    flat_starts = rows * w + starts
    lengths = np.diff(np.r_[flat_starts, h * w])
    run_levels = levels[rows, starts]
    n_refs = 0
    single = lengths == 1
    for q in used:
        sel = single & (run_levels == q)
        if np.any(sel):
            # single neurons of one level: one gdstk reference with explicit offsets,
            # written as one SREF per neuron
            px, py = xs[starts[sel]], ys[rows[sel]]
            ref = gdstk.Reference(neuron_cells[q], (px[0], py[0]))
            if px.size > 1:
                ref.repetition = gdstk.Repetition(
                    offsets=np.stack([px[1:] - px[0], py[1:] - py[0]], axis=1)
                )
            top.add(ref)
            n_refs += int(px.size)
    for r, s, n, q in zip(
        rows[~single], starts[~single], lengths[~single], run_levels[~single], strict=True
    ):
        top.add(
            gdstk.Reference(
                neuron_cells[q], (xs[s], ys[r]), columns=int(n), rows=1, spacing=(pitch_u, pitch_u)
            )
        )
        n_refs += 1

    target = Path(path)
    atomic_write(target, lambda t: lib.write_gds(str(t)))
    elapsed = time.perf_counter() - t0
    counts = np.bincount(levels.ravel(), minlength=lut.levels)
    return GdsReport(
        path=target,
        top_cell=top_cell,
        shape=(h, w),
        n_references=n_refs,
        n_instances=h * w,
        level_counts=tuple(int(c) for c in counts),
        pillars_per_side=k,
        file_size_bytes=target.stat().st_size,
        write_time_s=elapsed,
        rms_phase_error_rad=float(math.sqrt(np.mean(err**2))),
        max_phase_error_rad=float(np.max(np.abs(err))),
    )


def read_gds_levels(path: str | Path, top_cell: str | None = None) -> dict[str, int]:
    """Neurons placed per cell name in a layout written by :func:`write_metasurface_gds`."""
    gdstk = _gdstk()
    lib = gdstk.read_gds(str(path))
    cells = {c.name: c for c in lib.cells}
    top = cells[top_cell] if top_cell else lib.top_level()[0]
    counts: dict[str, int] = {}
    for ref in top.references:
        name = ref.cell.name if hasattr(ref.cell, "name") else str(ref.cell)
        n = ref.repetition.size or 1
        counts[name] = counts.get(name, 0) + n
    return counts
