"""Trainer with reconstruction targets other than the input (e.g. a cross-view objective)."""

import copy

import pytest
import torch
from safetensors.torch import load_file

from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig
from lightgen.train.objective import bogt_loss
from lightgen.train.priors import standard_normal
from lightgen.train.trainer import BOGTSystem, Trainer, _batch_indices


@pytest.fixture(scope="module")
def images():
    return make_printed_digits(32, size=12, seed=0)[0]


def _cfg(**kw):
    base = dict(preset="tiny", steps=2, batch_size=8, checkpoint_every=1, log_every=1, lr=0.02)
    return TrainConfig(**{**base, **kw})


def _params(run, step):
    return load_file(run / "checkpoints" / f"step-{step:06d}" / "model.safetensors")


def test_forward_scores_the_camera_against_the_targets_not_the_inputs(images):
    torch.manual_seed(0)
    system = BOGTSystem(_cfg()).eval()
    x, y = images[:4], images[4:8]
    noise = torch.zeros(4, system.model.latent_dim, dtype=torch.complex64)
    with torch.no_grad():
        own, recon = system(x, noise, 1.0, 0.1)
        cross, recon2 = system(x, noise, 1.0, 0.1, targets=y)
    assert torch.equal(recon, recon2)  # the encoder still sees x
    assert torch.allclose(cross.mse, (recon - y).square().mean())
    assert torch.allclose(own.mse, (recon - x).square().mean())
    assert not torch.allclose(cross.mse, own.mse)
    assert torch.allclose(cross.kl, own.kl)  # KL depends on the input only


def test_targets_equal_to_the_inputs_train_exactly_like_plain_bogt(tmp_path, images):
    Trainer(_cfg(), tmp_path / "plain", images, progress=False).run()
    Trainer(_cfg(), tmp_path / "same", images, progress=False, targets=images.clone()).run()
    a, b = _params(tmp_path / "plain", 2), _params(tmp_path / "same", 2)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_first_step_loss_is_the_bogt_loss_against_the_batch_targets(tmp_path, images):
    targets = images.flip(0)  # target i is another image than input i
    cfg = _cfg(steps=1)
    t = Trainer(cfg, tmp_path, images, progress=False, targets=targets)
    before = copy.deepcopy(t.system).eval()
    idx = _batch_indices(len(images), cfg.batch_size, 0, cfg.seed)
    noise = standard_normal(
        (len(idx), before.model.latent_dim),
        before.model.complex_latent,
        torch.Generator().manual_seed(cfg.seed + 1),
    )
    with torch.no_grad():
        mu, log_var = before.model.posterior(images[idx])
        recon = before.model.decode(mu + torch.exp(0.5 * log_var) * noise)
        kl = before.prior.kl(mu, log_var)
    want = bogt_loss(targets[idx], recon, kl, cfg.beta, cfg.sigma_x)
    got = t._train_step()
    assert got["mse"] == pytest.approx(want.mse.item(), rel=1e-5)
    assert got["loss"] == pytest.approx(want.loss.item(), rel=1e-5)
    wrong = bogt_loss(images[idx], recon, kl, cfg.beta, cfg.sigma_x)
    assert got["mse"] != pytest.approx(wrong.mse.item(), rel=1e-3)


def test_resume_with_targets_continues_exactly_as_an_uninterrupted_run(tmp_path, images):
    targets = images.roll(3, 0)
    Trainer(_cfg(steps=4), tmp_path / "straight", images, progress=False, targets=targets).run()
    Trainer(_cfg(steps=2), tmp_path / "split", images, progress=False, targets=targets).run()
    Trainer(
        _cfg(steps=4), tmp_path / "split", images, resume=True, progress=False, targets=targets
    ).run()
    a, b = _params(tmp_path / "straight", 4), _params(tmp_path / "split", 4)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_targets_of_another_shape_are_refused_with_the_fix(tmp_path, images):
    with pytest.raises(ValueError, match="one reconstruction target per training image"):
        Trainer(_cfg(), tmp_path, images, progress=False, targets=images[:-1])


def test_handwriting_augment_feeds_deformed_inputs_and_scores_the_originals(images, tmp_path):
    from lightgen.data.deform import handwriting_like

    t = Trainer(_cfg(input_augment="handwriting"), tmp_path / "hw", images, progress=False)
    assert torch.equal(t.targets, images.float())
    assert torch.equal(t.images, handwriting_like(images.float(), seed=0))
    assert not torch.allclose(t.images, t.targets)
    with pytest.raises(ValueError, match="makes the targets itself"):
        Trainer(
            _cfg(input_augment="handwriting"),
            tmp_path / "x",
            images,
            targets=images,
            progress=False,
        )


@pytest.mark.parametrize(
    "change",
    ["other targets", "no targets", "other images", "fewer images"],
)
def test_resume_on_other_training_tensors_is_refused_naming_them(tmp_path, images, change):
    targets = images.roll(3, 0)
    Trainer(_cfg(steps=1), tmp_path, images, progress=False, targets=targets).run()
    kw = {"images": images, "targets": targets}
    if change == "other targets":
        kw["targets"] = images.flip(0)
    elif change == "no targets":
        kw["targets"] = None
    elif change == "other images":
        kw["images"] = images.flip(0)
        kw["targets"] = targets.flip(0)
    else:
        kw["images"], kw["targets"] = images[:-8], targets[:-8]
    name = "targets" if "targets" in change else "images"
    with pytest.raises(ValueError, match=f"training {name} differ"):
        Trainer(_cfg(steps=2), tmp_path, resume=True, progress=False, **kw)


def test_resume_tolerates_last_bit_differences_of_the_data(tmp_path, images):
    Trainer(_cfg(steps=1), tmp_path, images, progress=False).run()
    nudged = images.float() + 1e-7 * torch.randn(images.shape)
    t = Trainer(_cfg(steps=2), tmp_path, nudged, resume=True, progress=False)
    assert t.step == 1


def test_a_checkpoint_without_a_data_summary_still_resumes(tmp_path, images):
    import json

    Trainer(_cfg(steps=1), tmp_path, images, progress=False).run()
    state = next((tmp_path / "checkpoints").glob("step-*")) / "state.json"
    meta = json.loads(state.read_text())
    assert set(meta["data"]) == {"images"}
    del meta["data"]
    state.write_text(json.dumps(meta))
    t = Trainer(_cfg(steps=2), tmp_path, images.flip(0), resume=True, progress=False)
    assert t.step == 1


def test_data_summary_reads_complex_and_integer_tensors():
    from lightgen.train.trainer import data_summary

    s = data_summary(
        {
            "c": torch.tensor([1 + 2j, 3 - 4j]),
            "l": torch.tensor([0, 1, 2]),
            "none": None,
        }
    )
    assert s["c"] == {"shape": [2], "chunk_means": [1.0, 2.0, 3.0, -4.0]}
    assert s["l"]["chunk_means"] == [0.0, 1.0, 2.0]
    assert "none" not in s
