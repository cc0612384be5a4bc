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


def _run_with_trainer_spy(out, setup, n_turntable: int, **kwargs):
    """``run_multiview`` on a tiny setup (2 steps); returns ``(report, seen)`` where
    ``seen`` holds the images and keyword tensors (conditions, targets) and config that
    the Trainer was built with."""
    from lightgen.tasks import multiview as mv

    seen = {}
    real = mv.Trainer

    def spy(cfg, run_dir, images, **kw):
        seen.update(images=images.clone(), cfg=cfg)
        seen.update({k: v.clone() for k, v in kw.items() if k != "progress" and v is not None})
        return real(cfg, run_dir, images, **kw)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(mv, "Trainer", spy)
        report = mv.run_multiview(
            out,
            steps=2,
            setup=setup,
            preset="tiny",
            train_options={"batch_size": 8},
            n_turntable=n_turntable,
            progress=False,
            **kwargs,
        )
    return report, seen


@pytest.fixture(scope="session")
def run_with_trainer_spy():
    """``run_with_trainer_spy(out, setup, n_turntable, **kw) -> (report, seen)``: the
    multi-view task on a tiny setup (2 steps), recording what the Trainer was built with."""
    return _run_with_trainer_spy
