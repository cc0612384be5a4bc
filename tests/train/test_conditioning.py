import pytest
import torch

from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.generate import reconstruct, sample
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images = make_printed_digits(32, size=12, seed=0)[0]
    angle = torch.linspace(0, 6.28, 32)
    cond = torch.stack(
        [torch.polar(torch.ones(32), angle), torch.ones(32, dtype=torch.complex64)], 1
    )
    cfg = TrainConfig(preset="tiny", steps=3, batch_size=8, condition_fibers=2)
    t = Trainer(cfg, tmp_path_factory.mktemp("c"), images, conditions=cond, progress=False)
    t.run()
    return t.system.eval(), images, cond


def test_prior_covers_only_the_free_fibers(trained):
    system, _, _ = trained
    assert system.prior.dim == system.model.latent_dim - 2


def test_injected_conditions_alone_change_the_generated_image(trained):
    system, _, cond = trained
    a, za = sample(system, 2, seed=1, conditions=cond[:2])
    b, zb = sample(system, 2, seed=1, conditions=cond[2:4] * 3)
    assert torch.equal(za[:, :-2], zb[:, :-2])
    assert not torch.allclose(a, b)


def test_conditions_are_required_and_shape_checked(trained):
    system, images, cond = trained
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        sample(system, 2, seed=0)
    with pytest.raises(ValueError, match="conditions of shape"):
        reconstruct(system, images[:2], cond[:2, :1])


def test_trainer_requires_conditions_when_fibers_are_reserved(tmp_path):
    cfg = TrainConfig(preset="tiny", steps=1, batch_size=8, condition_fibers=1)
    with pytest.raises(ValueError, match="needs conditions"):
        Trainer(cfg, tmp_path, make_printed_digits(16, size=12, seed=0)[0], progress=False)
