r"""Phase -> pillar-size lookup tables for metasurface layouts.

A metasurface realises a phase map with nano-pillars on a sub-wavelength square
lattice of period :math:`P`; each pillar diameter gives a transmitted phase, found
by full-wave simulation of a periodic array of identical pillars (RCWA/FDTD). That
*local periodic approximation* holds when each neuron is a patch of several
identical pillars at least a wavelength wide, which is why layouts put
``pitch / P`` pillars on each side of a neuron (:mod:`lightgen.export.gds`).

Lattice rule: only the zeroth diffraction order may propagate in the substrate of
index :math:`n_s`, so :math:`P < \lambda / n_s` (normal incidence).

:func:`default_lut` is a documented *analytic estimate* for when you have no
table yet: the effective index of a pillar array from a linear effective-medium
mix, :math:`n_{eff}^2 = n_{amb}^2 + f\,(n_p^2 - n_{amb}^2)` with fill factor
:math:`f = \pi d^2 / 4P^2`, and the propagation phase
:math:`\phi(d) = 2\pi (n_{eff}(d) - n_{eff}(d_{min})) H / \lambda` of a pillar of height
:math:`H` (propagation-phase metasurfaces, Arbabi et al. 2015, Nat. Commun. 6,
7069; the mixing rule is the zeroth-order effective-medium limit). It ignores
resonances and coupling; replace it with an RCWA/FDTD table for fabrication
(:meth:`MetasurfaceLUT.from_csv`).

CSV format (one row per pillar, metadata as ``# key=value`` lines)::

    # wavelength_m=5.32e-07
    # period_m=3.333e-07
    # pillar_height_m=5.95e-07
    # material=tio2
    # substrate_index=1.46
    diameter_m,phase_rad,transmission
    8e-08,0.0,1.0
    ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightgen._checks import require_positive
from lightgen._io import CommentedCsv, atomic_write_text

TWO_PI = 2 * math.pi
_META_KEYS = ("wavelength_m", "period_m", "pillar_height_m", "material", "substrate_index")
_CSV = CommentedCsv(
    "lut",
    "lookup table",
    "Give the path of a CSV table (see lightgen.export.lut for the format) or use default_lut().",
    meta_keys=_META_KEYS,
    columns=("diameter_m", "phase_rad"),
    optional_columns=("transmission",),
)


@dataclass(frozen=True)
class MetasurfaceLUT:
    """Pillar diameters and the phase (and amplitude transmission) each one gives.

    Attributes:
        wavelength_m: design wavelength the phases hold at.
        period_m: lattice period of the pillars (must satisfy ``P < λ / substrate_index``).
        pillar_height_m: common pillar height.
        diameters_m: one per entry, each in ``(0, period_m)``.
        phases_rad: transmitted phase of each entry (wrapped to ``[0, 2π)``).
        transmissions: amplitude transmission of each entry in ``[0, 1]`` (1 if unknown).
        material, substrate_index, source: provenance for design sheets.
    """

    wavelength_m: float
    period_m: float
    pillar_height_m: float
    diameters_m: tuple[float, ...]
    phases_rad: tuple[float, ...]
    transmissions: tuple[float, ...] | None = None
    material: str = "tio2"
    substrate_index: float = 1.46
    source: str = "user"

    def __post_init__(self) -> None:
        s = object.__setattr__
        lam = require_positive(
            "lut.wavelength_m", self.wavelength_m, "Give the design wavelength in metres."
        )
        period = require_positive(
            "lut.period_m", self.period_m, "Give the pillar lattice period in metres."
        )
        require_positive(
            "lut.pillar_height_m", self.pillar_height_m, "Give the pillar height in metres."
        )
        n_s = require_positive("lut.substrate_index", self.substrate_index, "Fused silica: 1.46.")
        if period >= lam / n_s:
            raise ValueError(
                f"lut.period_m={period:g} is not sub-wavelength: a metasurface needs period < "
                f"wavelength / substrate_index = {lam:g} / {n_s:g} = {lam / n_s:g} m, or light "
                "diffracts into higher orders and the table's phases no longer hold. Use a "
                "smaller period."
            )
        d = tuple(float(x) for x in self.diameters_m)
        ph = tuple(float(x) for x in self.phases_rad)
        if len(d) < 2 or len(d) != len(ph):
            raise ValueError(
                f"the lookup table has {len(d)} diameters and {len(ph)} phases; give at least two "
                "entries and one phase per diameter."
            )
        for i, x in enumerate(d):
            if not (0 < x < period):
                raise ValueError(
                    f"lut.diameters_m[{i}]={x:g} does not fit its unit cell: diameters must lie in "
                    f"(0, period_m={period:g}) m. Fix the table or its period."
                )
        if not all(math.isfinite(p) for p in ph):
            raise ValueError("lut.phases_rad holds NaN or inf; every entry needs a finite phase.")
        s(self, "diameters_m", d)
        s(self, "phases_rad", tuple(p % TWO_PI for p in ph))
        if self.transmissions is not None:
            t = tuple(float(x) for x in self.transmissions)
            if len(t) != len(d) or not all(0 <= x <= 1 for x in t):
                raise ValueError(
                    f"lut.transmissions must hold {len(d)} amplitudes in [0, 1], got {t!r}; "
                    "pass None if unknown."
                )
            s(self, "transmissions", t)

    @property
    def levels(self) -> int:
        return len(self.diameters_m)

    def nearest(self, phase_rad: Any) -> np.ndarray:
        """Index of the entry whose phase is closest (on the circle) to each phase."""
        p = np.asarray(phase_rad, dtype=np.float64)[..., None] % TWO_PI
        table = np.asarray(self.phases_rad)
        diff = np.abs(p - table)
        return np.argmin(np.minimum(diff, TWO_PI - diff), axis=-1)

    def phase_error_rad(self, phase_rad: Any) -> np.ndarray:
        """Signed wrapped error ``table phase - target`` in ``(-π, π]`` for each phase."""
        p = np.asarray(phase_rad, dtype=np.float64)
        e = np.asarray(self.phases_rad)[self.nearest(p)] - p
        return (e + math.pi) % TWO_PI - math.pi

    # ------------------------------------------------------------------- files
    def to_csv_text(self) -> str:
        meta = {k: getattr(self, k) for k in (*_META_KEYS, "source")}
        t = self.transmissions or (1.0,) * self.levels
        rows = zip(self.diameters_m, self.phases_rad, t, strict=True)
        return _CSV.text(meta, ([repr(float(x)) for x in r] for r in rows))

    def to_csv(self, path: str | Path) -> Path:
        return atomic_write_text(path, self.to_csv_text())

    @classmethod
    def from_csv(cls, path: str | Path) -> MetasurfaceLUT:
        """Read a table in the CSV format of the module docstring."""
        meta, reader = _CSV.read(path)
        d, ph, t = [], [], []
        for r in reader:
            d.append(float(r["diameter_m"]))
            ph.append(float(r["phase_rad"]))
            t.append(float(r["transmission"]) if r.get("transmission") not in (None, "") else 1.0)
        return cls(
            wavelength_m=float(meta["wavelength_m"]),
            period_m=float(meta["period_m"]),
            pillar_height_m=float(meta["pillar_height_m"]),
            diameters_m=tuple(d),
            phases_rad=tuple(ph),
            transmissions=tuple(t),
            material=meta["material"],
            substrate_index=float(meta["substrate_index"]),
            source=meta.get("source", str(Path(path))),
        )


def emt_effective_index(
    diameter_m: float, period_m: float, n_pillar: float, n_ambient: float = 1.0
) -> float:
    """Linear effective-medium index of a square array of round pillars (module docstring)."""
    f = math.pi * diameter_m**2 / (4 * period_m**2)
    return math.sqrt(n_ambient**2 + f * (n_pillar**2 - n_ambient**2))


def default_lut(
    wavelength_m: float = 532e-9,
    levels: int = 16,
    material: str = "tio2",
    pixel_pitch_m: float | None = None,
    min_feature_m: float = 80e-9,
    substrate_index: float = 1.46,
) -> MetasurfaceLUT:
    """The documented default table: ``levels`` phases ``2πk/levels`` from the EMT estimate.

    Period: the largest ``P <= 0.65 λ`` (under the ``λ/1.46`` lattice limit) that
    divides ``pixel_pitch_m`` into whole pillars (if given). Diameters span
    ``[min_feature_m, P - min_feature_m]`` (smallest pillar and gap a process can
    write); the height is the least that reaches phase ``2π(levels-1)/levels``
    (rounded up to 1 nm). Each diameter solves the EMT relation in closed form:
    :math:`d = 2P\\sqrt{f/\\pi}`, :math:`f = (n_{eff}^2 - 1)/(n_p^2 - 1)`.
    """
    from lightgen.optics.materials import get_material

    lam = require_positive("wavelength_m", wavelength_m, "Give the design wavelength in metres.")
    if int(levels) != levels or levels < 2:
        raise ValueError(f"levels={levels!r} must be an integer >= 2, e.g. 16.")
    p_max = 0.65 * lam
    if pixel_pitch_m is not None:
        pitch = require_positive("pixel_pitch_m", pixel_pitch_m, "Give the neuron pitch in metres.")
        period = pitch / math.ceil(pitch / p_max - 1e-9)
    else:
        period = p_max
    d_min, d_max = min_feature_m, period - min_feature_m
    if d_max <= d_min:
        raise ValueError(
            f"min_feature_m={min_feature_m:g} leaves no room for pillars in a {period:g} m cell; "
            "use a smaller min_feature_m or a longer wavelength."
        )
    n_p = get_material(material).refractive_index(lam)
    n_lo = emt_effective_index(d_min, period, n_p)
    n_hi = emt_effective_index(d_max, period, n_p)
    height = math.ceil(lam * (levels - 1) / levels / (n_hi - n_lo) * 1e9) * 1e-9
    phases, diameters = [], []
    for k in range(levels):
        phi = TWO_PI * k / levels
        n_eff = n_lo + phi * lam / (TWO_PI * height)
        f = (n_eff**2 - 1) / (n_p**2 - 1)
        diameters.append(2 * period * math.sqrt(f / math.pi))
        phases.append(phi)
    return MetasurfaceLUT(
        wavelength_m=lam,
        period_m=period,
        pillar_height_m=height,
        diameters_m=tuple(diameters),
        phases_rad=tuple(phases),
        transmissions=None,
        material=material,
        substrate_index=substrate_index,
        source="lightgen default_lut: linear effective-medium estimate (not full-wave); "
        "replace for fabrication",
    )


def load_lut(lut: MetasurfaceLUT | str | Path | None, **default_kwargs: Any) -> MetasurfaceLUT:
    """A table from a :class:`MetasurfaceLUT`, a CSV path, or ``None`` (:func:`default_lut`)."""
    if lut is None:
        return default_lut(**default_kwargs)
    if isinstance(lut, MetasurfaceLUT):
        return lut
    if isinstance(lut, str | Path):
        return MetasurfaceLUT.from_csv(lut)
    raise ValueError(
        f"lut={lut!r} is not a lookup table; pass a MetasurfaceLUT, a CSV path or None."
    )
