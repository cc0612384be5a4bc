"""The targets of benchmarks/digit_oracle.py (its references are only as honest as these)."""

import importlib.util
from pathlib import Path

import torch

from lightgen.data.registry import load_dataset
from lightgen.tasks.style import printed_targets

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "digit_oracle.py"


def _module():
    spec = importlib.util.spec_from_file_location("digit_oracle", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_glyph_targets_are_the_label_glyphs():
    labels = torch.tensor([3, 0, 9, 3])
    got = _module().make_targets("glyph", labels, seed=0)
    torch.testing.assert_close(got, printed_targets(labels))


def test_class_matched_targets_are_printed_training_images_of_the_same_label():
    labels = torch.arange(10).repeat(3)
    got = _module().make_targets("class-matched", labels, seed=0)
    prints = load_dataset("printed-digits", split="train", size=28, seed=0)
    flat = prints.images.flatten(1)
    for target, label in zip(got, labels, strict=True):
        hit = (flat == target.flatten()).all(1).nonzero().squeeze(1)
        assert hit.numel() >= 1, "a target is not a printed-digits training image"
        assert (prints.labels[hit] == label).all()
    # random within the class: the three targets of one label are not all the same image
    assert not torch.equal(got[0], got[10]) or not torch.equal(got[10], got[20])
