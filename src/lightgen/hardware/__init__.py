"""Chip-level performance model: neurons, operations, throughput, power, area, photons.

Main entry points: :class:`ChipDesign` (the physical design), :func:`count_operations`,
:func:`performance`, :func:`reconcile_with_paper` and :func:`perf_text` (what
``lightgen perf`` prints). See docs/hardware.md.
"""

from lightgen.hardware.counting import RULES, OpCount, count_neurons, count_operations
from lightgen.hardware.design import ChipDesign, LayerSpec, grid_fiber_positions_m
from lightgen.hardware.devices import (
    A100,
    INPUT_DEVICES,
    CameraDatasheet,
    DigitalDevice,
    InputDevice,
)
from lightgen.hardware.perf import (
    PAPER,
    PerfAssumptions,
    PerformanceReport,
    Reconciliation,
    paper_assumptions,
    performance,
    reconcile_with_paper,
)
from lightgen.hardware.photon import PhotonBudget, photon_budget, signal_for_snr, snr_from_signal
from lightgen.hardware.report import perf_text

__all__ = [
    "A100",
    "INPUT_DEVICES",
    "PAPER",
    "RULES",
    "CameraDatasheet",
    "ChipDesign",
    "DigitalDevice",
    "InputDevice",
    "LayerSpec",
    "OpCount",
    "PerfAssumptions",
    "PerformanceReport",
    "PhotonBudget",
    "Reconciliation",
    "count_neurons",
    "count_operations",
    "grid_fiber_positions_m",
    "paper_assumptions",
    "perf_text",
    "performance",
    "photon_budget",
    "reconcile_with_paper",
    "signal_for_snr",
    "snr_from_signal",
]
