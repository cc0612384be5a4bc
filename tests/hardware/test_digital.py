"""Digital cost formulas and the timing helpers (tiny sizes: no timing assertions)."""

from __future__ import annotations

import math

import pytest
import torch

from lightgen.chip.design import preset_design
from lightgen.hardware.digital import (
    CPU_W_PER_THREAD,
    Timing,
    complex_dense_flops,
    cpu_power_w,
    dense_equivalent_flops,
    fft2_flops,
    fft_chip_flops,
    scale_dense_timing,
    time_asm_hop,
    time_decoder,
    time_dense_hop,
)


def test_flop_formulas():
    assert complex_dense_flops(3, 5) == 8 * 15  # complex multiply-add = 4 mul + 4 add
    assert fft2_flops(4, 4) == 5 * 16 * 4  # 5 M log2 M
    assert dense_equivalent_flops(preset_design("tiny")) == 8 * 144 * 144


def test_fft_flops_scale_with_wavelengths():
    d = preset_design("tiny")
    two = d.replace(wavelengths_m=(532e-9, 532e-9))
    assert fft_chip_flops(two) == pytest.approx(2 * fft_chip_flops(d))
    assert fft_chip_flops(d) > 0


def test_dense_timing_scales_linearly_in_matrix_entries():
    t = Timing("x", 2e-3, 1, 1, "cpu")
    assert scale_dense_timing(t, 1000, 4000) == pytest.approx(8e-3)
    assert t.energy_j(10.0) == pytest.approx(2e-2)
    with pytest.raises(ValueError, match="power_w"):
        t.energy_j(0)


def test_timers_run_on_tiny_problems():
    dense = time_dense_hop(64, 32, batch=2, repeats=1)
    assert dense.seconds_per_image > 0 and dense.batch == 2
    hop = time_asm_hop((16, 16), (24, 24), n_wavelengths=2, repeats=1)
    assert math.isfinite(hop.seconds_per_image) and hop.seconds_per_image > 0
    dec = time_decoder(torch.nn.Linear(4, 16), (4,), batch=3, repeats=1)
    assert dec.seconds_per_image > 0 and "Linear" in dec.label


def test_bad_timing_inputs_raise():
    with pytest.raises(ValueError, match="padded_shape"):
        time_asm_hop((16, 16), (8, 8))
    with pytest.raises(ValueError, match="decoder"):
        time_decoder("not a module", (4,))
    with pytest.raises(ValueError, match="n_in"):
        time_dense_hop(0, 4)


def test_cpu_power_is_a_per_thread_share():
    assert cpu_power_w(2) == pytest.approx(2 * CPU_W_PER_THREAD)
