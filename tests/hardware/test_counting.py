"""Counting rules against hand-computed numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.chip.design import preset_design
from lightgen.hardware.counting import count_neurons, count_operations
from lightgen.hardware.design import ChipDesign, LayerSpec


def _toy(**overrides) -> ChipDesign:
    # planes: input 16 -> enc 9 -> enc 4 -> fibers 2 -> gen 25 -> camera 9
    kw = dict(
        wavelengths_m=(532e-9,),
        input_shape=(4, 4),
        input_pixel_pitch_m=10e-6,
        encoder_layers=(LayerSpec(3, 3, 10e-6), LayerSpec(2, 2, 10e-6)),
        generator_layers=(LayerSpec(5, 5, 10e-6),),
        encoder_distances_m=(1e-3, 1e-3, 1e-3),
        generator_distances_m=(1e-3, 1e-3),
        n_fibers=2,
        fiber_positions_m=((0.0, -5e-6), (0.0, 5e-6)),
        camera_shape=(3, 3),
        camera_pixel_pitch_m=10e-6,
        refractive_indices=None,
    )
    kw.update(overrides)
    if kw["refractive_indices"] is None:
        kw["refractive_indices"] = (1.5,) * len(kw["wavelengths_m"])
    return ChipDesign(**kw)


def test_naive_rule_counts_every_hop_as_dense_map():
    c = count_operations(_toy(), "naive")
    # 16*9 + 9*4 + 4*2 + 2*25 + 25*9 = 144 + 36 + 8 + 50 + 225
    assert c.macs_per_frame == 463
    assert c.ops_per_frame == 926  # multiply-add = 2 operations
    assert c.equivalent_layers == 5


def test_conservative_rule_with_linear_fibers_is_one_map_input_to_camera():
    c = count_operations(_toy(), "conservative")
    assert c.macs_per_frame == 16 * 9
    assert c.ops_per_frame == 288
    assert c.equivalent_layers == 1


def test_conservative_rule_with_nonlinear_fibers_splits_at_the_latent_space():
    c = count_operations(_toy(fiber_nonlinear=True), "conservative")
    assert c.macs_per_frame == 16 * 2 + 2 * 9
    assert c.ops_per_frame == 100


def test_each_wavelength_and_generator_is_its_own_linear_map():
    two_wl = _toy(wavelengths_m=(532e-9, 633e-9))
    assert count_operations(two_wl, "naive").ops_per_frame == 2 * 926
    three_gen = _toy(n_generators=3)
    assert count_operations(three_gen, "naive").macs_per_frame == 144 + 36 + 8 + 3 * (50 + 225)
    assert count_operations(three_gen, "conservative").macs_per_frame == 3 * 144


def test_paper_preset_counts():
    d = preset_design("paper")
    n = 512 * 512
    assert count_operations(d, "conservative").ops_per_frame == 2 * 3 * n * n == 412_316_860_416
    assert count_operations(d, "naive").ops_per_frame == 2 * 3 * (9 * n * n + 2 * 100 * n)
    assert count_neurons(d) == 9 * n


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), extra=st.integers(1, 3), k=st.integers(1, 4))
def test_extra_linear_layer_adds_n_squared_to_naive_but_nothing_to_conservative(n, extra, k):
    layer = LayerSpec(n, 1, 10e-6)

    def design(n_enc: int) -> ChipDesign:
        return _toy(
            input_shape=(n, 1),
            encoder_layers=(layer,) * n_enc,
            encoder_distances_m=(1e-3,) * (n_enc + 1),
        )

    base, more = design(k), design(k + extra)
    naive = (
        count_operations(more, "naive").macs_per_frame
        - count_operations(base, "naive").macs_per_frame
    )
    assert naive == extra * n * n
    assert (
        count_operations(more, "conservative").ops_per_frame
        == count_operations(base, "conservative").ops_per_frame
    )


def test_unknown_rule_raises():
    with pytest.raises(ValueError, match="rule"):
        count_operations(_toy(), "generous")
