"""Energy per image at a stated quality: ``lightgen perf --quality-curve CURVE.json``.

``CURVE.json`` is what ``lightgen eval --input-power-w`` writes
(:func:`lightgen.tasks.energy.energy_curve`): reconstruction PSNR (and optionally FID of
generated images) against the optical energy per image, measured with a photon-counting
camera. Its **operating point** is the lowest energy per reconstruction at which the PSNR is
within 1 dB of noise-free. This module turns that measured energy into the figures the
performance model states (TOPS/W, J per image), beside the paper's and a digital
decoder's, each labelled with where it comes from:

* optical energy per image -- measured (simulated chip, stated camera);
* laser wall-plug energy -- the optical energy / the laser's wall-plug efficiency (assumed);
* TOPS/W at the operating point -- operations per frame (:func:`count_operations`) / energy;
* the digital decoder -- a time per image measured on this machine's CPU times an assumed
  power (:func:`lightgen.hardware.digital.cpu_power_w`), labelled as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lightgen.hardware.counting import count_operations
from lightgen.hardware.design import ChipDesign
from lightgen.hardware.perf import PAPER

_REQUIRED = ("operating_point", "curve", "camera", "reference")


def read_quality_curve(path: str | Path) -> dict:
    """Load and check a curve written by ``lightgen eval --input-power-w``."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(
            f"--quality-curve {p} is not a file; make one with lightgen eval --checkpoint RUN "
            "--input-power-w 1e-11,1e-10,1e-9 --out curve.json."
        )
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--quality-curve {p} is not JSON ({e}).") from None
    missing = [k for k in _REQUIRED if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(
            f"--quality-curve {p} lacks {', '.join(missing)}: it is not a curve of lightgen eval "
            "--input-power-w. Pass the JSON that command wrote."
        )
    return data


@dataclass(frozen=True)
class QualityPoint:
    """The chip's energy figures at the curve's operating point (energies in J per image)."""

    rule: str
    target_psnr_db: float
    reference_psnr_db: float
    optical_energy_j: float | None  # per reconstruction, log-interpolated
    swept_energy_j: float | None  # lowest swept point that meets the target
    laser_power_w: float | None
    photons_per_pixel: float | None
    generation_energy_j: float | None  # per generated image at that laser power (if measured)
    generation_fid: float | None
    ops_per_frame: float
    laser_wall_plug_efficiency: float

    @property
    def laser_electrical_energy_j(self) -> float | None:
        e = self.optical_energy_j
        return None if e is None else e / self.laser_wall_plug_efficiency

    def tops_per_w_optical(self) -> float | None:
        e = self.optical_energy_j
        return None if e is None else self.ops_per_frame / e / 1e12

    def tops_per_w_laser(self) -> float | None:
        e = self.laser_electrical_energy_j
        return None if e is None else self.ops_per_frame / e / 1e12


def quality_point(
    curve: dict,
    design: ChipDesign,
    counting: str = "conservative",
    laser_wall_plug_efficiency: float = 0.2,
) -> QualityPoint:
    """The energy figures of ``design`` at ``curve``'s operating point."""
    op = curve["operating_point"]
    row = next(
        (r for r in curve["curve"] if r.get("laser_power_w") == op.get("laser_power_w")), None
    )
    return QualityPoint(
        rule=op["rule"],
        target_psnr_db=float(op["target_psnr_db"]),
        reference_psnr_db=float(op.get("reference_psnr_db", op["target_psnr_db"] + 1)),
        optical_energy_j=op.get("interpolated_energy_j"),
        swept_energy_j=op.get("energy_j"),
        laser_power_w=op.get("laser_power_w"),
        photons_per_pixel=op.get("photons_per_pixel"),
        generation_energy_j=None if row is None else row.get("generation_energy_j"),
        generation_fid=None if row is None else row.get("fid"),
        ops_per_frame=float(count_operations(design, counting).ops_per_frame),
        laser_wall_plug_efficiency=laser_wall_plug_efficiency,
    )


def format_quality_point(
    q: QualityPoint,
    curve_path: str,
    camera: dict,
    digital_j_per_image: float | None = None,
    digital_label: str = "",
) -> str:
    from lightgen.hardware.report import _table, fmt

    cam = (
        f"camera QE {fmt(camera['quantum_efficiency'])}, read noise {fmt(camera['read_noise_e'])} "
        f"e-, {camera['bit_depth']} bit, full well {fmt(camera['full_well_e'])} e-, exposure "
        f"{fmt(camera['exposure_s'])} s"
    )
    if q.optical_energy_j is None:
        return (
            f"Energy at a stated quality ({curve_path})\n  no swept power reaches "
            f"{q.target_psnr_db:.2f} dB (noise-free {q.reference_psnr_db:.2f} dB - 1 dB); "
            "sweep higher powers with lightgen eval --input-power-w.\n"
        )
    rows = [
        ["operating point", f"PSNR >= {q.target_psnr_db:.2f} dB", q.rule + "; " + cam],
        [
            "optical energy / reconstruction",
            f"{fmt(q.optical_energy_j)} J",
            f"measured (simulated chip), log-interpolated; lowest swept point "
            f"{fmt(q.swept_energy_j)} J at {fmt(q.laser_power_w)} W, "
            f"{fmt(q.photons_per_pixel)} photons/px",
        ],
        [
            "optical energy / generated image",
            "-" if q.generation_energy_j is None else f"{fmt(q.generation_energy_j)} J",
            "measured at that laser power (light injected into the fibers)"
            + ("" if q.generation_fid is None else f", FID {fmt(q.generation_fid)}"),
        ],
        [
            "laser wall-plug energy / image",
            f"{fmt(q.laser_electrical_energy_j)} J",
            f"optical / wall-plug efficiency {fmt(q.laser_wall_plug_efficiency)} (assumed)",
        ],
        [
            "TOPS/W at this quality, light only",
            fmt(q.tops_per_w_optical()),
            f"{fmt(q.ops_per_frame)} ops/frame / optical energy (SLM, camera, electronics "
            "not counted)",
        ],
        [
            "TOPS/W at this quality, laser wall plug",
            fmt(q.tops_per_w_laser()),
            "ops/frame / laser electrical energy",
        ],
        [
            "paper (Chen et al. 2025)",
            f"{fmt(PAPER['tops_per_w'])} TOPS/W",
            "stated, whole system at its measured rate (paper)",
        ],
    ]
    if digital_j_per_image is not None:
        rows.append(["digital decoder", f"{fmt(digital_j_per_image)} J per image", digital_label])
    return f"Energy at a stated quality (from {curve_path})\n" + _table(rows) + "\n"
