"""Shared fixtures: one tiny chip trained for a few BOGT steps, reused by every task test."""

import pytest

from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer, load_trained


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Run folder of a `tiny` chip trained 3 steps on printed digits (12 x 12)."""
    run = tmp_path_factory.mktemp("tiny-run")
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=3, batch_size=8, checkpoint_every=3)
    Trainer(cfg, run, images, progress=False).run()
    return run


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """``(system, cfg)`` of :func:`tiny_run`, loaded afresh for each test module."""
    return load_trained(tiny_run)
