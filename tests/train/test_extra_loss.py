"""The trainer's extra-loss hook (Trainer(..., extra_loss=...)) and its TrainingData."""

import csv

import pytest
import torch
from safetensors.torch import load_file

from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig
from lightgen.train.data import TrainingData
from lightgen.train.trainer import ExtraLoss, TrainBatch, Trainer


@pytest.fixture(scope="module")
def digits():
    return make_printed_digits(32, size=12, seed=0)


def _cfg(**kw):
    base = dict(preset="tiny", steps=2, batch_size=8, checkpoint_every=1, log_every=1, lr=0.02)
    return TrainConfig(**{**base, **kw})


def _params(run, step):
    return load_file(run / "checkpoints" / f"step-{step:06d}" / "model.safetensors")


def _rows(run):
    with open(run / "log.csv", newline="") as f:
        return list(csv.reader(f))


class Zero:
    name = "zero"

    def __call__(self, batch: TrainBatch) -> torch.Tensor:
        return torch.zeros(())


class MeanCamera:
    """Pushes the camera's mean brightness down: a term the BOGT loss does not have."""

    name = "mean-camera"

    def __init__(self):
        self.seen: list[TrainBatch] = []

    def __call__(self, batch: TrainBatch) -> torch.Tensor:
        self.seen.append(batch)
        z = batch.system.model.posterior(batch.images)[0]
        return 100.0 * batch.system.model.decode(z).mean()


def test_a_zero_extra_loss_trains_exactly_like_plain_bogt(tmp_path, digits):
    images = digits[0]
    Trainer(_cfg(), tmp_path / "plain", images, progress=False).run()
    Trainer(_cfg(), tmp_path / "zero", images, progress=False, extra_loss=Zero()).run()
    a, b = _params(tmp_path / "plain", 2), _params(tmp_path / "zero", 2)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    plain, zero = _rows(tmp_path / "plain"), _rows(tmp_path / "zero")
    assert plain[0] == ["step", "loss", "recon", "kl", "mse", "seconds"]
    assert zero[0] == ["step", "loss", "recon", "kl", "mse", "extra", "seconds"]
    for p, z in zip(plain[1:], zero[1:], strict=True):
        assert p[:5] == z[:5] and float(z[5]) == 0.0


def test_the_extra_loss_sees_the_batch_and_changes_the_training(tmp_path, digits):
    images, labels = digits
    cfg = _cfg(prior="mixture", n_components=10, condition_on="components")
    term = MeanCamera()
    assert isinstance(term, ExtraLoss)
    t = Trainer(cfg, tmp_path / "x", images, labels=labels, progress=False, extra_loss=term)
    t.run()
    assert [b.step for b in term.seen] == [0, 1]
    first = term.seen[0]
    assert first.images.shape == (8, 1, 12, 12) and first.labels.shape == (8,)
    assert first.system is t.system and first.terms is not None
    # the batch's labels are those of the batch's images
    idx = [int((images == im).flatten(1).all(1).nonzero()[0]) for im in first.images]
    assert torch.equal(first.labels, labels[idx])
    Trainer(cfg, tmp_path / "plain", images, labels=labels, progress=False).run()
    a, b = _params(tmp_path / "plain", 2), _params(tmp_path / "x", 2)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    row = _rows(tmp_path / "x")[1]
    assert float(row[1]) == pytest.approx(float(row[2]) + float(row[3]) + float(row[5]), rel=1e-4)


def test_a_run_resumes_only_with_the_same_extra_loss(tmp_path, digits):
    images = digits[0]
    Trainer(_cfg(steps=1), tmp_path / "r", images, progress=False, extra_loss=Zero()).run()
    with pytest.raises(ValueError, match="extra_loss 'zero', now None"):
        Trainer(_cfg(), tmp_path / "r", images, resume=True, progress=False)
    Trainer(_cfg(), tmp_path / "r", images, resume=True, progress=False, extra_loss=Zero()).run()
    assert [r[0] for r in _rows(tmp_path / "r")] == ["step", "1", "2"]


def test_an_extra_loss_that_is_not_a_scalar_is_refused(tmp_path, digits):
    def per_image(batch):
        return batch.images.mean((1, 2, 3))

    t = Trainer(_cfg(), tmp_path / "v", digits[0], progress=False, extra_loss=per_image)
    with pytest.raises(ValueError, match=r"shape \(8,\); it must return one scalar"):
        t.run()


def test_training_data_is_the_trainers_data_and_refuses_extra_tensors(tmp_path, digits):
    images, labels = digits
    cfg = _cfg(prior="mixture", n_components=10, condition_on="components")
    data = TrainingData.from_tensors(cfg, images, labels=labels)
    assert torch.equal(data.components, labels) and data.targets is None and len(data) == 32
    Trainer(cfg, tmp_path / "a", data, progress=False).run()
    Trainer(cfg, tmp_path / "b", images, labels=labels, progress=False).run()
    a, b = _params(tmp_path / "a", 2), _params(tmp_path / "b", 2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="labels given beside a TrainingData"):
        Trainer(cfg, tmp_path / "c", data, labels=labels, progress=False)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"labels": torch.zeros(32, dtype=torch.long)}, "labels given but condition_on='none'"),
        ({"targets": torch.zeros(3, 1, 12, 12)}, "targets have shape (3, 1, 12, 12)"),
        ({"domains": torch.zeros(32)}, "but domains is given; pass domains"),
    ],
)
def test_training_data_names_the_bad_tensor(digits, kw, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        TrainingData.from_tensors(_cfg(), digits[0], **kw)


def test_training_data_refuses_images_of_the_wrong_size(digits):
    with pytest.raises(ValueError, match="Load the data with size=12"):
        TrainingData.from_tensors(_cfg(), torch.zeros(32, 1, 28, 28))


def test_training_data_built_for_another_config_is_refused(tmp_path, digits):
    images, labels = digits
    comp = _cfg(prior="mixture", n_components=10, condition_on="components")
    data = TrainingData.from_tensors(comp, images, labels=labels)
    with pytest.raises(ValueError, match="components exactly with condition_on='components'"):
        Trainer(_cfg(), tmp_path / "a", data, progress=False)
    with pytest.raises(ValueError, match="at least batch_size=64 images"):
        Trainer(comp.model_copy(update={"batch_size": 64}), tmp_path / "b", data, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
