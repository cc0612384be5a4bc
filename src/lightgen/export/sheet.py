"""Design sheet (JSON + Markdown) and fiber-array coordinates (CSV, micrometres).

The JSON sheet is the export's manifest: it holds the full :class:`ChipDesign`
(``design``), derived physical quantities (``derived``), one entry per layer with
its files and quantisation, and what each format wrote. :func:`lightgen.export.load_design`
reads it back. The Markdown sheet is the same content for people.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from lightgen.hardware.counting import RULES, count_operations
from lightgen.hardware.design import ChipDesign

SHEET_FORMAT_VERSION = 1


def fiber_csv_text(design: ChipDesign) -> str:
    """``index,x_um,y_um`` rows, one per fiber, centred on the optical axis."""
    buf = io.StringIO()
    buf.write("# fiber centres in the fiber plane, micrometres, optical axis at (0, 0)\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "x_um", "y_um"])
    for i, (y, x) in enumerate(design.fiber_positions_m):
        w.writerow([i, repr(x * 1e6), repr(y * 1e6)])
    return buf.getvalue()


def read_fiber_csv(path: str | Path) -> tuple[tuple[float, float], ...]:
    """Fiber ``(y_m, x_m)`` centres from a CSV written by :func:`fiber_csv_text`."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"fiber CSV {str(p)!r} not found; re-export with the 'sheet' format.")
    rows = [
        ln
        for ln in p.read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    out = sorted(
        (int(r["index"]), float(r["y_um"]) * 1e-6, float(r["x_um"]) * 1e-6)
        for r in csv.DictReader(rows)
    )
    if [i for i, _, _ in out] != list(range(len(out))):
        raise ValueError(f"fiber CSV {str(p)!r} must number fibers 0..n-1 exactly once.")
    return tuple((y, x) for _, y, x in out)


def derived_quantities(design: ChipDesign) -> dict[str, Any]:
    """Physical quantities that follow from the design, for the sheet."""
    n = design.indices()
    k = design.phase_per_height_rad_per_m()
    return {
        "neurons": design.neurons(),
        "ops_per_frame": {r: count_operations(design, r).ops_per_frame for r in RULES},
        "ops_note": "one multiply-add = 2 operations; each wavelength is its own linear map",
        "refractive_indices": list(n),
        "two_pi_height_m": [2 * math.pi / ki for ki in k],
        "optical_path_m": design.optical_path_m(),
        "latency_s": design.latency_s(),
        "footprint_stacked_m2": design.footprint_m2("stacked"),
        "footprint_planar_m2": design.footprint_m2("planar"),
        "max_diffraction_sin_theta": {
            name: [min(1.0, w / (2 * spec.pixel_pitch_m)) for w in design.wavelengths_m]
            for name, spec in design.layers()
        },
    }


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list | tuple):
        return ", ".join(_cell(x) for x in v)
    return str(v)


def sheet_markdown(sheet: dict[str, Any]) -> str:
    """Human-readable design sheet from the JSON sheet."""
    d, der = sheet["design"], sheet["derived"]
    out = [f"# LightGen design sheet: {d['name']}", ""]
    meta = sheet["export"]
    out += [
        f"Exported by lightgen {meta['lightgen_version']} on {meta['created_utc']}; formats: "
        f"{', '.join(meta['formats'])}. Units are SI (metres, seconds, watts) unless a name says "
        "otherwise.",
        "",
        "## Physical parameters",
        "",
        _md_table(
            ["parameter", "value"],
            [
                [k, v]
                for k, v in d.items()
                if k not in ("encoder_layers", "generator_layers", "fiber_positions_m")
            ],
        ),
        "",
        "## Derived",
        "",
        _md_table(
            ["quantity", "value"],
            [[k, v] for k, v in der.items() if not isinstance(v, dict)]
            + [
                [f"{k}.{kk}", vv]
                for k, v in der.items()
                if isinstance(v, dict)
                for kk, vv in v.items()
            ],
        ),
        "",
        "## Layers",
        "",
    ]
    rows = []
    for layer in sheet["layers"]:
        q = layer.get("height_quantisation", {})
        rows.append(
            [
                layer["name"],
                f"{layer['shape'][0]}x{layer['shape'][1]}",
                layer["pixel_pitch_m"],
                layer["height_min_m"],
                layer["height_max_m"],
                q.get("step", "-"),
                q.get("max_phase_error_rad", "-"),
                ", ".join(layer.get("files", [])),
            ]
        )
    out.append(
        _md_table(
            [
                "layer",
                "pixels",
                "pitch (m)",
                "min height (m)",
                "max height (m)",
                "PNG step (m)",
                "PNG phase error bound (rad)",
                "files",
            ],
            rows,
        )
    )
    out += ["", f"## Fibers ({d['n_fibers']}, coordinates in {sheet['fibers']['csv']})", ""]
    out.append(
        _md_table(
            ["index", "y (um)", "x (um)"],
            [[i, y * 1e6, x * 1e6] for i, (y, x) in enumerate(d["fiber_positions_m"])],
        )
    )
    if "lut" in sheet:
        lut = sheet["lut"]
        out += ["", "## Metasurface lookup table", "", f"Source: {lut['source']}", ""]
        out.append(
            _md_table(
                ["entry", "diameter (m)", "phase (rad)"],
                [
                    [i, dd, p]
                    for i, (dd, p) in enumerate(
                        zip(lut["diameters_m"], lut["phases_rad"], strict=True)
                    )
                ],
            )
        )
        out += [
            "",
            _md_table(
                ["wavelength_m", "period_m", "pillar_height_m", "material", "substrate_index"],
                [
                    [
                        lut["wavelength_m"],
                        lut["period_m"],
                        lut["pillar_height_m"],
                        lut["material"],
                        lut["substrate_index"],
                    ]
                ],
            ),
        ]
    if "gds" in sheet:
        out += ["", "## GDSII files", ""]
        out.append(
            _md_table(
                [
                    "layer",
                    "file",
                    "bytes",
                    "write time (s)",
                    "references",
                    "pillars per neuron side",
                    "rms phase error (rad)",
                ],
                [
                    [
                        g["layer"],
                        g["file"],
                        g["file_size_bytes"],
                        g["write_time_s"],
                        g["n_references"],
                        g["pillars_per_side"],
                        g["rms_phase_error_rad"],
                    ]
                    for g in sheet["gds"]
                ],
            )
        )
    if "slm" in sheet:
        s = sheet["slm"]
        out += [
            "",
            "## SLM bitmaps",
            "",
            f"8-bit gray, table {s['lut_file']} ({s['lut_source']}) at {s['wavelength_m']} m.",
            "",
        ]
        out.append(
            _md_table(
                ["layer", "file", "max phase error (rad)"],
                [[x["layer"], x["file"], x["max_phase_error_rad"]] for x in s["layers"]],
            )
        )
    if d.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in d["notes"]]
    return "\n".join(out) + "\n"
