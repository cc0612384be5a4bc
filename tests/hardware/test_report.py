"""What `lightgen perf` prints."""

from __future__ import annotations

import pytest

from lightgen.chip.design import preset_design
from lightgen.hardware.report import fmt, perf_text


def test_paper_report_prints_the_three_figures_assumptions_and_reconciliation():
    text = perf_text(preset_design("paper"), reconcile_with_paper=True)
    for needle in (
        "TOPS/W",
        "TOPS/mm^2",
        "3.57e+04 TOPS",
        "664 TOPS/W",
        "262 TOPS/mm^2",
        "inferred",
        "53.77 W",
    ):
        assert needle in text
    assert "consistent" in text and "INCONSISTENT" not in text
    assert "multiply-add = 2 operations" in text
    assert "A100" in text


def test_device_override_uses_device_class_numbers():
    text = perf_text(preset_design("paper"), input_device="dmd", reconcile_with_paper=True)
    assert "2.00e+04 frames/s" in text
    assert "Paper reconciliation" not in text


def test_tiny_report_and_bad_rule():
    assert "Design 'tiny'" in perf_text(preset_design("tiny"))
    with pytest.raises(ValueError, match="counting"):
        perf_text(preset_design("tiny"), counting="lavish")


def test_fmt():
    assert fmt(1234567) == "1,234,567"
    assert fmt(3.57e4) == "3.57e+04"
    assert fmt(0.5) == "0.5"
    assert fmt(None) == "-"
