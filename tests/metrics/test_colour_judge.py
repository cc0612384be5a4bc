"""The shape judge's colour randomisation (``augment="colour"``)."""

from __future__ import annotations

import math

import torch

from lightgen.data.dataset import ImageDataset
from lightgen.metrics.classifier import (
    colour_randomised,
    hue_rotation_matrix,
    predict,
    train_classifier,
)


def _rgb(n: int = 8, size: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_hue_rotation_keeps_grey_level_and_maps_grey_to_itself():
    rot = hue_rotation_matrix(torch.tensor([0.3, 2.0, 5.0], dtype=torch.float64))
    ones = torch.ones(3, dtype=torch.float64)
    assert torch.allclose(rot @ ones, ones.expand(3, 3))  # grey stays grey
    assert torch.allclose(ones @ rot, ones.expand(3, 3))  # channel sum (grey level) kept
    assert torch.allclose(
        rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    )


def test_hue_rotation_by_a_third_turn_cycles_the_channels():
    rot = hue_rotation_matrix(torch.tensor([2 * math.pi / 3], dtype=torch.float64))[0]
    red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(rot @ red, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12)


def test_colour_randomisation_is_seeded_keeps_range_and_changes_colour_not_grey_shape():
    x = _rgb()
    a = colour_randomised(x, torch.Generator().manual_seed(5))
    b = colour_randomised(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, x)
    # before clipping the channel mean is kept; clipping only touches saturated pixels
    mean_diff = (a.mean(1) - x.mean(1)).abs()
    assert float(mean_diff.median()) < 0.05


def test_grey_images_are_returned_unchanged_and_greyscale_probability_one_greys_all():
    grey = torch.rand(4, 1, 5, 5)
    assert torch.equal(colour_randomised(grey, torch.Generator().manual_seed(0)), grey)
    out = colour_randomised(_rgb(), torch.Generator().manual_seed(0), greyscale_probability=1.0)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])


def _confounded(n: int, seed: int, swap: bool = False) -> ImageDataset:
    """Class 0 filled squares, class 1 square outlines; in training class 0 is red and
    class 1 blue (colour predicts the class); ``swap`` paints them the other way round."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    x = torch.zeros(n, 3, 16, 16)
    for i, lab in enumerate(labels.tolist()):
        r, c = torch.randint(0, 7, (2,), generator=g).tolist()
        channel = 0 if (lab == 0) != swap else 2
        x[i, channel, r : r + 9, c : c + 9] = 0.9
        if lab == 1:
            x[i, channel, r + 2 : r + 7, c + 2 : c + 7] = 0.0
    return ImageDataset(x, labels, ("square", "outline"), "confounded")


def test_the_colour_randomised_judge_reads_shape_where_a_plain_judge_reads_colour():
    train, swapped = _confounded(200, 0), _confounded(200, 1, swap=True)
    kw = dict(epochs=4, batch_size=32, test_dataset=swapped, progress=False)
    _, plain_acc = train_classifier(train, **kw)
    shape, shape_acc = train_classifier(train, augment="colour", **kw)
    assert plain_acc < 0.5  # follows the colour, so the swapped colours fool it
    assert shape_acc > 0.9  # follows the shape
    assert (predict(shape, swapped.images) == swapped.labels).float().mean() == shape_acc
