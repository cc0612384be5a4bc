"""Label-selected mixture components (``condition_on='components'``): one prior component
per class; an image's KL is taken against its class's component, generation of class c
samples component c."""

import pytest
import torch

from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.trainer import Trainer, load_trained


def _cfg(**kw) -> TrainConfig:
    base = dict(
        preset="tiny",
        steps=3,
        batch_size=4,
        checkpoint_every=3,
        prior="mixture",
        condition_on="components",
    )
    return TrainConfig(**{**base, **kw}).with_label_conditions(3)


def _data(n: int = 12):
    return make_printed_digits(n, size=12, seed=0)[0], torch.arange(n) % 3


def test_components_mode_sets_one_component_per_class():
    assert _cfg().n_components == 3
    assert _cfg(n_components=3).n_components == 3


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        ({"prior": "gaussian"}, "prior='mixture'"),
        ({"condition_fibers": 2}, "no condition fibers"),
        ({"condition_all_wavelengths": True}, "no condition fibers"),
    ],
)
def test_components_mode_rejects_settings_that_contradict_it(kw, word):
    with pytest.raises(ValueError, match=word):
        load_train_config({"prior": "mixture", "condition_on": "components", **kw})


def test_components_mode_rejects_an_explicit_component_count_other_than_the_classes():
    with pytest.raises(ValueError, match="n_components must be 4"):
        TrainConfig(
            prior="mixture", condition_on="components", n_components=6
        ).with_label_conditions(4)


def test_training_takes_each_images_kl_against_its_class_component(tmp_path):
    images, labels = _data()
    trainer = Trainer(_cfg(), tmp_path / "run", images, labels=labels, progress=False)
    calls = []
    kl = trainer.system.prior.kl

    def spy(mu, log_var, components=None):
        calls.append(None if components is None else components.clone())
        return kl(mu, log_var, components)

    trainer.system.prior.kl = spy
    trainer.run()
    assert len(calls) == 3 and all(c is not None for c in calls)
    # the batches' components are their images' labels
    from lightgen.train.trainer import _batch_indices

    for step, comps in enumerate(calls):
        idx = _batch_indices(len(images), 4, step, 0)
        assert torch.equal(comps, labels[idx])
    system, cfg = load_trained(tmp_path / "run")
    assert cfg.condition_on == "components" and system.prior.n_components == 3


def test_label_selection_changes_the_training_against_the_unsupervised_mixture(tmp_path):
    images, labels = _data()
    a = Trainer(_cfg(steps=1), tmp_path / "a", images, labels=labels, progress=False)
    unsup = TrainConfig(preset="tiny", steps=1, batch_size=4, prior="mixture", n_components=3)
    b = Trainer(unsup, tmp_path / "b", images, progress=False)
    a.run(), b.run()
    pa, pb = a.system.prior.means_ri.detach(), b.system.prior.means_ri.detach()
    assert not torch.allclose(pa, pb)


@pytest.mark.parametrize(("labels", "word"), [(None, "one label per"), ("bad", "n_components=3")])
def test_components_mode_needs_labels_in_range(tmp_path, labels, word):
    images, good = _data()
    lab = None if labels is None else good + 1
    with pytest.raises(ValueError, match=word):
        Trainer(_cfg(), tmp_path / "r", images, labels=lab, progress=False)


def test_diagonal_prior_covariance_needs_a_mixture_and_shapes_the_prior(tmp_path):
    with pytest.raises(ValueError, match="prior_covariance='diagonal'"):
        load_train_config({"prior_covariance": "diagonal"})
    images, labels = _data()
    t = Trainer(
        _cfg(prior_covariance="diagonal"), tmp_path / "d", images, labels=labels, progress=False
    )
    assert t.system.prior.log_var.shape == (3, t.system.free_dim)
    t.run()
    system, cfg = load_trained(tmp_path / "d")
    assert cfg.prior_covariance == "diagonal" and system.prior.diagonal


def test_a_checkpoint_saved_before_a_config_field_existed_still_resumes(tmp_path):
    # fields added later (e.g. prior_covariance) read as their defaults on --resume
    import json

    images, labels = _data()
    Trainer(_cfg(steps=1), tmp_path / "r", images, labels=labels, progress=False).run()
    state = next((tmp_path / "r" / "checkpoints").glob("step-*")) / "state.json"
    meta = json.loads(state.read_text())
    del meta["config"]["prior_covariance"]
    state.write_text(json.dumps(meta))
    t = Trainer(_cfg(steps=2), tmp_path / "r", images, labels=labels, resume=True, progress=False)
    assert t.step == 1


def test_cli_trains_resumes_and_reloads_a_label_component_chip(tmp_path):
    from typer.testing import CliRunner

    from lightgen.cli import app

    args = ["train", "--preset", "tiny", "--dataset", "printed-digits", "--train-limit", "40"]
    args += ["--batch-size", "4", "--prior", "mixture", "--condition-on", "components"]
    args += ["--prior-covariance", "diagonal", "--out", str(tmp_path)]
    first = CliRunner().invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--steps", "3", "--resume"])
    assert again.exit_code == 0, again.output
    system, cfg = load_trained(tmp_path)
    # printed digits have 10 classes: one component each, no fiber given up to a code
    assert (cfg.n_components, system.n_conditions, system.free_dim) == (10, 0, 16)
    bad = CliRunner().invoke(app, [*args, "--steps", "2", "--prior", "gaussian"])
    assert bad.exit_code != 0 and "prior='mixture'" in bad.output
