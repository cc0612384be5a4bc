"""Per-class scores of a class-conditional model: class c = prior sample + injected code of c.

A hand-built system makes the right answer known: its "decoder" reads the class from the
injected condition dimensions (argmax of their amplitude), sends it through ``perm`` and
draws a flat grey image at that class's level; a "classifier" reads the grey level. With
``perm`` the identity every class is generated (100 %); with a shifted ``perm`` (codes
shuffled) none is (0 %). An evaluation that injected the wrong code, or none, would fail.
"""

import math

import pytest
import torch
from torch import nn

from lightgen.data.dataset import ImageDataset
from lightgen.tasks.evaluate import class_codes, class_conditional_scores, is_class_conditioned
from lightgen.train.config import TrainConfig
from lightgen.train.priors import GaussianPrior

LEVELS = torch.tensor([0.1, 0.5, 0.9, 0.3])
SIZE, FREE = 8, 2


def _flat_images(labels: torch.Tensor) -> torch.Tensor:
    return LEVELS[labels].view(-1, 1, 1, 1).expand(-1, 1, SIZE, SIZE).clone()


class _Model(nn.Module):
    def __init__(self, n_classes: int, perm: list[int]):
        super().__init__()
        self.n_classes, self.perm, self.seen = n_classes, torch.tensor(perm), []
        self.free_seen = []

    def decode(self, z, generator=0):
        code = z[:, FREE:]
        self.seen.append(code)
        self.free_seen.append(z[:, :FREE])
        return _flat_images(self.perm[code.abs().argmax(1)])


class CodeReadingSystem(nn.Module):
    """Free dims from a Gaussian prior, then ``n_classes`` injected condition dims."""

    def __init__(self, n_classes: int, perm: list[int]):
        super().__init__()
        self.prior = GaussianPrior(FREE, complex_latent=True)
        self.model = _Model(n_classes, perm)
        self.n_conditions, self.free_dim = n_classes, FREE
        self.anchor = nn.Parameter(torch.zeros(()))  # a device for sample()

    def routing(self, z):
        return 0

    def with_conditions(self, z, conditions):
        assert conditions is not None and conditions.shape == (z.shape[0], self.n_conditions)
        return torch.cat([z, conditions.to(z)], 1)


class GreyLevelClassifier(nn.Module):
    def __init__(self, n_classes: int):
        super().__init__()
        self.in_channels, self.image_size, self.n_classes = 1, SIZE, n_classes

    def forward(self, x):
        return -(x.mean((1, 2, 3))[:, None] - LEVELS[None, : self.n_classes]).abs()

    def features(self, x):
        return x.flatten(1)[:, :4] + 1e-3 * torch.randn(x.shape[0], 4)


def _split(n_classes: int, per_class: int) -> ImageDataset:
    labels = torch.arange(n_classes).repeat(per_class)
    return ImageDataset(_flat_images(labels), labels, [f"c{i}" for i in range(n_classes)], "grey")


def _cfg(n_classes=3, amplitude=1.5, condition_on="labels"):
    return TrainConfig(
        condition_on=condition_on, condition_fibers=n_classes, condition_amplitude=amplitude
    )


def _scores(system, cfg, n_classes=3, **kw):
    return class_conditional_scores(
        system,
        cfg,
        _split(n_classes, 6),
        _split(n_classes, 3),
        GreyLevelClassifier(n_classes),
        n_per_class=16,
        **kw,
    )


def test_injecting_each_class_code_generates_every_class():
    system = CodeReadingSystem(3, [0, 1, 2])
    r = _scores(system, _cfg())
    assert r["mode"] == "class-conditional"
    assert [c["accuracy_generated"] for c in r["classes"]] == [1.0, 1.0, 1.0]
    assert r["ratio_generated_to_real"] == 1.0 and r["n_fake"] == 3 * 16
    assert r["class_component_counts"] is None and r["unassigned_components"] == []


def test_shuffled_class_codes_generate_no_class_correctly():
    r = _scores(CodeReadingSystem(3, [1, 2, 0]), _cfg())
    assert [c["accuracy_generated"] for c in r["classes"]] == [0.0, 0.0, 0.0]
    assert r["classes"][0]["predicted_counts_generated"] == [0, 16, 0]
    assert r["ratio_generated_to_real"] == 0.0 and r["accuracy_real_test_mean"] == 1.0


def test_the_injected_code_is_one_hot_at_the_trained_amplitude():
    system = CodeReadingSystem(3, [0, 1, 2])
    _scores(system, _cfg(amplitude=2.5))
    codes = torch.cat(system.model.seen)
    assert torch.equal(codes.abs().amax(1), torch.full((codes.shape[0],), 2.5))
    assert torch.equal((codes.abs() > 0).sum(1), torch.ones(codes.shape[0], dtype=torch.long))
    # class c's samples (16 per class, in class order) carry the code of c
    assert codes.abs().argmax(1).tolist() == [c for c in range(3) for _ in range(16)]


