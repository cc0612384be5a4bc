r"""Chip-level performance model: throughput, latency, power, area, and the paper's numbers.

For a :class:`ChipDesign` and a set of :class:`PerfAssumptions`:

* **throughput** :math:`= \mathrm{ops/frame} \times f`, with :math:`f` the slowest of the
  input device's frame rate and the camera's (a modulator that is never the
  bottleneck, ``"ideal"``, leaves the camera; with neither, one frame in flight at a
  time gives :math:`f = c / \mathrm{optical\ path}`). TOPS = :math:`10^{12}` ops/s;
  ops/frame from :mod:`lightgen.hardware.counting` (multiply-add = 2 operations);
* **latency** = optical path / c (free space times the ambient index plus fiber
  times its group index);
* **power** = laser optical power / wall-plug efficiency + input device + one camera
  per generator + other. Without a stated laser power the laser delivers the
  photon-budget minimum (:mod:`lightgen.hardware.photon`), so fiber coupling, fiber
  loss and layer transmission set it;
* **area** = the declared package area, else the aperture footprint (largest layer
  for 3-D ``stacked`` packaging, their sum for ``planar``).

:func:`paper_assumptions` solves for what the paper (Chen et al., Science 390:1259,
2025) does not state -- frame rate and power -- from its measured figures, and
:func:`reconcile_with_paper` checks the three measured figures against each other.
Every number reports its source: ``paper``, ``datasheet``, ``assumed``, ``inferred``,
``design`` or ``user``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lightgen._checks import require_positive
from lightgen.hardware.counting import RULES, count_neurons, count_operations
from lightgen.hardware.design import ChipDesign
from lightgen.hardware.devices import (
    INPUT_DEVICES,
    CameraDatasheet,
    require_fraction,
    require_nonnegative,
)
from lightgen.hardware.photon import PhotonBudget, chip_transmission, photon_budget

#: Figures stated in the paper (Chen et al., Science 390:1259, 2025).
PAPER = {
    "tops": 3.57e4,
    "tops_per_w": 6.64e2,
    "tops_per_mm2": 2.62e2,
    "area_mm2": 136.5,
    "theoretical_tops": 5.69e9,
    "neurons_min": 2_000_000,
    "n_fibers": 100,
    "input_pixels": 512 * 512,
}


@dataclass(frozen=True)
class Assumption:
    """One number the model used, with its unit and provenance."""

    name: str
    value: float | str | None
    unit: str
    source: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class PerfAssumptions:
    """What the performance model assumes beyond the design (all optional but ``counting``).

    Attributes:
        counting: ``"naive"`` or ``"conservative"`` (headline rule; both are reported).
        frame_rate_hz: input-device frame rate; ``None`` takes the device-class value
            from :data:`lightgen.hardware.devices.INPUT_DEVICES`.
        input_device_power_w: ``None`` takes the device-class value.
        camera: detector frame rate, power, read noise and quantum efficiency.
        laser_optical_power_w: emitted optical power; ``None`` = photon-budget minimum.
        laser_wall_plug_efficiency: optical out / electrical in.
        fiber_coupling_efficiency, layer_transmission: optical losses (fiber loss in dB
            is a design property).
        other_power_w: anything else on the power bill (control electronics, ...).
        target_snr: camera SNR the photon budget provides.
        sources: ``(name, "source: note")`` pairs overriding the default provenance
            (``"user"`` for values set by hand).
    """

    counting: str = "conservative"
    frame_rate_hz: float | None = None
    input_device_power_w: float | None = None
    camera: CameraDatasheet = field(default_factory=CameraDatasheet)
    laser_optical_power_w: float | None = None
    laser_wall_plug_efficiency: float = 0.2
    fiber_coupling_efficiency: float = 0.5
    layer_transmission: float = 0.9
    other_power_w: float = 0.0
    target_snr: float = 10.0
    sources: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.counting not in RULES:
            raise ValueError(f"counting={self.counting!r} is unknown; choose one of {RULES}.")
        if self.frame_rate_hz is not None:
            s(
                self,
                "frame_rate_hz",
                require_positive(
                    "frame_rate_hz",
                    self.frame_rate_hz,
                    "Give the input frame rate in frames/s, e.g. 60.",
                ),
            )
        if self.input_device_power_w is not None:
            s(
                self,
                "input_device_power_w",
                require_nonnegative("input_device_power_w", self.input_device_power_w, "Watts."),
            )
        if self.laser_optical_power_w is not None:
            s(
                self,
                "laser_optical_power_w",
                require_positive(
                    "laser_optical_power_w",
                    self.laser_optical_power_w,
                    "Give the emitted optical power in watts, or None for the photon-budget "
                    "minimum.",
                ),
            )
        s(
            self,
            "laser_wall_plug_efficiency",
            require_fraction(
                "laser_wall_plug_efficiency", self.laser_wall_plug_efficiency, "e.g. 0.2."
            ),
        )
        s(
            self,
            "fiber_coupling_efficiency",
            require_fraction(
                "fiber_coupling_efficiency", self.fiber_coupling_efficiency, "e.g. 0.5."
            ),
        )
        s(
            self,
            "layer_transmission",
            require_fraction("layer_transmission", self.layer_transmission, "e.g. 0.9."),
        )
        s(self, "other_power_w", require_nonnegative("other_power_w", self.other_power_w, "Watts."))
        s(self, "target_snr", require_positive("target_snr", self.target_snr, "e.g. 10."))
        s(self, "sources", tuple((str(k), str(v)) for k, v in self.sources))

    def source_of(self, name: str, default: str) -> str:
        return dict(self.sources).get(name, default)

    def replace(self, **changes) -> PerfAssumptions:
        return replace(self, **changes)


@dataclass(frozen=True)
class PerformanceReport:
    """Everything :func:`performance` computes (SI units; TOPS = 1e12 ops/s)."""

    design_name: str
    counting: str
    neurons: int
    ops_per_frame: dict[str, int]
    frame_rate_hz: float
    rate_limited_by: str
    latency_s: float
    optical_path_m: float
    power_w: dict[str, float]
    area_m2: float
    area_source: str
    footprint_stacked_m2: float
    footprint_planar_m2: float
    photon: PhotonBudget
    assumptions: tuple[Assumption, ...]

    def tops(self, rule: str | None = None) -> float:
        """Throughput in TOPS (1e12 ops/s) under ``rule`` (default: the headline rule)."""
        return self.ops_per_frame[rule or self.counting] * self.frame_rate_hz / 1e12

    @property
    def total_power_w(self) -> float:
        return sum(self.power_w.values())

    def tops_per_w(self, rule: str | None = None) -> float:
        return self.tops(rule) / self.total_power_w

    def tops_per_mm2(self, rule: str | None = None) -> float:
        return self.tops(rule) / (self.area_m2 * 1e6)

    def energy_per_op_j(self, rule: str | None = None) -> float:
        """Wall-plug energy per operation: total power / (ops per second)."""
        return self.total_power_w / (self.tops(rule) * 1e12)

    @property
    def energy_per_frame_j(self) -> float:
        return self.total_power_w / self.frame_rate_hz


def frame_rate_hz(design: ChipDesign, assumptions: PerfAssumptions) -> tuple[float, str]:
    """``(rate, what limits it)``: slowest of input device and camera, else time of flight."""
    dev = INPUT_DEVICES[design.input_device]
    limits: list[tuple[float, str]] = []
    rate_in = (
        assumptions.frame_rate_hz if assumptions.frame_rate_hz is not None else dev.frame_rate_hz
    )
    if rate_in is not None:
        limits.append((rate_in, f"input device ({design.input_device})"))
    if assumptions.camera.frame_rate_hz is not None:
        limits.append((assumptions.camera.frame_rate_hz, "camera"))
    if not limits:
        limits.append((1.0 / design.latency_s(), "time of flight (one frame in flight)"))
    return min(limits)


def performance(
    design: ChipDesign, assumptions: PerfAssumptions | None = None
) -> PerformanceReport:
    """Throughput, latency, power, area and photon budget of ``design`` (module docstring)."""
    a = assumptions or PerfAssumptions()
    dev = INPUT_DEVICES[design.input_device]
    ops = {rule: count_operations(design, rule).ops_per_frame for rule in RULES}
    rate, limiter = frame_rate_hz(design, a)
    transmission = chip_transmission(design, a.fiber_coupling_efficiency, a.layer_transmission)
    photon = photon_budget(
        target_snr=a.target_snr,
        read_noise_e=a.camera.read_noise_e,
        quantum_efficiency=a.camera.quantum_efficiency,
        wavelengths_m=design.wavelengths_m,
        n_pixels=design.camera_pixels * design.n_generators,
        transmission=transmission,
        ops_per_frame=ops[a.counting],
        frame_rate_hz=rate,
    )
    laser_optical = (
        a.laser_optical_power_w if a.laser_optical_power_w is not None else photon.laser_power_w
    )
    input_power = a.input_device_power_w if a.input_device_power_w is not None else dev.power_w
    power = {
        "laser (electrical)": laser_optical / a.laser_wall_plug_efficiency,
        f"input device ({design.input_device})": input_power,
        f"camera x{design.n_generators}": a.camera.power_w * design.n_generators,
        "other": a.other_power_w,
    }
    area, area_source = design.area_m2()
    src = a.source_of
    rows = [
        Assumption(
            "counting rule",
            a.counting,
            "",
            src("counting", "chosen"),
            "multiply-add = 2 operations",
        ),
        Assumption(
            "frame rate",
            rate,
            "frames/s",
            src("frame_rate_hz", "user" if a.frame_rate_hz is not None else dev.source),
            f"limited by {limiter}",
        ),
        Assumption(
            "input device power",
            input_power,
            "W",
            src(
                "input_device_power_w", "user" if a.input_device_power_w is not None else dev.source
            ),
            dev.note,
        ),
        Assumption(
            "camera power (each)",
            a.camera.power_w,
            "W",
            src("camera", a.camera.source),
            a.camera.note,
        ),
        Assumption(
            "camera read noise", a.camera.read_noise_e, "e- rms", src("camera", a.camera.source)
        ),
        Assumption(
            "camera quantum efficiency",
            a.camera.quantum_efficiency,
            "",
            src("camera", a.camera.source),
        ),
        Assumption(
            "laser optical power",
            laser_optical,
            "W",
            src(
                "laser_optical_power_w",
                "user" if a.laser_optical_power_w is not None else "derived",
            ),
            "photon-budget minimum" if a.laser_optical_power_w is None else "",
        ),
        Assumption(
            "laser wall-plug efficiency",
            a.laser_wall_plug_efficiency,
            "",
            src("laser_wall_plug_efficiency", "assumed"),
        ),
        Assumption(
            "fiber coupling efficiency",
            a.fiber_coupling_efficiency,
            "",
            src("fiber_coupling_efficiency", "assumed"),
        ),
        Assumption(
            "layer transmission (each)",
            a.layer_transmission,
            "",
            src("layer_transmission", "assumed"),
        ),
        Assumption("fiber loss", design.fiber_loss_db, "dB", "design"),
        Assumption("other power", a.other_power_w, "W", src("other_power_w", "user")),
        Assumption("target camera SNR", a.target_snr, "", src("target_snr", "assumed")),
        Assumption("chip area", area * 1e6, "mm^2", src("area", "design"), area_source),
        Assumption(
            "optical path",
            design.optical_path_m(),
            "m",
            "design",
            "free space x n_amb + fiber x n_g",
        ),
    ]
    return PerformanceReport(
        design_name=design.name,
        counting=a.counting,
        neurons=count_neurons(design),
        ops_per_frame=ops,
        frame_rate_hz=rate,
        rate_limited_by=limiter,
        latency_s=design.latency_s(),
        optical_path_m=design.optical_path_m(),
        power_w=power,
        area_m2=area,
        area_source=area_source,
        footprint_stacked_m2=design.footprint_m2("stacked"),
        footprint_planar_m2=design.footprint_m2("planar"),
        photon=photon,
        assumptions=tuple(rows),
    )


# ----------------------------------------------------------------- the paper
#: Typical-class powers used to split the paper's implied system power (assumed).
PAPER_INPUT_DEVICE_POWER_W = 10.0
PAPER_CAMERA_POWER_W = 10.0


def paper_assumptions(
    design: ChipDesign, variant: str = "measured", counting: str = "conservative"
) -> PerfAssumptions:
    """Assumptions that make ``design`` reproduce the paper's figures, labelled ``inferred``.

    ``variant="measured"``: the input frame rate is solved from 3.57e4 TOPS,
    :math:`f = 3.57\\times10^{16} / \\mathrm{ops/frame}`, and the system power from
    TOPS / (TOPS/W) = 53.8 W; the laser takes the photon-budget minimum, the input
    device and camera a typical 10 W each (assumed), and the rest is an *inferred
    residual* ("other"). ``variant="theoretical"``: a faster modulator whose rate is
    solved from 5.69e9 TOPS (same power split; the paper states no power for it).
    """
    if variant not in ("measured", "theoretical"):
        raise ValueError(f"variant={variant!r} is unknown; choose 'measured' or 'theoretical'.")
    ops = count_operations(design, counting).ops_per_frame
    tops = PAPER["tops"] if variant == "measured" else PAPER["theoretical_tops"]
    rate = tops * 1e12 / ops
    total_w = PAPER["tops"] / PAPER["tops_per_w"]
    base = PerfAssumptions(
        counting=counting,
        frame_rate_hz=rate,
        input_device_power_w=PAPER_INPUT_DEVICE_POWER_W,
        camera=CameraDatasheet(power_w=PAPER_CAMERA_POWER_W),
    )
    probe = performance(design, base)
    residual = total_w - probe.total_power_w
    if residual < 0:
        raise ValueError(
            f"the assumed component powers ({probe.total_power_w:.3g} W) exceed the paper's "
            "implied "
            f"{total_w:.3g} W for design {design.name!r}; lower the camera/input-device powers."
        )
    what = (
        "3.57e4 TOPS measured"
        if variant == "measured"
        else "5.69e9 TOPS theoretical (faster modulator)"
    )
    return base.replace(
        other_power_w=residual,
        sources=(
            (
                "frame_rate_hz",
                f"inferred: solved from the paper's {what} with the {counting} count",
            ),
            ("input_device_power_w", "assumed: typical modulator + driver"),
            ("camera", "assumed: typical camera"),
            ("other_power_w", "inferred: residual to the paper's 3.57e4 / 6.64e2 = 53.8 W"),
            ("area", "paper: 136.5 mm^2 chip"),
        ),
    )


@dataclass(frozen=True)
class CountingVariant:
    """Frame rates the paper's figures imply under one way of counting operations."""

    label: str
    ops_per_frame: int
    measured_rate_hz: float
    theoretical_rate_hz: float
    time_of_flight_tops: float
    devices_fast_enough: str


