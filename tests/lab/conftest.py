import pytest

from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig
from lightgen.train.system import load_trained
from lightgen.train.trainer import Trainer


@pytest.fixture(scope="session")
def tiny_lab_run(tmp_path_factory):
    """Run folder of a `tiny` chip (12 x 12, 16 fibers) trained 3 steps on printed digits."""
    run = tmp_path_factory.mktemp("tiny-lab-run")
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=3, batch_size=8, checkpoint_every=3)
    Trainer(cfg, run, images, progress=False).run()
    return run


@pytest.fixture
def tiny_system(tiny_lab_run):
    return load_trained(tiny_lab_run)[0]


@pytest.fixture
def digits():
    return make_printed_digits(16, size=12, seed=1)[0]