def test_class_codes_follow_the_labels():
    codes = class_codes(CodeReadingSystem(4, [0, 1, 2, 3]), _cfg(4, 2.0), torch.tensor([3, 1]))
    assert codes.real.tolist() == [[0, 0, 0, 2.0], [0, 2.0, 0, 0]]


def test_a_model_with_other_conditions_is_not_treated_as_class_conditional():
    system = CodeReadingSystem(3, [0, 1, 2])
    assert is_class_conditioned(system, _cfg())
    assert not is_class_conditioned(system, _cfg(condition_on="none"))
    assert not is_class_conditioned(system, None)
    # without labels as conditions and without a mixture prior there is nothing to score
    with pytest.raises(ValueError, match="condition_on='labels'"):
        _scores(system, _cfg(condition_on="none"))


def test_class_fiber_count_must_match_the_data_set_classes():
    with pytest.raises(ValueError, match="4 class fibers but the data set 3"):
        _scores(CodeReadingSystem(4, [0, 1, 2, 3]), _cfg(4), n_classes=3)


def test_grid_rows_are_labelled_by_class_without_component(tmp_path):
    r = _scores(CodeReadingSystem(3, [0, 1, 2]), _cfg(), grid_path=tmp_path / "g.png")
    assert (tmp_path / "g.png").is_file() and r["grid"].endswith("g.png")
    assert all(c["component"] is None and c["encoder_agreement"] is None for c in r["classes"])
    assert not math.isnan(r["fid"])


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.0])
def test_temperature_scales_the_free_dims_drawn_from_the_prior(temperature):
    hot, cold = CodeReadingSystem(3, [0, 1, 2]), CodeReadingSystem(3, [0, 1, 2])
    _scores(hot, _cfg())
    r = _scores(cold, _cfg(), temperature=temperature)
    assert r["prior_temperature"] == temperature
    # same seeds: the free dims are the T = 1 draws times T, the codes untouched
    assert torch.allclose(
        torch.cat(cold.model.free_seen), temperature * torch.cat(hot.model.free_seen)
    )
    assert torch.equal(torch.cat(cold.model.seen), torch.cat(hot.model.seen))


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "warm"])
def test_bad_temperature_names_the_value(bad):
    with pytest.raises(ValueError, match="temperature="):
        _scores(CodeReadingSystem(3, [0, 1, 2]), _cfg(), temperature=bad)


def test_null_rates_are_the_judge_on_block_shuffled_held_out_images():
    # flat images keep their grey level under any tile shuffle, so this judge still names
    # their true class: the null rate of each class is its share of the held-out split
    r = _scores(CodeReadingSystem(3, [0, 1, 2]), _cfg())
    assert [c["null_rate_block_shuffled"] for c in r["classes"]] == pytest.approx([1 / 3] * 3)
    assert [c["accuracy_real_test_block_shuffled"] for c in r["classes"]] == [1.0, 1.0, 1.0]
    assert "block" in r["null_control"]


def test_generated_images_get_the_same_shuffled_tile_control():
    # this toy chip draws flat images of its class's grey level: shuffling their tiles
    # changes nothing, so the control keeps each class's generated accuracy
    r = _scores(CodeReadingSystem(3, [0, 1, 2]), _cfg())
    for c in r["classes"]:
        assert c["accuracy_generated_block_shuffled"] == c["accuracy_generated"]
    assert r["accuracy_generated_block_shuffled_mean"] == r["accuracy_generated_mean"]
    assert r["accuracy_real_test_block_shuffled_mean"] == 1.0


def test_block_shuffle_moves_whole_tiles_and_keeps_every_pixel():
    from lightgen.tasks.evaluate import block_shuffled

    x = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).view(2, 3, 9, 9)
    y = block_shuffled(x, 4, torch.Generator().manual_seed(0))
    assert not torch.equal(x, y)
    # the 9th row/column (9 = 4 * 2 + 1) stays; every 2x2 tile lands whole somewhere
    assert torch.equal(y[..., 8, :], x[..., 8, :]) and torch.equal(y[..., :, 8], x[..., :, 8])
    for i in range(2):
        tiles_x = {
            tuple(x[i, :, r : r + 2, c : c + 2].flatten().tolist())
            for r in range(0, 8, 2)
            for c in range(0, 8, 2)
        }
        tiles_y = {
            tuple(y[i, :, r : r + 2, c : c + 2].flatten().tolist())
            for r in range(0, 8, 2)
            for c in range(0, 8, 2)
        }
        assert tiles_x == tiles_y
    assert torch.equal(block_shuffled(x, 1, torch.Generator()), x)