def _devices_fast_enough(rate_hz: float) -> str:
    """Device classes (assumed rates, :data:`INPUT_DEVICES`) that reach ``rate_hz``."""
    names = [
        k
        for k, d in INPUT_DEVICES.items()
        if d.frame_rate_hz is not None and d.frame_rate_hz >= rate_hz
    ]
    return ", ".join(names) if names else "none of slm/dmd"


@dataclass(frozen=True)
class PaperCheck:
    name: str
    paper: float
    model: float
    unit: str
    note: str = ""

    @property
    def rel_diff(self) -> float:
        return self.model / self.paper - 1


@dataclass(frozen=True)
class Reconciliation:
    """The paper's figures checked against each other and against the model.

    Attributes:
        implied_power_w: ``(value, lo, hi)`` from TOPS / (TOPS/W); ``lo, hi`` span
            the rounding of the 3-significant-figure published numbers.
        implied_area_mm2: ``(value, lo, hi)`` from TOPS / (TOPS/mm^2).
        area_consistent: the stated 136.5 mm^2 lies inside the implied interval.
        variants: implied frame rates under each counting variant.
        checks: model (with :func:`paper_assumptions`) vs paper.
    """

    implied_power_w: tuple[float, float, float]
    implied_area_mm2: tuple[float, float, float]
    area_consistent: bool
    variants: tuple[CountingVariant, ...]
    checks: tuple[PaperCheck, ...]
    measured: PerformanceReport
    theoretical: PerformanceReport


