from pathlib import Path

import pytest

from lightgen.data.registry import load_dataset

EMOJI = Path(__file__).resolve().parents[3] / "shared" / "data" / "noto-emoji-512"


@pytest.mark.skipif(not EMOJI.is_dir(), reason="shared emoji data not present")
def test_emoji_black_is_the_same_artwork_on_a_black_background():
    white = load_dataset("emoji", root=EMOJI.parent, split="test", size=16, limit=8)
    black = load_dataset("emoji-black", root=EMOJI.parent, split="test", size=16, limit=8)
    assert (white.labels == black.labels).all()
    # corners are background: white there, black here
    assert white.images[:, :, 0, 0].min() > 0.99 and black.images[:, :, 0, 0].max() < 0.01
    # where the artwork is opaque the two agree
    opaque = (white.images - black.images).abs().amax(1) < 1e-6
    assert opaque.float().mean() > 0.05


def test_evaluation_classifier_gets_enough_steps_on_small_data():
    from lightgen.tasks.evaluate import classifier_epochs

    assert classifier_epochs(6112) == 3  # MNIST-size data keep the cached 3-epoch classifier
    assert classifier_epochs(273) == 100  # 3 batches per epoch -> 300 steps
