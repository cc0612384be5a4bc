"""load_dataset: data roots, split rules, conversions, errors, and the real shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightgen.data.errors import DataFileError, MissingDataError
from lightgen.data.idx import write_idx
from lightgen.data.registry import (
    FASHION_CLASSES,
    default_data_root,
    fashion_split_sizes,
    folder_split,
    load_dataset,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _idx_set(folder: Path, prefix: str, n: int, offset: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images = (np.arange(n, dtype=np.uint8)[:, None, None] + offset) * np.ones((1, 28, 28), np.uint8)
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


@pytest.fixture
def idx_root(tmp_path: Path) -> Path:
    _idx_set(tmp_path / "mnist", "train", 10)
    _idx_set(tmp_path / "mnist", "t10k", 4, offset=100)
    _idx_set(tmp_path / "fashion-mnist", "train", 20)
    return tmp_path


def test_mnist_test_split_is_t10k_and_all_is_both(idx_root):
    train = load_dataset("mnist", root=idx_root)
    test = load_dataset("mnist", root=idx_root, split="test")
    both = load_dataset("mnist", root=idx_root, split="all")
    assert (len(train), len(test), len(both)) == (10, 4, 14)
    assert train.images.shape == (10, 1, 28, 28) and train.images.dtype == torch.float32
    # pixel value k/255 identifies image k
    torch.testing.assert_close(test.images[:, 0, 0, 0], torch.arange(100, 104) / 255.0)
    assert train.labels.tolist() == [i % 10 for i in range(10)]
    assert train.class_names == tuple("0123456789") and train.name == "mnist"


def test_fashion_without_t10k_holds_out_the_last_15_percent(idx_root):
    train = load_dataset("fashion-mnist", root=idx_root)
    test = load_dataset("fashion-mnist", root=idx_root, split="test")
    assert (len(train), len(test)) == (17, 3)  # round(0.15 * 20) = 3
    ids = torch.cat([train.images, test.images])[:, 0, 0, 0] * 255
    torch.testing.assert_close(ids, torch.arange(20.0))  # disjoint, in file order
    assert test.class_names == FASHION_CLASSES


def test_fashion_split_sizes_for_the_shared_subset():
    assert fashion_split_sizes(8226) == (6992, 1234)


def test_fashion_uses_t10k_when_present(idx_root):
    _idx_set(idx_root / "fashion-mnist", "t10k", 5)
    assert len(load_dataset("fashion-mnist", root=idx_root, split="test")) == 5
    assert len(load_dataset("fashion-mnist", root=idx_root)) == 20


def test_root_may_be_the_data_set_folder_itself(idx_root):
    assert len(load_dataset("mnist", root=idx_root / "mnist")) == 10


def test_size_limit_and_channels_are_applied(idx_root):
    ds = load_dataset("mnist", root=idx_root, size=14, limit=3, channels=3)
    assert ds.images.shape == (3, 3, 14, 14)
    # resizing a uniform image leaves it uniform
    torch.testing.assert_close(ds.images[2], torch.full((3, 14, 14), 2 / 255))


def test_mismatched_image_and_label_counts_raise(idx_root):
    write_idx(idx_root / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(DataFileError, match=r"10 images.*9 labels"):
        load_dataset("mnist", root=idx_root)


def test_missing_idx_file_names_file_and_data_root(idx_root):
    (idx_root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\.gz.*data-root"):
        load_dataset("mnist", root=idx_root, split="test")


def test_missing_data_set_folder_names_it(tmp_path):
    with pytest.raises(MissingDataError, match="mnist"):
        load_dataset("mnist", root=tmp_path)


def _emoji_like(root: Path, counts: dict[str, int]) -> Path:
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGBA", (16, 16), (i, 0, 0, 255)).save(root / cls / f"u{i:03d}.png")
    return root


def test_folder_split_is_every_fifth_file_per_class_round_robin():
    labels = [0] * 7 + [1] * 5
    assert folder_split(labels, "test") == [4, 11]
    assert folder_split(labels, "train") == [0, 7, 1, 8, 2, 9, 3, 10, 5, 6]
    assert sorted(folder_split(labels, "all")) == list(range(12))


def test_emoji_layout_loads_with_fixed_split_and_balanced_prefix(tmp_path):
    root = _emoji_like(tmp_path / "noto-emoji-512", {"animal": 7, "face": 5})
    train = load_dataset("emoji", root=tmp_path, size=8)
    test = load_dataset("emoji", root=tmp_path, split="test", size=8, seed=123)
    assert (len(train), len(test)) == (10, 2)
    assert train.images.shape == (10, 3, 8, 8) and train.class_names == ("animal", "face")
    assert train.labels[:4].tolist() == [0, 1, 0, 1]  # round-robin: limit stays balanced
    # test = 5th file of each class: red value 4/255
    torch.testing.assert_close(test.images[:, 0, 0, 0], torch.full((2,), 4 / 255))
    grey = load_dataset("folder", root=root, split="all", channels=1, limit=3)
    assert grey.images.shape == (3, 1, 16, 16) and grey.name == "folder"


def test_folder_split_with_too_few_images_is_reported(tmp_path):
    _emoji_like(tmp_path, {"a": 2})
    with pytest.raises(DataFileError, match="split='all'"):
        load_dataset("folder", root=tmp_path, split="test")


@pytest.mark.parametrize("name", ["shapes", "printed-digits"])
def test_procedural_sets_need_no_files_and_splits_differ(name, monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTGEN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data here
    train = load_dataset(name, limit=40, seed=5)
    test = load_dataset(name, split="test", limit=40, seed=5)
    again = load_dataset(name.replace("-", "_").upper(), limit=40, seed=5)
    assert len(train) == 40 and train.images.shape[1:] == (1, 28, 28)
    assert torch.equal(train.images, again.images)
    assert not torch.equal(train.images, test.images)
    counts = torch.bincount(train.labels, minlength=train.n_classes)
    assert int(counts.max() - counts.min()) <= 1


def test_procedural_size_renders_natively(monkeypatch):
    ds = load_dataset("shapes", limit=8, size=64)
    assert ds.images.shape == (8, 1, 64, 64)


def test_default_root_prefers_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTGEN_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.setenv("LIGHTGEN_DATA", str(tmp_path / "missing"))
    with pytest.raises(MissingDataError, match="LIGHTGEN_DATA"):
        default_data_root()


def test_default_root_falls_back_to_shared_data_beside_the_project(monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTGEN_DATA", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert default_data_root() == (tmp_path / "shared" / "data").resolve()


def test_no_root_anywhere_names_both_places(monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTGEN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingDataError, match=r"LIGHTGEN_DATA.*shared/data"):
        default_data_root()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"name": "cifar"}, "name"),
        ({"name": "shapes", "split": "val"}, "split"),
        ({"name": "shapes", "size": 0}, "size"),
        ({"name": "shapes", "limit": 0}, "limit"),
        ({"name": "shapes", "channels": 2}, "channels"),
        ({"name": "shapes", "seed": -1}, "seed"),
        ({"name": "folder"}, "root"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=param):
        load_dataset(**kwargs)


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")


@needs_shared
def test_shared_mnist_subset_has_documented_counts():
    train = load_dataset("mnist", root=SHARED)
    test = load_dataset("mnist", root=SHARED, split="test")
    assert (len(train), len(test)) == (6112, 5000)
    assert float(train.images.max()) == 1.0 and float(train.images.min()) == 0.0
    assert set(train.labels.unique().tolist()) == set(range(10))


@needs_shared
def test_shared_fashion_subset_splits_8226_into_6992_and_1234():
    train = load_dataset("fashion-mnist", root=SHARED)
    test = load_dataset("fashion-mnist", root=SHARED, split="test")
    assert (len(train), len(test)) == (6992, 1234)


@needs_shared
def test_shared_emoji_set_has_340_images_in_4_classes():
    ds = load_dataset("emoji", root=SHARED, split="all", size=64)
    assert ds.images.shape == (340, 3, 64, 64)
    assert ds.class_names == ("animal", "face", "food", "plant")
    assert torch.bincount(ds.labels).tolist() == [111, 112, 91, 26]
    # transparent surroundings composited onto white: corners are white
    torch.testing.assert_close(ds.images[:, :, 0, 0], torch.ones(340, 3), atol=0.02, rtol=0)
