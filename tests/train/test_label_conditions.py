"""Class-conditional training: labels drive one injection fiber per class (one-hot code)."""

import pytest
import torch

from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.generate import sample
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.trainer import (
    BOGTSystem,
    Trainer,
    _batch_indices,
    condition_latent_index,
    label_conditions,
    load_trained,
)

RGB = {
    "wavelengths_m": [640e-9, 532e-9, 450e-9],
    "image_channels": 3,
}  # JSON-like, as a TOML config


def _cfg(**kw) -> TrainConfig:
    base = dict(preset="tiny", steps=2, batch_size=4, checkpoint_every=2, condition_on="labels")
    return TrainConfig(**{**base, **kw}).with_label_conditions(3)


def _data(n: int = 12, channels: int = 1):
    images = make_printed_digits(n, size=12, seed=0)[0]
    labels = torch.arange(n) % 3
    return images.expand(-1, channels, -1, -1).clone(), labels


# ---------------------------------------------------------------- codes and config
def test_label_codes_are_one_hot_at_the_given_amplitude_with_zero_phase():
    codes = label_conditions(torch.tensor([2, 0, 1, 2]), 4, amplitude=1.5)
    assert codes.shape == (4, 4) and codes.dtype == torch.complex64
    expect = torch.zeros(4, 4)
    expect[[0, 1, 2, 3], [2, 0, 1, 2]] = 1.5
    assert torch.equal(codes.real, expect)
    assert torch.equal(codes.imag, torch.zeros(4, 4))


@pytest.mark.parametrize(
    ("labels", "amp", "word"), [([0, 4], 1.0, "labels"), ([0, 1], 0.0, "amplitude")]
)
def test_label_codes_reject_out_of_range_labels_and_dark_amplitude(labels, amp, word):
    with pytest.raises(ValueError, match=word):
        label_conditions(torch.tensor(labels), 4, amp)


def test_label_conditioning_sets_one_condition_fiber_per_class():
    cfg = TrainConfig(condition_on="labels")
    assert cfg.condition_fibers == 0
    assert cfg.with_label_conditions(4).condition_fibers == 4
    assert TrainConfig().with_label_conditions(4).condition_fibers == 0  # unsupervised: unchanged


