"""Export a whole design to one folder, and load it back.

Folder layout (``formats`` picks the optional parts; the sheet is always written
because it is the manifest :func:`load_design` reads)::

    out/design.json        full ChipDesign + derived quantities + per-layer info (manifest)
    out/design.md          the same for people
    out/fibers.csv         fiber centres, micrometres
    out/heightmaps/        <layer>.png (16-bit), <layer>.npy (float64 m), <layer>.json
    out/gds/               <layer>.gds metasurface layouts, lut.csv (phase -> pillar table)
    out/slm/               <layer>.png 8-bit bitmaps, slm_lut.csv (gray -> phase table)

The folder is written in a staging folder and swapped in whole (see
:mod:`lightgen.export._atomic`): it is never half-written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import lightgen
from lightgen._io import atomic_write_text
from lightgen.export._atomic import MARKER, staged_dir
from lightgen.export.gds import GdsReport, pillars_per_side, write_metasurface_gds
from lightgen.export.heightmap import as_array, read_map, write_map
from lightgen.export.lut import MetasurfaceLUT, load_lut
from lightgen.export.sheet import (
    SHEET_FORMAT_VERSION,
    derived_quantities,
    fiber_csv_text,
    read_fiber_csv,
    sheet_markdown,
)
from lightgen.export.slm import SlmLUT, write_slm_bitmap, write_slm_lut
from lightgen.hardware.design import ChipDesign

FORMATS: tuple[str, ...] = ("heightmap", "gds", "slm", "sheet")


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``"all"``, ``"gds"``, ``"heightmap,slm"`` or a list to a tuple of known formats."""
    items = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        for f in str(item).split(","):
            f = f.strip().lower()
            if f == "all":
                out += list(FORMATS)
            elif f in FORMATS:
                out.append(f)
            else:
                raise ValueError(f"format={f!r} is unknown; choose from {(*FORMATS, 'all')}.")
    if not out:
        raise ValueError(f"formats is empty; choose from {(*FORMATS, 'all')}.")
    return tuple(f for f in FORMATS if f in out)


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_design` wrote: files (relative path -> bytes), GDS stats, timing."""

    out_dir: Path
    formats: tuple[str, ...]
    files: dict[str, int]
    gds: tuple[GdsReport, ...]
    total_time_s: float
    warnings: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())

    def summary(self) -> str:
        """Text the CLI prints after an export."""
        lines = [
            f"Exported {', '.join(self.formats)} to {self.out_dir} "
            f"({len(self.files)} files, {self.total_bytes / 1e6:.2f} MB, {self.total_time_s:.2f} s)"
        ]
        for g in self.gds:
            lines.append(
                f"  gds/{g.path.name}: {g.file_size_bytes / 1e6:.2f} MB in {g.write_time_s:.2f} s, "
                f"{g.n_references} references for {g.n_instances} neurons "
                f"({g.pillars_per_side}x{g.pillars_per_side} pillars each), "
                f"rms phase error {g.rms_phase_error_rad:.3f} rad"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _maps(
    name: str, design: ChipDesign, values: Sequence[Any] | Mapping[str, Any]
) -> dict[str, np.ndarray]:
    layers = design.layers()
    names = [n for n, _ in layers]
    if isinstance(values, Mapping):
        missing = [n for n in names if n not in values]
        extra = [n for n in values if n not in names]
        if missing or extra:
            raise ValueError(
                f"{name} is missing layers {missing} / has unknown layers {extra}; the design's "
                f"layers are {names}."
            )
        seq = [values[n] for n in names]
    else:
        seq = list(values)
        if len(seq) != len(names):
            raise ValueError(
                f"{name} holds {len(seq)} maps but the design has {len(names)} layers {names} "
                "(encoder layers, then each generator's layers)."
            )
    out = {}
    for (n, spec), v in zip(layers, seq, strict=True):
        arr = as_array(f"{name}[{n}]", v)
        if arr.shape != (spec.n_y, spec.n_x):
            raise ValueError(
                f"{name}[{n}] has shape {arr.shape} but layer {n} is {spec.n_y}x{spec.n_x} pixels."
            )
        out[n] = arr
    return out


def _wavelength_index(design: ChipDesign, wavelength_m: float | None) -> int:
    if wavelength_m is None:
        return 0
    for i, w in enumerate(design.wavelengths_m):
        if abs(w - wavelength_m) <= 1e-9 * w:
            return i
    raise ValueError(
        f"design_wavelength_m={wavelength_m:g} is not one of the design's wavelengths "
        f"{design.wavelengths_m}; pick one of them."
    )


def export_design(
    out_dir: str | Path,
    design: ChipDesign,
    heights_m: Sequence[Any] | Mapping[str, Any],
    *,
    formats: str | Sequence[str] = "all",
    amplitudes: Sequence[Any] | Mapping[str, Any] | None = None,
    lut: MetasurfaceLUT | str | Path | None = None,
    slm_lut: SlmLUT | str | Path | None = None,
    design_wavelength_m: float | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Write ``design`` and its layers' height maps to ``out_dir`` (module docstring).

    Args:
        heights_m: one ``(H, W)`` map in metres per layer, in :meth:`ChipDesign.layers`
            order (or a mapping layer name -> map); tensors or arrays.
        formats: ``"all"`` or any of ``heightmap``, ``gds``, ``slm``, ``sheet``.
        amplitudes: per-layer transmission amplitudes in [0, 1]; required exactly when
            ``design.has_amplitude``.
        lut: metasurface table (object or CSV path); ``None`` uses
            :func:`lightgen.export.lut.default_lut` at the design wavelength.
        slm_lut: SLM calibration (object or CSV path); ``None`` is the linear table.
        design_wavelength_m: wavelength the GDS and SLM phases are computed at
            (default: the design's first).
        overwrite: replace an existing export folder.

    Raises:
        ValueError: bad maps or tables, or an ``out_dir`` that cannot be written --
            always before anything is written.
    """
    t0 = time.perf_counter()
    fmts = parse_formats(formats)
    heights = _maps("heights_m", design, heights_m)
    for n, h in heights.items():
        if h.min() < 0:
            raise ValueError(
                f"heights_m[{n}] has negative heights (min {h.min():.3g} m); heights are measured "
                "up from "
                "the substrate. Subtract the minimum (a constant height only shifts the phase)."
            )
    if design.has_amplitude and amplitudes is None:
        raise ValueError(
            "design.has_amplitude is True but amplitudes=None; pass one amplitude map per layer."
        )
    if amplitudes is not None and not design.has_amplitude:
        raise ValueError(
            "amplitudes were given but design.has_amplitude is False; set it or drop the maps."
        )
    amps = _maps("amplitudes", design, amplitudes) if amplitudes is not None else {}
    for n, a in amps.items():
        if a.min() < 0 or a.max() > 1:
            raise ValueError(
                f"amplitudes[{n}] spans [{a.min():.3g}, {a.max():.3g}]; transmission amplitudes "
                "must lie in [0, 1]. Clip or rescale them."
            )
    wi = _wavelength_index(design, design_wavelength_m)
    lam = design.wavelengths_m[wi]
    k_all = design.phase_per_height_rad_per_m()
    k = k_all[wi]
    specs = dict(design.layers())
    table = None
    if "gds" in fmts:
        table = load_lut(
            lut, wavelength_m=lam, pixel_pitch_m=design.encoder_layers[0].pixel_pitch_m
        )
        if abs(table.wavelength_m - lam) > 1e-9 * lam:
            raise ValueError(
                f"lut is for wavelength {table.wavelength_m:g} m but the export uses {lam:g} m; "
                "pass "
                f"design_wavelength_m={table.wavelength_m:g} (if it is a design wavelength) or a "
                f"table for {lam:g} m."
            )
        for n, spec in specs.items():  # fail before writing anything
            try:
                pillars_per_side(spec.pixel_pitch_m, table)
            except ValueError as e:
                raise ValueError(f"layer {n}: {e}") from None
    slm_table = None
    if "slm" in fmts:
        if slm_lut is None:
            slm_table = SlmLUT.linear(lam)
        elif isinstance(slm_lut, SlmLUT):
            slm_table = slm_lut
        else:
            slm_table = SlmLUT.from_csv(slm_lut)
        if abs(slm_table.wavelength_m - lam) > 1e-9 * lam:
            raise ValueError(
                f"slm_lut is calibrated at {slm_table.wavelength_m:g} m but the export uses "
                f"{lam:g} m; "
                "pass design_wavelength_m or a calibration for that wavelength."
            )

    sheet: dict[str, Any] = {
        "export": {
            "sheet_format_version": SHEET_FORMAT_VERSION,
            "lightgen_version": lightgen.__version__,
            "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "formats": list(fmts),
            "design_wavelength_m": lam,
            "coordinates": "pixel (i, j) centre at y=(i-H//2)*pitch, x=(j-W//2)*pitch; "
            "fibers (y, x)",
        },
        "design": design.to_dict(),
        "derived": derived_quantities(design),
        "fibers": {"csv": "fibers.csv", "unit": "um"},
        "layers": [],
    }
    gds_reports: list[GdsReport] = []
    with staged_dir(out_dir, overwrite) as stage:
        for n, h in heights.items():
            spec = specs[n]
            entry: dict[str, Any] = {
                "name": n,
                "shape": [spec.n_y, spec.n_x],
                "pixel_pitch_m": spec.pixel_pitch_m,
                "height_min_m": float(h.min()),
                "height_max_m": float(h.max()),
                "files": [],
            }
            if "heightmap" in fmts:
                meta = {
                    "material": design.material,
                    "refractive_indices": list(design.indices()),
                    "ambient_index": design.ambient_index,
                    "phase_formula": "phase_rad = 2*pi*(n - ambient_index)*height_m/wavelength_m",
                }
                paths = write_map(
                    stage / "heightmaps",
                    n,
                    h,
                    kind="height",
                    pixel_pitch_m=spec.pixel_pitch_m,
                    wavelengths_m=design.wavelengths_m,
                    phase_per_height_rad_per_m=k_all,
                    metadata=meta,
                )
                entry["files"] += [f"heightmaps/{p.name}" for p in paths.values()]
                side = json.loads(paths["json"].read_text(encoding="utf-8"))
                entry["height_quantisation"] = side["quantisation"]
                if n in amps:
                    paths = write_map(
                        stage / "heightmaps",
                        f"{n}_amplitude",
                        amps[n],
                        kind="amplitude",
                        pixel_pitch_m=spec.pixel_pitch_m,
                    )
                    entry["files"] += [f"heightmaps/{p.name}" for p in paths.values()]
            phase = k * h
            if table is not None:
                rep = write_metasurface_gds(
                    stage / "gds" / f"{n}.gds",
                    phase,
                    spec.pixel_pitch_m,
                    table,
                    top_cell=f"LIGHTGEN_{n.upper()}",
                )
                gds_reports.append(rep)
                entry["files"].append(f"gds/{n}.gds")
            if slm_table is not None:
                _path, err = write_slm_bitmap(stage / "slm" / f"{n}.png", phase, slm_table)
                entry["files"].append(f"slm/{n}.png")
                sheet.setdefault("slm", {"layers": []})["layers"].append(
                    {"layer": n, "file": f"slm/{n}.png", "max_phase_error_rad": err}
                )
            sheet["layers"].append(entry)
        if table is not None:
            table.to_csv(stage / "gds" / "lut.csv")
            sheet["lut"] = {
                "file": "gds/lut.csv",
                "wavelength_m": table.wavelength_m,
                "period_m": table.period_m,
                "pillar_height_m": table.pillar_height_m,
                "material": table.material,
                "substrate_index": table.substrate_index,
                "diameters_m": list(table.diameters_m),
                "phases_rad": list(table.phases_rad),
                "source": table.source,
            }
            sheet["gds"] = [
                {
                    "layer": r.path.stem,
                    "file": f"gds/{r.path.name}",
                    "top_cell": r.top_cell,
                    "file_size_bytes": r.file_size_bytes,
                    "write_time_s": r.write_time_s,
                    "n_references": r.n_references,
                    "n_instances": r.n_instances,
                    "pillars_per_side": r.pillars_per_side,
                    "level_counts": list(r.level_counts),
                    "rms_phase_error_rad": r.rms_phase_error_rad,
                    "max_phase_error_rad": r.max_phase_error_rad,
                }
                for r in gds_reports
            ]
        if slm_table is not None:
            write_slm_lut(stage / "slm" / "slm_lut.csv", slm_table)
            sheet["slm"].update(
                {"lut_file": "slm/slm_lut.csv", "lut_source": slm_table.source, "wavelength_m": lam}
            )
        atomic_write_text(stage / "fibers.csv", fiber_csv_text(design))
        atomic_write_text(stage / "design.md", sheet_markdown(sheet))
        atomic_write_text(stage / MARKER, json.dumps(sheet, indent=2) + "\n")  # manifest last
    out = Path(out_dir)
    files = {
        str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()
    }
    gds_final = tuple(replace(r, path=out / "gds" / r.path.name) for r in gds_reports)
    warnings = []
    if table is not None and amps:
        warnings.append("GDS layouts encode phase only; the amplitude maps are in heightmaps/.")
    if table is not None and "default_lut" in table.source:
        warnings.append(
            "GDS uses the default effective-medium lookup table; replace it with a full-wave "
            "table before fabrication."
        )
    return ExportReport(out, fmts, files, gds_final, time.perf_counter() - t0, tuple(warnings))


@dataclass(frozen=True)
class LoadedDesign:
    """A design read back by :func:`load_design`.

    Attributes:
        heights_m: layer name -> ``(H, W)`` float64 heights (empty without heightmaps).
        amplitudes: layer name -> ``(H, W)`` amplitudes (empty unless the design has them).
        fiber_positions_m: ``(y, x)`` centres from ``fibers.csv``.
        sheet: the parsed ``design.json``.
    """

    design: ChipDesign
    heights_m: dict[str, np.ndarray]
    amplitudes: dict[str, np.ndarray]
    fiber_positions_m: tuple[tuple[float, float], ...]
    sheet: dict[str, Any]
    source: str

    def heights_list(self) -> list[np.ndarray]:
        """Heights in :meth:`ChipDesign.layers` order."""
        if not self.heights_m:
            raise ValueError(
                "this export holds no height maps; re-export with format 'heightmap' or 'all'."
            )
        return [self.heights_m[n] for n in self.design.layer_names()]


def load_design(folder: str | Path, source: str = "auto") -> LoadedDesign:
    """Read an export folder back.

    Args:
        source: ``"npy"`` (exact float64 heights), ``"png"`` (16-bit codes, what a fab
            or grayscale-lithography tool reads: within half a quantisation step), or
            ``"auto"`` (npy when present, else png).
    """
    if source not in ("auto", "npy", "png"):
        raise ValueError(f"source={source!r} is unknown; choose 'auto', 'npy' or 'png'.")
    root = Path(folder)
    manifest = root / MARKER
    if not manifest.is_file():
        raise ValueError(
            f"folder={str(root)!r} holds no {MARKER}; give a folder written by export_design()."
        )
    sheet = json.loads(manifest.read_text(encoding="utf-8"))
    version = sheet.get("export", {}).get("sheet_format_version")
    if version != SHEET_FORMAT_VERSION:
        raise ValueError(
            f"{str(manifest)!r} has sheet_format_version={version!r}; this lightgen reads "
            f"{SHEET_FORMAT_VERSION}."
        )
    design = ChipDesign.from_dict(sheet["design"])
    heights: dict[str, np.ndarray] = {}
    amps: dict[str, np.ndarray] = {}
    used = source
    if "heightmap" in sheet["export"]["formats"]:
        hdir = root / "heightmaps"
        for n in design.layer_names():
            src = (
                source if source != "auto" else ("npy" if (hdir / f"{n}.npy").is_file() else "png")
            )
            used = src
            heights[n], _ = read_map(hdir, n, src)
            if design.has_amplitude:
                amps[n], _ = read_map(hdir, f"{n}_amplitude", src)
    return LoadedDesign(design, heights, amps, read_fiber_csv(root / "fibers.csv"), sheet, used)
