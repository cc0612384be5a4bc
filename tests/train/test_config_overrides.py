"""KEY=VALUE chip overrides of a training config (the design benchmarks' --chip)."""

import pytest

from lightgen.train.config import load_train_config_overridden, with_chip_overrides


def test_values_are_read_as_int_float_or_string_and_merge_into_the_chip_table():
    data = {"preset": "tiny", "chip": {"n_fibers": 4}}
    out = with_chip_overrides(data, ["generator_layers=5", "fiber_pitch_m=2e-4", "material=x"])
    assert out["chip"] == {
        "n_fibers": 4,
        "generator_layers": 5,
        "fiber_pitch_m": 2e-4,
        "material": "x",
    }
    assert data["chip"] == {"n_fibers": 4}  # the input is not changed


def test_an_item_without_equals_names_itself_and_the_fix():
    with pytest.raises(
        ValueError, match=r"'generator_layers' is not KEY=VALUE.*generator_layers=5"
    ):
        with_chip_overrides({}, ["generator_layers"])


def test_overridden_config_is_validated_and_updates_skip_none():
    cfg = load_train_config_overridden(
        {"preset": "tiny", "dataset": "printed-digits"}, ["generator_layers=2"], dataset=None
    )
    assert cfg.chip_config().generator_layers == 2 and cfg.dataset == "printed-digits"
    with pytest.raises(ValueError, match="generator_layers"):
        load_train_config_overridden({"preset": "tiny"}, ["generator_layers=-1"])