@pytest.mark.parametrize(("fibers", "n_classes", "word"), [(3, 4, "must be 4"), (0, 1, ">= 2")])
def test_label_conditioning_rejects_wrong_fiber_count_or_unlabelled_data(fibers, n_classes, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(condition_on="labels", condition_fibers=fibers).with_label_conditions(n_classes)


def test_all_wavelength_codes_without_conditions_are_rejected():
    with pytest.raises(ValueError, match="condition_all_wavelengths"):
        load_train_config({"condition_all_wavelengths": True})


# ---------------------------------------------------------------- latent layout
def test_default_condition_dims_are_the_last_fibers_of_the_last_wavelength():
    # latent index = wavelength * n_fibers + fiber: 3 x 16 -> last 4 dims = fibers 12-15 at 450 nm
    assert condition_latent_index(48, 4, 3, False).tolist() == [44, 45, 46, 47]


def test_all_wavelength_condition_dims_are_the_same_fibers_at_every_wavelength():
    idx = condition_latent_index(48, 4, 3, True).tolist()
    assert idx == [12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47]


def test_all_wavelength_code_reaches_each_colour_and_free_dims_round_trip():
    system = BOGTSystem(_cfg(chip=RGB, condition_all_wavelengths=True))
    assert system.free_dim == 48 - 3 * 3 and system.prior.dim == 39
    free = torch.randn(2, 39, dtype=torch.complex64)
    codes = label_conditions(torch.tensor([1, 2]), 3, 2.0)
    z = system.with_conditions(free, codes).view(2, 3, 16)
    for wl in range(3):
        assert torch.equal(z[:, wl, 13:], codes)  # fibers 13-15 carry the code at every wavelength
    assert torch.equal(system.free_part(z.flatten(1)), free)
    # a full-width posterior sample keeps its free dims and gets the code
    again = system.with_conditions(z.flatten(1) * 0 + 7, codes)
    assert torch.equal(system.condition_part(again), codes)


# ---------------------------------------------------------------- trainer
def test_trainer_injects_the_one_hot_code_of_each_batch_images_label(tmp_path):
    cfg = _cfg(condition_amplitude=1.5)
    images, labels = _data()
    t = Trainer(cfg, tmp_path, images, progress=False, labels=labels)
    assert torch.equal(t.conditions, label_conditions(labels, 3, 1.5))
    seen = []
    decode = t.system.model.decode
    t.system.model.decode = lambda z, g=0: seen.append(z.detach()) or decode(z, g)
    idx = _batch_indices(len(images), cfg.batch_size, 0, cfg.seed)
    t._train_step()
    assert torch.equal(t.system.condition_part(seen[0]), label_conditions(labels[idx], 3, 1.5))


def test_trainer_rejects_missing_or_unexpected_labels(tmp_path):
    images, labels = _data()
    with pytest.raises(ValueError, match=r"labels=dataset\.labels"):
        Trainer(_cfg(), tmp_path, images, progress=False)
    with pytest.raises(ValueError, match="condition_on='none'"):
        Trainer(TrainConfig(preset="tiny", batch_size=4), tmp_path, images, labels=labels)
    unset = TrainConfig(preset="tiny", batch_size=4, condition_on="labels")
    with pytest.raises(ValueError, match="with_label_conditions"):
        Trainer(unset, tmp_path, images, labels=labels, progress=False)
    with pytest.raises(ValueError, match="one label per training image"):
        Trainer(_cfg(), tmp_path, images, labels=labels[:5], progress=False)


def test_resumed_class_conditional_run_continues_and_reloads_with_its_codes(tmp_path):
    images, labels = _data(channels=3)
    cfg = _cfg(chip=RGB, condition_all_wavelengths=True)
    Trainer(cfg, tmp_path, images, progress=False, labels=labels).run()
    more = cfg.model_copy(update={"steps": 4})
    res = Trainer(more, tmp_path, images, resume=True, progress=False, labels=labels).run()
    assert res.steps == 4
    system, loaded = load_trained(tmp_path)
    assert loaded.condition_on == "labels" and loaded.condition_fibers == 3
    a, _ = sample(system, 2, seed=0, conditions=label_conditions(torch.tensor([0, 0]), 3, 2.0))
    b, _ = sample(system, 2, seed=0, conditions=label_conditions(torch.tensor([1, 1]), 3, 2.0))
    assert a.shape == (2, 3, 12, 12) and not torch.allclose(a, b)  # the code changes the image


# ---------------------------------------------------------------- command line
def test_cli_trains_resumes_and_reloads_a_class_conditional_chip(tmp_path):
    from typer.testing import CliRunner

    from lightgen.cli import app

    args = ["train", "--preset", "tiny", "--dataset", "printed-digits", "--train-limit", "40"]
    args += ["--batch-size", "4", "--condition-on", "labels", "--condition-amplitude", "3"]
    args += ["--out", str(tmp_path)]
    first = CliRunner().invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*args, "--steps", "3", "--resume"])
    assert again.exit_code == 0, again.output
    system, cfg = load_trained(tmp_path)
    # printed digits have 10 classes: 10 of the tiny chip's 16 fibers carry the code
    assert (cfg.condition_fibers, cfg.condition_amplitude, system.free_dim) == (10, 3.0, 6)
    bad = CliRunner().invoke(app, [*args, "--steps", "2", "--condition-on", "colours"])
    assert bad.exit_code != 0 and "condition_on" in bad.output


def test_with_conditions_names_a_latent_of_the_wrong_length():
    system = BOGTSystem(TrainConfig(preset="tiny", condition_fibers=2))
    with pytest.raises(ValueError, match="latent has 5 dims; pass the 14 free dims or the full 16"):
        system.with_conditions(torch.zeros(3, 5, dtype=torch.complex64), torch.zeros(3, 2))