def _rounding_interval(x: float, sig: int = 3) -> tuple[float, float]:
    """Interval of numbers that round to ``x`` at ``sig`` significant figures."""
    from math import floor, log10

    half = 0.5 * 10 ** (floor(log10(abs(x))) - sig + 1)
    return x - half, x + half


def reconcile_with_paper(design: ChipDesign, counting: str = "conservative") -> Reconciliation:
    """Check the paper's three measured figures for consistency and reproduce them.

    Implied power = TOPS / (TOPS/W); implied area = TOPS / (TOPS/mm^2), compared
    with the stated 136.5 mm^2 within the rounding of three significant figures.
    """
    d = design  # the paper's chip: lightgen.chip.design.preset_design("paper")
    t_lo, t_hi = _rounding_interval(PAPER["tops"])
    w_lo, w_hi = _rounding_interval(PAPER["tops_per_w"])
    a_lo, a_hi = _rounding_interval(PAPER["tops_per_mm2"])
    power = (PAPER["tops"] / PAPER["tops_per_w"], t_lo / w_hi, t_hi / w_lo)
    area = (PAPER["tops"] / PAPER["tops_per_mm2"], t_lo / a_hi, t_hi / a_lo)
    stated_lo, stated_hi = _rounding_interval(PAPER["area_mm2"], 4)
    consistent = area[1] <= stated_hi and stated_lo <= area[2]

    variants = []
    for label, dv, rule in (
        ("naive (every hop dense)", d, "naive"),
        (
            "conservative, fibers linear (one map input->camera)",
            d.replace(fiber_nonlinear=False),
            "conservative",
        ),
        (
            "conservative, fibers as a boundary (rank-100 factorisation)",
            d.replace(fiber_nonlinear=True),
            "conservative",
        ),
    ):
        ops = count_operations(dv, rule).ops_per_frame
        variants.append(
            CountingVariant(
                label=label,
                ops_per_frame=ops,
                measured_rate_hz=PAPER["tops"] * 1e12 / ops,
                theoretical_rate_hz=PAPER["theoretical_tops"] * 1e12 / ops,
                time_of_flight_tops=ops / dv.latency_s() / 1e12,
                devices_fast_enough=_devices_fast_enough(PAPER["tops"] * 1e12 / ops),
            )
        )

    measured = performance(d, paper_assumptions(d, "measured", counting))
    theoretical = performance(d, paper_assumptions(d, "theoretical", counting))
    checks = (
        PaperCheck(
            "throughput (measured)", PAPER["tops"], measured.tops(), "TOPS", "frame rate inferred"
        ),
        PaperCheck(
            "efficiency (measured)",
            PAPER["tops_per_w"],
            measured.tops_per_w(),
            "TOPS/W",
            "power inferred",
        ),
        PaperCheck(
            "density (measured)",
            PAPER["tops_per_mm2"],
            measured.tops_per_mm2(),
            "TOPS/mm^2",
            measured.area_source,
        ),
        PaperCheck(
            "throughput (theoretical)",
            PAPER["theoretical_tops"],
            theoretical.tops(),
            "TOPS",
            "rate inferred",
        ),
        PaperCheck(
            "optical neurons (> 2 M)",
            PAPER["neurons_min"],
            measured.neurons,
            "neurons",
            "paper: > 2 million",
        ),
    )
    return Reconciliation(power, area, consistent, tuple(variants), checks, measured, theoretical)
