"""Per-class generation scores: components mapped to classes through the encoder.

A hand-built system makes the right answer known: images of class c are flat grey at
level ``LEVELS[c]``; the "encoder" sends them to the mean of component ``PERM[c]``; the
"decoder" draws the class whose component is nearest; a "classifier" reads the grey
level. Any slip in the mapping (identity instead of Hungarian, classifier instead of
encoder) changes the scores these tests expect.
"""

import itertools
import math
import re

import imageio.v3 as iio
import pytest
import torch
from torch import nn

from lightgen.data.dataset import ImageDataset
from lightgen.tasks.evaluate import (
    EvalOptions,
    class_component_counts,
    class_conditional_scores,
    evaluate,
    for_classifier,
    match_classes_to_components,
)
from lightgen.train.priors import GaussianPrior, MixturePrior

LEVELS = torch.tensor([0.1, 0.5, 0.9, 0.3])
MEANS = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0], [10.0, 10.0]])
SIZE = 8


def _flat_images(labels: torch.Tensor) -> torch.Tensor:
    return LEVELS[labels].view(-1, 1, 1, 1).expand(-1, 1, SIZE, SIZE).clone()


class _Model(nn.Module):
    def __init__(self, prior: MixturePrior, perm: list[int], collapse_to: int | None):
        super().__init__()
        self.prior, self.perm, self.collapse_to = prior, perm, collapse_to

    def posterior(self, images):
        level = images.mean((1, 2, 3))
        c = (level[:, None] - LEVELS[None, : len(self.perm)]).abs().argmin(1)
        mu = self.prior.means.detach()[torch.tensor(self.perm)[c]]
        return mu, torch.zeros_like(mu)

    def decode(self, z, generator=0):
        nearest = torch.cdist(z, self.prior.means.detach()).argmin(1)
        inv = {comp: c for c, comp in enumerate(self.perm)}
        cls = torch.tensor([inv.get(int(j), 0) for j in nearest])
        if self.collapse_to is not None:
            cls = torch.full_like(cls, self.collapse_to)
        return _flat_images(cls)


class HandBuiltSystem(nn.Module):
    """Mixture prior with far-apart, narrow components; known encoder and decoder."""

    def __init__(self, perm: list[int], n_components: int, collapse_to: int | None = None):
        super().__init__()
        self.prior = MixturePrior(2, n_components, complex_latent=False)
        with torch.no_grad():
            self.prior.means_ri.copy_(MEANS[:n_components])
            self.prior.log_var.fill_(-4.0)
        self.model = _Model(self.prior, perm, collapse_to)
        self.free_dim = 2
        self.n_conditions = 0

    def routing(self, z):
        return 0

    def free_part(self, z):
        return z

    def with_conditions(self, z, conditions):
        return z


class GreyLevelClassifier(nn.Module):
    """Predicts the class whose grey level is nearest to the image mean (+ ``shift``)."""

    def __init__(self, n_classes: int, shift: int = 0):
        super().__init__()
        self.in_channels, self.image_size, self.n_classes, self.shift = 1, SIZE, n_classes, shift

    def forward(self, x):
        level = x.mean((1, 2, 3))
        logits = -(level[:, None] - LEVELS[None, : self.n_classes]).abs()
        return logits.roll(self.shift, dims=1)

    def features(self, x):
        return x.flatten(1)[:, :4] + 1e-3 * torch.randn(x.shape[0], 4)


def _split(n_classes: int, per_class: int) -> ImageDataset:
    labels = torch.arange(n_classes).repeat(per_class)
    return ImageDataset(_flat_images(labels), labels, [f"c{i}" for i in range(n_classes)], "grey")


def _scores(system, n_classes=3, clf_shift=0, cfg=None, **kw):
    return class_conditional_scores(
        system,
        cfg,
        _split(n_classes, 6),
        _split(n_classes, 3),
        GreyLevelClassifier(n_classes, clf_shift),
        n_per_class=16,
        seed=0,
        **kw,
    )


# ---------------------------------------------------------------- pure helpers
def test_count_table_counts_each_class_component_pair():
    comps = torch.tensor([0, 2, 2, 1, 2])
    labels = torch.tensor([0, 0, 1, 1, 1])
    assert class_component_counts(comps, labels, 2, 3).tolist() == [[1, 0, 1], [0, 1, 2]]


