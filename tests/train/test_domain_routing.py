"""Two unpaired input domains through one chip (routing='domain', source_dataset)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import BOGTSystem, Trainer, load_trained

DOMAIN = dict(preset="tiny", chip={"n_generators": 2}, routing="domain", source_dataset="shapes")


def _changed(before, system):
    after = [list(g.parameters()) for g in system.model.chip.generators]
    return [
        any(not torch.equal(a, b) for a, b in zip(x, y, strict=True))
        for x, y in zip(before, after, strict=True)
    ]


@pytest.mark.parametrize("domain", [0, 1])
def test_each_image_trains_only_the_generator_of_its_domain(tmp_path, domain):
    cfg = TrainConfig(**DOMAIN, steps=1, batch_size=4, checkpoint_every=1)
    t = Trainer(
        cfg, tmp_path, torch.rand(4, 1, 12, 12), progress=False, domains=torch.full((4,), domain)
    )
    before = [[p.detach().clone() for p in g.parameters()] for g in t.system.model.chip.generators]
    t.run()
    assert _changed(before, t.system) == [domain == 0, domain == 1]


def test_after_training_the_switch_sits_on_the_dataset_generator():
    system = BOGTSystem(TrainConfig(**DOMAIN))
    z = torch.randn(5, system.free_dim, dtype=torch.complex64)
    assert system.routing(z) == 0
    # and the forward pass follows the given routes exactly
    x = torch.rand(2, 1, 12, 12)
    noise = torch.zeros(2, system.model.latent_dim, dtype=torch.complex64)
    _, r0 = system(x, noise, 1.0, 0.1, routes=torch.tensor([0, 0]))
    _, r1 = system(x, noise, 1.0, 0.1, routes=torch.tensor([1, 1]))
    _, mixed = system(x, noise, 1.0, 0.1, routes=torch.tensor([0, 1]))
    torch.testing.assert_close(mixed, torch.stack([r0[0], r1[1]]))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(routing="domain", chip={"n_generators": 2}), "source_dataset"),
        (dict(source_dataset="mnist"), "routing='domain'"),
        (dict(routing="domain", source_dataset="mnist"), "n_generators=1"),
    ],
)
def test_domain_routing_config_is_refused_when_half_set(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**kwargs)


def test_trainer_needs_one_domain_per_image_exactly_with_domain_routing(tmp_path):
    images = torch.rand(4, 1, 12, 12)
    with pytest.raises(ValueError, match="domains"):
        Trainer(TrainConfig(**DOMAIN, batch_size=4), tmp_path / "a", images, progress=False)
    with pytest.raises(ValueError, match="domains"):
        Trainer(
            TrainConfig(preset="tiny", batch_size=4),
            tmp_path / "b",
            images,
            progress=False,
            domains=torch.zeros(4),
        )
    with pytest.raises(ValueError, match=r"0 \(dataset\) or 1"):
        Trainer(
            TrainConfig(**DOMAIN, batch_size=4),
            tmp_path / "c",
            images,
            progress=False,
            domains=torch.tensor([0, 1, 2, 0]),
        )


def test_cli_trains_on_both_sets_and_refuses_unmatched_classes(tmp_path):
    cfg = {
        **DOMAIN,
        "dataset": "printed-digits",
        "train_limit": 8,
        "steps": 2,
        "batch_size": 4,
        "checkpoint_every": 2,
    }
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    res = CliRunner().invoke(
        app, ["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "run")]
    )
    assert res.exit_code == 0, res.output
    saved = load_trained(tmp_path / "run")[1]
    assert saved.source_dataset == "shapes" and saved.routing == "domain"
    # components share the classes across domains: digits (10) and shapes differ
    cfg.update(condition_on="components", prior="mixture")
    (tmp_path / "d.json").write_text(json.dumps(cfg))
    res = CliRunner().invoke(
        app, ["train", "--config", str(tmp_path / "d.json"), "--out", str(tmp_path / "run2")]
    )
    assert res.exit_code != 0 and "same classes" in res.output
    assert not (tmp_path / "run2" / "checkpoints").exists()


def test_handwriting_augment_deforms_only_the_dataset_domain(tmp_path):
    from lightgen.data.deform import handwriting_like

    cfg = TrainConfig(**DOMAIN, input_augment="handwriting", batch_size=4)
    images = torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    domains = torch.tensor([0, 1, 0, 1, 1, 0])
    t = Trainer(cfg, tmp_path, images, progress=False, domains=domains)
    torch.testing.assert_close(t.targets, images)  # every camera image is scored against its input
    torch.testing.assert_close(t.images[domains == 1], images[domains == 1])  # real source data
    torch.testing.assert_close(
        t.images[domains == 0], handwriting_like(images[domains == 0], seed=0)
    )
    assert not torch.allclose(t.images[domains == 0], images[domains == 0])
