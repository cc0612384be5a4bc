"""ImageDataset: validation, indexing, subsets and fingerprints."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from lightgen.data.dataset import ImageDataset, tensor_fingerprint


def _ds(n=6):
    return ImageDataset(torch.rand(n, 1, 4, 4), torch.arange(n) % 3, ["a", "b", "c"], "toy")


def test_indexing_and_loader_give_image_label_pairs():
    ds = _ds()
    x, y = ds[4]
    assert x.shape == (1, 4, 4) and int(y) == 1
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 4, 4) and yb.tolist() == [0, 1, 2, 0]
    assert (ds.n_classes, ds.channels, ds.image_size, len(ds)) == (3, 1, (4, 4), 6)


def test_subset_keeps_rows_and_names():
    ds = _ds()
    sub = ds.subset([5, 0])
    assert torch.equal(sub.images, ds.images[[5, 0]]) and sub.labels.tolist() == [2, 0]
    assert sub.class_names == ds.class_names and sub.name == "toy"


def test_fingerprint_changes_with_any_pixel_or_label():
    ds = _ds()
    fp = ds.fingerprint()
    assert fp == ImageDataset(ds.images.clone(), ds.labels.clone(), "abc", "x").fingerprint()
    img = ds.images.clone()
    img[3, 0, 2, 2] += 1e-6
    assert ImageDataset(img, ds.labels, "abc", "toy").fingerprint() != fp
    lab = ds.labels.clone()
    lab[0] = 2
    assert ImageDataset(ds.images, lab, "abc", "toy").fingerprint() != fp
    assert tensor_fingerprint(torch.zeros(2)) != tensor_fingerprint(torch.zeros(3))


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        (torch.rand(3, 4, 4), torch.zeros(3), "4-D"),
        (torch.rand(3, 1, 4, 4).double(), torch.zeros(3), "float32"),
        (torch.rand(3, 1, 4, 4), torch.zeros(2), "labels must have shape"),
        (torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 3]), "labels must lie"),
    ],
)
def test_bad_inputs_raise_naming_the_problem(images, labels, match):
    with pytest.raises(ValueError, match=match):
        ImageDataset(images, labels, ["a", "b", "c"], "toy")