@pytest.mark.parametrize(
    ("comps", "labels", "word"),
    [([0, 3], [0, 1], "components"), ([0, 1], [0, 2], "labels"), ([0], [0, 1], "1-D")],
)
def test_count_table_rejects_out_of_range_or_mismatched_indices(comps, labels, word):
    with pytest.raises(ValueError, match=word):
        class_component_counts(torch.tensor(comps), torch.tensor(labels), 2, 3)


def test_hungarian_match_resolves_a_conflict_that_per_class_argmax_gets_wrong():
    # per-class argmax sends classes 0 and 1 both to component 0; the best one-to-one
    # assignment gives class 0 component 1 (4 images) and class 1 component 0 (6 images)
    counts = torch.tensor([[5, 4, 0], [6, 0, 0], [0, 0, 3]])
    assert match_classes_to_components(counts) == [1, 0, 2]


def test_more_components_than_classes_leave_the_extra_ones_unassigned():
    counts = torch.tensor([[0, 7, 1, 0], [2, 0, 0, 9]])
    assert match_classes_to_components(counts) == [1, 3]


def test_fewer_components_than_classes_leave_a_class_without_one():
    counts = torch.tensor([[5, 0], [0, 5], [1, 1]])
    assert match_classes_to_components(counts) == [0, 1, None]


def test_match_rejects_a_table_that_is_not_2d():
    with pytest.raises(ValueError, match="counts"):
        match_classes_to_components(torch.tensor([1, 2, 3]))


def test_for_classifier_resizes_and_greys_a_flat_colour_to_its_channel_mean():
    img = torch.tensor([0.2, 0.4, 0.9]).view(1, 3, 1, 1).expand(2, 3, 4 * SIZE, 4 * SIZE)
    out = for_classifier(img, GreyLevelClassifier(3))
    assert out.shape == (2, 1, SIZE, SIZE)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-6)


# ---------------------------------------------------------------- hand-built chip
def test_known_encoder_mapping_is_recovered_and_every_class_is_generated():
    perm = [2, 0, 1]
    r = _scores(HandBuiltSystem(perm, 3))
    assert [c["component"] for c in r["classes"]] == perm
    assert r["encoder_mapping_accuracy"] == 1.0
    assert [c["accuracy_generated"] for c in r["classes"]] == [1.0, 1.0, 1.0]
    assert r["accuracy_real_test_mean"] == 1.0 and r["ratio_generated_to_real"] == 1.0
    assert r["class_component_counts"] == [[0, 0, 6], [6, 0, 0], [0, 6, 0]]


def test_a_decoder_collapsed_to_one_class_scores_only_that_class():
    r = _scores(HandBuiltSystem([2, 0, 1], 3, collapse_to=0))
    assert [c["accuracy_generated"] for c in r["classes"]] == [1.0, 0.0, 0.0]
    assert math.isclose(r["ratio_generated_to_real"], 1 / 3)
    assert r["classes"][1]["predicted_counts_generated"] == [16, 0, 0]


def test_mapping_comes_from_the_encoder_not_from_the_scoring_classifier():
    # a classifier that is wrong on every class: a classifier-derived mapping would
    # still score 100 %, the encoder-derived one scores 0 % on generated and real images
    r = _scores(HandBuiltSystem([2, 0, 1], 3), clf_shift=1)
    assert [c["component"] for c in r["classes"]] == [2, 0, 1]
    assert r["accuracy_generated_mean"] == 0.0 and r["accuracy_real_test_mean"] == 0.0
    assert math.isnan(r["ratio_generated_to_real"])


def test_label_selected_components_map_class_c_to_component_c_without_matching():
    # trained with condition_on='components': class c IS component c. An encoder that
    # (wrongly) sends class c to component perm[c] is reported, not used for the mapping:
    # sampling component c decodes to class perm^-1(c), so only the fixed point scores.
    from lightgen.train.config import TrainConfig

    cfg = TrainConfig(prior="mixture", condition_on="components", n_components=3)
    r = _scores(HandBuiltSystem([0, 2, 1], 3), cfg=cfg)
    assert r["mode"] == "label-components"
    assert [c["component"] for c in r["classes"]] == [0, 1, 2]
    assert [c["accuracy_generated"] for c in r["classes"]] == [1.0, 0.0, 0.0]
    assert math.isclose(r["encoder_mapping_accuracy"], 1 / 3)
    # the unsupervised reading of the same system matches and scores every class
    assert _scores(HandBuiltSystem([0, 2, 1], 3))["ratio_generated_to_real"] == 1.0
    with pytest.raises(ValueError, match="one prior component per class"):
        _scores(HandBuiltSystem([0, 2, 1, 3], 4), cfg=cfg)


