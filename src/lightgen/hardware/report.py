"""Plain-text reports of the performance model (what ``lightgen perf`` prints)."""

from __future__ import annotations

from dataclasses import replace

from lightgen.hardware import perf
from lightgen.hardware.counting import RULES, count_operations
from lightgen.hardware.design import ChipDesign
from lightgen.hardware.devices import A100, DigitalDevice
from lightgen.hardware.digital import dense_equivalent_flops, fft_chip_flops
from lightgen.hardware.perf import PerformanceReport, Reconciliation


def fmt(x: float | int | str | None, digits: int = 3) -> str:
    """Compact number: integers with separators, floats with ``digits`` significant figures."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{digits - 1}e}"


def _table(rows: list[list[str]], header: list[str] | None = None, indent: str = "  ") -> str:
    allrows = ([header] if header else []) + rows
    widths = [max(len(r[i]) for r in allrows) for i in range(len(allrows[0]))]
    lines = []
    for j, r in enumerate(allrows):
        lines.append(
            indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        )
        if header and j == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _layers_line(design: ChipDesign) -> str:
    def desc(specs) -> str:
        shapes = sorted({(s.n_y, s.n_x, s.pixel_pitch_m) for s in specs})
        return ", ".join(f"{a}x{b} at {p * 1e6:g} um" for a, b, p in shapes)

    return (
        f"{len(design.encoder_layers)} encoder ({desc(design.encoder_layers)}) + "
        f"{len(design.generator_layers)} generator ({desc(design.generator_layers)}) x "
        f"{design.n_generators}"
    )


def format_design(design: ChipDesign) -> str:
    rows = [
        ["neurons", f"{fmt(design.neurons()['total'])}"],
        ["layers", _layers_line(design)],
        ["wavelengths", ", ".join(f"{w * 1e9:g} nm" for w in design.wavelengths_m)],
        [
            "fibers",
            f"{design.n_fibers} single-mode "
            f"({'nonlinear' if design.fiber_nonlinear else 'linear'} coupling)",
        ],
        [
            "input / camera",
            f"{design.input_shape[0]}x{design.input_shape[1]} {design.input_device} / "
            f"{design.camera_shape[0]}x{design.camera_shape[1]} per generator",
        ],
        ["material", f"{design.material}, n = " + ", ".join(f"{n:.4f}" for n in design.indices())],
    ]
    return f"Design '{design.name}'\n" + _table(rows)


def format_operations(design: ChipDesign) -> str:
    rows = []
    for rule in RULES:
        c = count_operations(design, rule)
        rows.append(
            [
                rule,
                fmt(c.ops_per_frame),
                f"{c.equivalent_layers} dense map(s) x {c.n_wavelengths} wavelength(s)",
            ]
        )
    return (
        "Operations per frame (one multiply-add = 2 operations, real or complex; "
        "each wavelength is its own linear map)\n"
        + _table(rows, ["rule", "ops/frame", "counted as"])
    )


def format_performance(report: PerformanceReport) -> str:
    r = report
    other = next(x for x in RULES if x != r.counting)
    power = ", ".join(f"{k} {fmt(v)} W" for k, v in r.power_w.items())
    rows = [
        ["frame rate", f"{fmt(r.frame_rate_hz)} frames/s", f"limited by {r.rate_limited_by}"],
        [
            "throughput",
            f"{fmt(r.tops())} TOPS",
            f"{other} rule: {fmt(r.tops(other))} TOPS (TOPS = 1e12 ops/s)",
        ],
        ["power", f"{fmt(r.total_power_w)} W", power],
        [
            "efficiency",
            f"{fmt(r.tops_per_w())} TOPS/W",
            f"{fmt(r.energy_per_op_j())} J per operation (wall plug)",
        ],
        [
            "area",
            f"{fmt(r.area_m2 * 1e6, 4)} mm^2",
            f"{r.area_source}; apertures: stacked {fmt(r.footprint_stacked_m2 * 1e6)} mm^2, "
            f"planar {fmt(r.footprint_planar_m2 * 1e6)} mm^2",
        ],
        ["density", f"{fmt(r.tops_per_mm2())} TOPS/mm^2", ""],
        ["latency", f"{fmt(r.latency_s * 1e9)} ns", f"optical path {fmt(r.optical_path_m)} m / c"],
        ["energy per frame", f"{fmt(r.energy_per_frame_j)} J", ""],
    ]
    return f"Performance (headline rule: {r.counting})\n" + _table(rows)


def format_photon_budget(report: PerformanceReport) -> str:
    p = report.photon
    rows = [
        [
            "signal per pixel",
            f"{fmt(p.signal_e_per_pixel)} e-",
            f"SNR {fmt(p.target_snr)} with {fmt(p.read_noise_e)} e- read noise",
        ],
        [
            "photons per frame",
            fmt(p.photons_per_frame),
            f"QE {fmt(p.quantum_efficiency)}, all cameras and wavelengths",
        ],
        [
            "laser energy per frame",
            f"{fmt(p.laser_energy_j)} J",
            f"chip transmission {fmt(p.transmission)}",
        ],
        ["laser optical power", f"{fmt(p.laser_power_w)} W", f"at {fmt(p.frame_rate_hz)} frames/s"],
        [
            "energy per operation floor",
            f"{fmt(p.energy_per_op_j)} J",
            f"optical only: {fmt(1 / p.energy_per_op_j / 1e12)} TOPS/W if light were the only cost",
        ],
    ]
    return "Photon budget (shot + read noise: SNR = S / sqrt(S + read_noise^2))\n" + _table(rows)


def format_assumptions(report: PerformanceReport) -> str:
    rows = [
        [
            a.name,
            fmt(a.value) if not isinstance(a.value, str) else a.value,
            a.unit,
            a.source,
            a.note,
        ]
        for a in report.assumptions
    ]
    return (
        "Assumptions (source: paper / datasheet / assumed / inferred / design / derived / user)\n"
        + _table(rows, ["quantity", "value", "unit", "source", "note"])
    )


def format_reconciliation(rec: Reconciliation) -> str:
    p, a = rec.implied_power_w, rec.implied_area_mm2
    lines = [
        "Paper reconciliation (Chen et al., Science 390:1259, 2025)",
        f"  implied power = 3.57e4 TOPS / 6.64e2 TOPS/W = {p[0]:.2f} W "
        f"(rounding interval {p[1]:.2f}..{p[2]:.2f} W)",
        f"  implied area  = 3.57e4 TOPS / 2.62e2 TOPS/mm^2 = {a[0]:.2f} mm^2 "
        f"(rounding interval {a[1]:.2f}..{a[2]:.2f}) vs stated {perf.PAPER['area_mm2']} mm^2: "
        + ("consistent" if rec.area_consistent else "INCONSISTENT"),
        "",
        _table(
            [
                [c.name, fmt(c.paper), fmt(c.model), c.unit, f"{c.rel_diff:+.2%}", c.note]
                for c in rec.checks
            ],
            ["figure", "paper", "model", "unit", "diff", "how"],
        ),
        "",
        "  Frame rates the paper's figures imply (inferred; the paper states none):",
        _table(
            [
                [
                    v.label,
                    fmt(v.ops_per_frame),
                    fmt(v.measured_rate_hz),
                    v.devices_fast_enough,
                    fmt(v.theoretical_rate_hz),
                    fmt(v.time_of_flight_tops),
                ]
                for v in rec.variants
            ],
            [
                "counting",
                "ops/frame",
                "3.57e4 TOPS -> Hz",
                "reached by",
                "5.69e9 TOPS -> Hz",
                "1/latency TOPS",
            ],
            indent="    ",
        ),
    ]
    return "\n".join(lines)


def format_digital(
    design: ChipDesign, report: PerformanceReport, device: DigitalDevice = A100
) -> str:
    # peak rates are lower bounds on time: dense products at the FP16 tensor-core peak,
    # FFTs (no tensor cores) at the FP32 peak
    peak = device.peak_ops_per_s("fp16")
    peak32 = device.peak_ops_per_s("fp32")
    dense = dense_equivalent_flops(design, report.counting)
    fft = fft_chip_flops(design)
    rows = [
        [
            f"{device.name} peak",
            f"{fmt(device.fp16_tflops)} TFLOPS FP16 / {fmt(device.int8_tops)} TOPS INT8 dense",
            f"{fmt(device.power_w)} W, {fmt(device.die_area_mm2)} mm^2: "
            f"{fmt(device.tops_per_w())} TOPS/W, "
            f"{fmt(device.tops_per_mm2())} TOPS/mm^2 (FP16)",
        ],
        [
            "same frame, dense-equivalent",
            f"{fmt(dense)} FLOPs",
            f"{fmt(dense / peak * 1e3)} ms, {fmt(dense / peak * device.power_w)} J per image at "
            "FP16 peak",
        ],
        [
            "same frame, FFT convolution",
            f"{fmt(fft)} FLOPs",
            f"{fmt(fft / peak32 * 1e6)} us, {fmt(fft / peak32 * device.power_w)} J per image at "
            "FP32 peak",
        ],
        [
            "chip (this model)",
            f"{fmt(1 / report.frame_rate_hz * 1e6)} us per image",
            f"{fmt(report.energy_per_frame_j)} J per image",
        ],
    ]
    return (
        "Digital reference (complex multiply-add = 8 real FLOPs; measured CPU/GPU times: "
        "python benchmarks/digital.py)\n" + _table(rows)
    )


def perf_text(
    design: ChipDesign,
    counting: str | None = None,
    input_device: str | None = None,
    frame_rate_hz: float | None = None,
    *,
    reconcile_with_paper: bool = False,
    camera_noise: tuple[float, float] | None = None,
) -> str:
    """The full report ``lightgen perf`` prints for ``design``.

    Args:
        design: the chip, e.g. ``lightgen.chip.design.preset_design("paper")`` or the
            design of a trained chip.
        counting: ``"naive"`` or ``"conservative"`` headline rule (default conservative).
        input_device: override the design's input device (``slm``/``dmd``/``ideal``);
            with it the paper's inferred numbers give way to device-class ones.
        frame_rate_hz: override the input frame rate (likewise).
        reconcile_with_paper: ``design`` is the paper's chip: use
            :func:`paper_assumptions` (frame rate and power solved from the paper,
            labelled inferred) and append the paper reconciliation, unless
            ``input_device`` or ``frame_rate_hz`` is given.
        camera_noise: ``(read_noise_e, quantum_efficiency)`` of the camera the photon
            budget assumes (e.g. those of a measured quality curve's camera), instead of
            the datasheet defaults.
    """
    d = design
    rule = counting or "conservative"
    if input_device is not None:
        d = d.replace(input_device=input_device)
    use_paper = reconcile_with_paper and input_device is None and frame_rate_hz is None
    if use_paper:
        a = perf.paper_assumptions(d, "measured", rule)
    else:
        a = perf.PerfAssumptions(counting=rule, frame_rate_hz=frame_rate_hz)
    if camera_noise is not None:
        rn, qe = camera_noise
        cam = replace(
            a.camera,
            read_noise_e=rn,
            quantum_efficiency=qe,
            source="user",
            note="read noise and QE of the quality curve's camera (lightgen eval --input-power-w)",
        )
        a = replace(a, camera=cam)
    report = perf.performance(d, a)
    parts = [
        f"LightGen performance model: design '{d.name}'",
        "",
        format_design(d),
        "",
        format_operations(d),
        "",
        format_performance(report),
        "",
        format_photon_budget(report),
        "",
        format_assumptions(report),
        "",
        format_digital(d, report),
    ]
    if use_paper:
        parts += ["", format_reconciliation(perf.reconcile_with_paper(d, rule))]
    return "\n".join(parts) + "\n"
