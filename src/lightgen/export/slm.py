r"""8-bit SLM bitmaps of the layers' phases, with the phase -> gray look-up table.

A phase-only spatial light modulator shows gray level :math:`g \in \{0..255\}` as a
phase :math:`\phi(g)`; its calibration table lists :math:`\phi(g)` for every gray level
(measured per device and wavelength). The default is the ideal linear table
:math:`\phi(g) = 2\pi g / 256` (so 2π wraps to gray 0). A phase map is written as the
gray level nearest on the circle, an error of at most half a table step
(:math:`\pi/256` for the linear table).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lightgen._checks import require_positive
from lightgen._io import CommentedCsv, atomic_write_bytes, atomic_write_text

TWO_PI = 2 * math.pi
GRAY_LEVELS = 256
_CSV = CommentedCsv(
    "slm_lut",
    "SLM calibration",
    "Give a CSV with columns gray,phase_rad and a '# wavelength_m=' line, or use SlmLUT.linear().",
    meta_keys=("wavelength_m",),
    columns=("gray", "phase_rad"),
)


@dataclass(frozen=True)
class SlmLUT:
    """Phase (rad) shown for each of the 256 gray levels at ``wavelength_m``."""

    phases_rad: tuple[float, ...]
    wavelength_m: float
    source: str = "linear"

    def __post_init__(self) -> None:
        ph = tuple(float(p) for p in self.phases_rad)
        if len(ph) != GRAY_LEVELS or not all(math.isfinite(p) for p in ph):
            raise ValueError(
                f"slm_lut needs {GRAY_LEVELS} finite phases (one per gray level), got {len(ph)}; "
                "give the SLM's calibration or use SlmLUT.linear()."
            )
        object.__setattr__(self, "phases_rad", ph)
        require_positive(
            "slm_lut.wavelength_m", self.wavelength_m, "Give the wavelength in metres."
        )

    @classmethod
    def linear(cls, wavelength_m: float, max_phase_rad: float = TWO_PI) -> SlmLUT:
        """Ideal table ``φ(g) = max_phase * g / 256``."""
        m = require_positive("max_phase_rad", max_phase_rad, "Usually 2π.")
        return cls(tuple(m * g / GRAY_LEVELS for g in range(GRAY_LEVELS)), wavelength_m, "linear")

    def gray(self, phase_rad: Any) -> np.ndarray:
        """uint8 gray level whose phase is nearest (on the circle) to each phase."""
        p = np.asarray(phase_rad, dtype=np.float64)
        table = np.asarray(self.phases_rad) % TWO_PI
        out = np.empty(p.shape, np.uint8)
        flat_p, flat_o = (p % TWO_PI).ravel(), out.ravel()
        for lo in range(0, flat_p.size, 1 << 16):  # chunks bound the (n, 256) distance matrix
            d = np.abs(flat_p[lo : lo + (1 << 16), None] - table)
            flat_o[lo : lo + (1 << 16)] = np.argmin(np.minimum(d, TWO_PI - d), axis=1)
        return out

    def phase(self, gray: Any) -> np.ndarray:
        return np.asarray(self.phases_rad)[np.asarray(gray, dtype=np.intp)]

    def to_csv_text(self) -> str:
        meta = {"wavelength_m": self.wavelength_m, "source": self.source}
        return _CSV.text(meta, ([g, repr(p)] for g, p in enumerate(self.phases_rad)))

    @classmethod
    def from_csv(cls, path: str | Path) -> SlmLUT:
        meta, reader = _CSV.read(path)
        table = sorted((int(r["gray"]), float(r["phase_rad"])) for r in reader)
        where = str(Path(path))
        if [g for g, _ in table] != list(range(GRAY_LEVELS)):
            raise ValueError(f"slm_lut={where!r} must list every gray level 0..255 exactly once.")
        return cls(
            tuple(ph for _, ph in table), float(meta["wavelength_m"]), meta.get("source", where)
        )


def write_slm_bitmap(path: str | Path, phase_rad: Any, lut: SlmLUT) -> tuple[Path, float]:
    """Write an 8-bit grayscale PNG of ``phase_rad``; return ``(path, max phase error rad)``."""
    phase = np.asarray(phase_rad, dtype=np.float64)
    if phase.ndim != 2 or not np.all(np.isfinite(phase)):
        raise ValueError(
            f"phase_rad must be a finite (H, W) map in radians, got shape {phase.shape}."
        )
    gray = lut.gray(phase)
    err = (lut.phase(gray) - phase + math.pi) % TWO_PI - math.pi
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue()), float(np.max(np.abs(err)))


def read_slm_bitmap(path: str | Path, lut: SlmLUT) -> np.ndarray:
    """Phase (rad) an SLM shows for the bitmap at ``path``."""
    with Image.open(path) as img:
        gray = np.array(img)
    if gray.dtype != np.uint8:
        raise ValueError(f"{str(path)!r} is not an 8-bit bitmap (dtype {gray.dtype}).")
    return lut.phase(gray)


def write_slm_lut(path: str | Path, lut: SlmLUT) -> Path:
    return atomic_write_text(path, lut.to_csv_text())