def test_given_train_components_replace_the_encoder_pass_and_are_checked():
    # the counts come from the given components, not from the encoder: the identity
    # given to an encoder that would report perm [2, 0, 1] gives the identity mapping
    perm = [2, 0, 1]
    labels = _split(3, 6).labels
    given = _scores(HandBuiltSystem(perm, 3), train_components=labels.clone())
    assert given["class_component_counts"] == [[6, 0, 0], [0, 6, 0], [0, 0, 6]]
    assert [c["component"] for c in given["classes"]] == [0, 1, 2]
    encoded = _scores(HandBuiltSystem(perm, 3))
    same = _scores(HandBuiltSystem(perm, 3), train_components=torch.tensor(perm)[labels])
    assert same["class_component_counts"] == encoded["class_component_counts"]
    assert same["accuracy_generated_mean"] == encoded["accuracy_generated_mean"]
    with pytest.raises(ValueError, match="train_components"):
        _scores(HandBuiltSystem(perm, 3), train_components=labels[:5])


def test_a_component_no_class_uses_is_reported_and_never_sampled():
    r = _scores(HandBuiltSystem([3, 0, 1], 4))
    assert r["unassigned_components"] == [2]
    assert [c["component"] for c in r["classes"]] == [3, 0, 1]
    assert r["n_fake"] == 3 * 16


def test_per_class_grid_shows_each_class_at_its_true_grey_level(tmp_path):
    r = _scores(HandBuiltSystem([2, 0, 1], 3), grid_path=tmp_path / "grid.png")
    img = iio.imread(r["grid"])
    assert img.ndim == 3 and img.shape[0] > 0
    # one row per class on white gaps; grey is not stretched, so each class's level appears
    values = set(torch.from_numpy(img[..., :3].copy()).flatten().tolist())
    assert {round(255 * v) for v in LEVELS[:3].tolist()} <= values


def test_gaussian_prior_and_too_few_samples_are_rejected():
    sys_ = HandBuiltSystem([0, 1, 2], 3)
    with pytest.raises(ValueError, match="n_per_class"):
        class_conditional_scores(
            sys_, None, _split(3, 2), _split(3, 1), GreyLevelClassifier(3), n_per_class=1
        )
    sys_.prior = GaussianPrior(2, complex_latent=False)
    with pytest.raises(ValueError, match="mixture"):
        class_conditional_scores(sys_, None, _split(3, 2), _split(3, 1), GreyLevelClassifier(3))


# ---------------------------------------------------------------- a real (tiny) chip
@pytest.fixture(scope="module")
def tiny_mixture_run(tmp_path_factory):
    from lightgen.data.procedural import make_printed_digits
    from lightgen.train.config import TrainConfig
    from lightgen.train.trainer import Trainer

    run = tmp_path_factory.mktemp("tiny-mixture")
    cfg = TrainConfig(
        preset="tiny",
        dataset="printed-digits",
        steps=2,
        batch_size=8,
        checkpoint_every=2,
        prior="mixture",
        n_components=3,
    )
    Trainer(cfg, run, make_printed_digits(32, size=12, seed=0)[0], progress=False).run()
    return run


@pytest.fixture(scope="module")
def tiny_mixture(tiny_mixture_run):
    from lightgen.train.trainer import load_trained

    return load_trained(tiny_mixture_run)


def _small_digits(name, root=None, split="train", size=12, seed=0):
    """A 240 / 60-image stand-in for the 10,000-image printed-digits splits (fast)."""
    from lightgen.data.procedural import DIGIT_CLASSES, make_printed_digits

    n = 240 if split == "train" else 60
    images, labels = make_printed_digits(n, size=size, seed=[seed, split == "test"])
    return ImageDataset(images, labels, DIGIT_CLASSES, f"{name}-small", split)


