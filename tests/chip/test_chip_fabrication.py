import pytest
import torch

from lightgen.chip.chip import LightGenChip
from lightgen.chip.fabrication import FabricationModel, fabricated, metasurface_layers
from lightgen.chip.presets import preset
from lightgen.train.config import load_train_config
from lightgen.train.trainer import BOGTSystem


@pytest.fixture()
def chip():
    torch.manual_seed(0)
    c = LightGenChip(preset("tiny")).eval()
    with torch.no_grad():
        for layer in metasurface_layers(c):
            layer.raw_height.normal_()
    return c


def test_fabricated_heights_take_only_the_etch_levels_and_restore_afterwards(chip):
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        before = chip(x)
        with fabricated(chip, FabricationModel(levels=4)):
            for layer in metasurface_layers(chip):
                assert layer.height_m().unique().numel() <= 4
            during = chip(x)
        after = chip(x)
    assert not torch.allclose(before, during)
    assert torch.equal(before, after)


def test_zero_tolerances_change_nothing(chip):
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad(), fabricated(chip, FabricationModel()):
        same = chip(x)
    with torch.no_grad():
        assert torch.equal(same, chip(x))


def test_placement_errors_are_drawn_anew_each_pass_even_in_eval_mode(chip):
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad(), fabricated(chip, FabricationModel(shift_std_m=8e-6), seed=1):
        a, b = chip(x), chip(x)
    assert not torch.allclose(a, b)


def test_fabrication_aware_training_config_builds_quantised_jittered_layers():
    cfg = load_train_config({"fabrication": {"levels": 8, "shift_std_m": 1e-6}})
    system = BOGTSystem(cfg)
    layers = metasurface_layers(system)
    assert layers and all(
        layer.quantizer is not None and layer.misalignment is not None for layer in layers
    )
    with pytest.raises(ValueError, match="levels"):
        load_train_config({"fabrication": {"levels": 1}})
