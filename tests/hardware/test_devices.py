"""Device tables: the A100 figures and derived ratios."""

from __future__ import annotations

import pytest

from lightgen.hardware.devices import A100, INPUT_DEVICES, InputDevice


def test_a100_datasheet_figures_and_ratios():
    assert (A100.fp16_tflops, A100.int8_tops, A100.power_w, A100.die_area_mm2) == (
        312,
        624,
        400,
        826,
    )
    assert A100.peak_ops_per_s("int8") == 624e12
    assert A100.tops_per_w("fp16") == pytest.approx(0.78)
    assert A100.tops_per_mm2("int8") == pytest.approx(624 / 826)


def test_device_classes_are_labelled_assumed():
    assert {d.source for d in INPUT_DEVICES.values()} == {"assumed"}
    assert INPUT_DEVICES["ideal"].frame_rate_hz is None


def test_bad_device_figures_raise():
    with pytest.raises(ValueError, match="frame_rate_hz"):
        InputDevice("slm", 0.0, 1.0, "user")
    with pytest.raises(ValueError, match="input_device_power_w"):
        InputDevice("slm", 60.0, -1.0, "user")
    with pytest.raises(ValueError, match="precision"):
        A100.peak_ops_per_s("fp8")