def test_evaluate_reports_per_class_generation_for_a_mixture_chip(
    tiny_mixture, tmp_path, monkeypatch
):
    import lightgen.tasks.evaluate as ev

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ev, "load_dataset", _small_digits)
    monkeypatch.setattr(ev, "classifier_epochs", lambda n: 3)  # plumbing test: a quick SmallCNN
    system, cfg = tiny_mixture
    r = evaluate(
        system,
        cfg,
        EvalOptions(n=32, progress=False, n_per_class=4, class_grid_path=tmp_path / "g.png"),
    )
    cc = r["class_conditional"]
    assert len(cc["classes"]) == 10  # ten digits, three components: seven get none
    assert sum(c["component"] is not None for c in cc["classes"]) == 3
    assert sorted(cc["unassigned_components"]) == []
    assert sum(map(sum, cc["class_component_counts"])) == 240
    assert 0 <= r["class_conditional_accuracy_generated_mean"] <= 1
    assert (tmp_path / "g.png").is_file() and "fid" in r and "component_purity_mean" in r


def test_eval_options_reject_a_classifier_size_below_eight():
    with pytest.raises(ValueError, match="classifier_size"):
        EvalOptions(n=8, progress=False, classifier_size=4)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("temperature", -1.0, "temperature=-1.0"),
        ("temperature", math.nan, "temperature=nan"),
        ("classifier_augment", "blur", "augment='blur'"),
        ("n", 1, "n must be >= 2"),
        ("n_per_class", 0, "n_per_class must be >= 1"),
    ],
)
def test_eval_options_name_a_bad_value(field, value, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        EvalOptions(**{field: value})


def test_eval_options_are_frozen_and_normalise_the_augment():
    import dataclasses

    o = EvalOptions(classifier_augment=None, temperature=1)
    assert o.classifier_augment == "none" and o.temperature == 1.0
    assert isinstance(o.temperature, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.n = 5  # type: ignore[misc]
    assert dataclasses.replace(o, n=5).n == 5


def test_eval_command_writes_per_class_scores_and_grid(tiny_mixture_run, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    import lightgen.tasks.evaluate as ev
    from lightgen.cli import app

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ev, "load_dataset", _small_digits)
    monkeypatch.setattr(ev, "classifier_epochs", lambda n: 3)
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(
        app,
        [
            *("eval", "--checkpoint", str(tiny_mixture_run)),
            *("--n", "16", "--n-per-class", "3", "--out", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["class_conditional"]["n_per_class"] == 3
    assert (tmp_path / "eval-per-class.png").is_file()


def test_cli_eval_passes_temperature_and_judge_augmentation(
    tiny_mixture_run, tmp_path, monkeypatch
):
    import json

    from typer.testing import CliRunner

    import lightgen.tasks.evaluate as ev
    from lightgen.cli import app

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ev, "load_dataset", _small_digits)
    monkeypatch.setattr(ev, "classifier_epochs", lambda n: 3)
    out = tmp_path / "eval.json"
    args = [*("eval", "--checkpoint", str(tiny_mixture_run)), *("--n", "16", "--n-per-class", "3")]
    res = CliRunner().invoke(
        app, [*args, "--out", str(out), "--temperature", "0.5", "--classifier-augment", "chip"]
    )
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["prior_temperature"] == 0.5 and r["classifier_augment"] == "chip"
    assert r["class_conditional"]["prior_temperature"] == 0.5
    assert list((tmp_path / "cache" / "classifiers").glob("*-augchip.json"))
    bad = tmp_path / "bad.json"
    res = CliRunner().invoke(app, [*args, "--out", str(bad), "--classifier-augment", "blur"])
    assert res.exit_code != 0 and "augment='blur'" in res.output and not bad.exists()
    res = CliRunner().invoke(app, [*args, "--out", str(bad), "--temperature", "-1"])
    assert res.exit_code != 0 and "temperature=-1.0" in res.output and not bad.exists()


@pytest.mark.parametrize("side", [28, 64])
def test_per_class_grid_labels_do_not_overlap_their_neighbours(tmp_path, monkeypatch, side):
    """Two text lines per label overflowed 28 px MNIST rows into the next row's label."""
    import lightgen.tasks.images as images
    from lightgen.tasks.evaluate import save_class_grid

    figs = []
    monkeypatch.setattr(images, "save_figure", lambda path, fig: figs.append(fig) or path)
    rows = [torch.rand(8, 1, side, side) for _ in range(10)]
    names = [f"{c} (k={9 - c})" for c in range(10)]
    save_class_grid(tmp_path / "g.png", rows, names, [0.5] * 10)
    fig = figs[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels()]
    assert len(boxes) == 10
    for a, b in itertools.pairwise(boxes):
        assert not a.overlaps(b), (a, b)
