"""Device figures the performance model uses, each with where it comes from.

Every number carries a ``source``: ``"paper"`` (stated in Chen et al. 2025),
``"datasheet"`` (vendor-published), ``"assumed"`` (a typical value for the device
class, not a specific product; replace it with your own) or ``"inferred"`` (solved
from the paper's figures, see :mod:`lightgen.hardware.perf`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightgen._checks import require_fraction, require_positive


def require_nonnegative(name: str, value: float, fix: str = "") -> float:
    """``float(value)`` if finite and >= 0, else ValueError naming the parameter and fix."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}. {fix}".strip()) from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}. {fix}".strip())
    return v


@dataclass(frozen=True)
class InputDevice:
    """The modulator that writes each input frame.

    Attributes:
        kind: ``"slm"``, ``"dmd"`` or ``"ideal"``.
        frame_rate_hz: frames per second; ``None`` for ``"ideal"`` (never the
            bottleneck: the chip then runs at its next limit, see ``perf``).
        power_w: electrical power of the device and its driver.
    """

    kind: str
    frame_rate_hz: float | None
    power_w: float
    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.frame_rate_hz is not None:
            object.__setattr__(
                self,
                "frame_rate_hz",
                require_positive(
                    "frame_rate_hz", self.frame_rate_hz, "Give frames per second, e.g. 60."
                ),
            )
        object.__setattr__(
            self, "power_w", require_nonnegative("input_device_power_w", self.power_w, "Watts.")
        )


#: Typical device classes (assumed values, not a specific product).
INPUT_DEVICES: dict[str, InputDevice] = {
    "slm": InputDevice(
        "slm", 60.0, 5.0, "assumed", "LCoS spatial light modulator, 60 Hz video rate; driver ~5 W"
    ),
    "dmd": InputDevice(
        "dmd",
        20_000.0,
        10.0,
        "assumed",
        "digital micromirror device, ~20 kHz binary patterns; board ~10 W",
    ),
    "ideal": InputDevice(
        "ideal",
        None,
        0.0,
        "assumed",
        "modulator that is never the bottleneck (rate set by the next limit)",
    ),
}


@dataclass(frozen=True)
class CameraDatasheet:
    """Detector figures: frame rate (``None``: keeps up with the input), power, noise."""

    frame_rate_hz: float | None = None
    power_w: float = 10.0
    read_noise_e: float = 2.0
    quantum_efficiency: float = 0.7
    source: str = "assumed"
    note: str = "sCMOS-class camera: 2 e- rms read noise, QE 0.7, ~10 W"

    def __post_init__(self) -> None:
        if self.frame_rate_hz is not None:
            object.__setattr__(
                self,
                "frame_rate_hz",
                require_positive("camera_frame_rate_hz", self.frame_rate_hz, "Frames/s."),
            )
        object.__setattr__(
            self, "power_w", require_nonnegative("camera_power_w", self.power_w, "Watts.")
        )
        object.__setattr__(
            self,
            "read_noise_e",
            require_nonnegative("read_noise_e", self.read_noise_e, "Electrons rms, e.g. 2."),
        )
        object.__setattr__(
            self,
            "quantum_efficiency",
            require_fraction(
                "quantum_efficiency", self.quantum_efficiency, "A fraction, e.g. 0.7."
            ),
        )


@dataclass(frozen=True)
class DigitalDevice:
    """Peak figures of a digital accelerator (dense, no sparsity)."""

    name: str
    fp16_tflops: float
    int8_tops: float
    fp32_tflops: float
    power_w: float
    die_area_mm2: float
    source: str

    def peak_ops_per_s(self, precision: str = "fp16") -> float:
        table = {"fp16": self.fp16_tflops, "int8": self.int8_tops, "fp32": self.fp32_tflops}
        if precision not in table:
            raise ValueError(f"precision={precision!r} is unknown; choose one of {tuple(table)}.")
        return table[precision] * 1e12

    def tops_per_w(self, precision: str = "fp16") -> float:
        return self.peak_ops_per_s(precision) / 1e12 / self.power_w

    def tops_per_mm2(self, precision: str = "fp16") -> float:
        return self.peak_ops_per_s(precision) / 1e12 / self.die_area_mm2


#: NVIDIA A100 (SXM4): dense tensor-core FP16 312 TFLOPS, INT8 624 TOPS, FP32 (no
#: tensor core) 19.5 TFLOPS, 400 W TDP, 826 mm^2 die (NVIDIA A100 datasheet and
#: Ampere GA100 architecture whitepaper, 2020).
A100 = DigitalDevice(
    name="NVIDIA A100 SXM4",
    fp16_tflops=312.0,
    int8_tops=624.0,
    fp32_tflops=19.5,
    power_w=400.0,
    die_area_mm2=826.0,
    source="datasheet",
)
