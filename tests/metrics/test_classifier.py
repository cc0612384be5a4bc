"""SmallCNN, its training, and the atomic, fingerprinted weight cache."""

from __future__ import annotations

import json

import pytest
import torch

import lightgen.metrics.classifier as clf
from lightgen.data.dataset import ImageDataset
from lightgen.data.registry import load_dataset
from lightgen.metrics.classifier import (
    SmallCNN,
    chip_artifacts,
    default_cache_dir,
    load_or_train_classifier,
    train_classifier,
)


@pytest.fixture(autouse=True)
def one_thread():
    # Two shared cores: a second OpenMP thread spins against other jobs and runs
    # convolutions several times slower; restore the caller's setting afterwards.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize(("size", "dim"), [(28, 1152), (64, 1152), (16, 512), (8, 128)])
def test_feature_size_follows_three_halvings_capped_at_3x3(size, dim):
    model = SmallCNN(1, 10, size)
    x = torch.rand(2, 1, size, size)
    assert model.feature_dim == dim and model.features(x).shape == (2, dim)
    assert model(x).shape == (2, 10)


def test_architecture_is_three_conv_relu_pool_blocks_and_one_linear():
    model = SmallCNN(3, 4, 28)
    kinds = [type(m).__name__ for m in model.conv]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d"] * 3
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 1152
    assert model.description == "SmallCNN(unknown) penultimate 1152-d"


def test_wrong_input_shape_and_bad_parameters_raise():
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        SmallCNN(1, 10, 28)(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="image_size"):
        SmallCNN(1, 10, 4)
    with pytest.raises(ValueError, match="n_classes"):
        SmallCNN(1, 1, 28)


def test_classifier_learns_shapes_above_90_percent():
    train = load_dataset("shapes", limit=600)
    test = load_dataset("shapes", split="test", limit=400)
    model, acc = train_classifier(train, epochs=4, batch_size=16, test_dataset=test, progress=False)
    assert acc > 0.9
    assert model.dataset_name == "shapes" and not model.training


def _tiny(n=48, seed=0, name="shapes"):
    ds = load_dataset("shapes", limit=n, size=16, seed=seed)
    return ImageDataset(ds.images, ds.labels, ds.class_names, name)


def test_training_is_reproducible_and_leaves_the_global_rng_alone():
    ds = _tiny()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    m1, a1 = train_classifier(ds, epochs=1, batch_size=16, progress=False)
    after = torch.rand(3)
    m2, a2 = train_classifier(ds, epochs=1, batch_size=16, progress=False)
    assert torch.equal(before, after)
    assert a1 == a2
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2)


def test_holdout_fraction_is_validated():
    with pytest.raises(ValueError, match="holdout_fraction"):
        train_classifier(_tiny(), holdout_fraction=1.0, progress=False)


def test_cache_dir_follows_lightgen_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "classifiers"
    monkeypatch.delenv("LIGHTGEN_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "lightgen", "classifiers")


@pytest.fixture
def count_training(monkeypatch):
    calls = []
    real = clf.train_classifier

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(clf, "train_classifier", counting)
    return calls


def _cached(ds, tmp_path, **kw):
    return load_or_train_classifier(
        "shapes", ds, cache_dir=tmp_path, epochs=1, progress=False, batch_size=16, **kw
    )


def test_cache_round_trip_reuses_weights_and_records_the_data(tmp_path, count_training):
    ds = _tiny()
    m1, a1 = _cached(ds, tmp_path)
    m2, a2 = _cached(ds, tmp_path)
    assert len(count_training) == 1 and a1 == a2
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".safetensors")
    meta = json.loads((tmp_path / files[0]).read_text())
    assert meta["dataset"] == "shapes" and meta["image_size"] == 16
    assert meta["n_classes"] == 4 and meta["fingerprint"] == ds.fingerprint()
    assert meta["accuracy"] == a1
    assert m2.description == "SmallCNN(shapes) penultimate 512-d"


def test_changed_training_data_is_retrained(tmp_path, count_training):
    _cached(_tiny(seed=0), tmp_path)
    _cached(_tiny(seed=1), tmp_path)
    assert len(count_training) == 2


def test_corrupt_weights_are_retrained_and_replaced(tmp_path, count_training):
    ds = _tiny()
    _cached(ds, tmp_path)
    weights = next(tmp_path.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated write
    _cached(ds, tmp_path)
    _cached(ds, tmp_path)
    assert len(count_training) == 2  # retrained once, then cached again


def test_mismatched_sidecar_is_retrained(tmp_path, count_training):
    ds = _tiny()
    _cached(ds, tmp_path)
    sidecar = next(tmp_path.glob("*.json"))
    meta = json.loads(sidecar.read_text())
    meta["epochs"] = 99
    sidecar.write_text(json.dumps(meta))
    _cached(ds, tmp_path)
    assert len(count_training) == 2
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_progress_bar_does_not_change_the_result():
    ds = _tiny(n=32)
    m1, a1 = train_classifier(ds, epochs=1, batch_size=16, progress=True)
    m2, a2 = train_classifier(ds, epochs=1, batch_size=16, progress=False)
    assert a1 == a2 and torch.equal(m1.fc.weight, m2.fc.weight)


# ----------------------------------------------------------- chip-artefact augmentation


def test_blur_keeps_a_constant_and_spreads_a_point_by_sigma_squared():
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(clf.gaussian_blur(flat, torch.tensor([1.5, 0.0])), flat, atol=1e-6)
    point = torch.zeros(1, 1, 33, 33)
    point[..., 16, 16] = 1.0
    out = clf.gaussian_blur(point, torch.tensor([2.0]))[0, 0]
    x = torch.arange(33.0) - 16
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)
    # second moment along x: sigma^2 = 4, less the tails cut at 3 sigma (~1-3 %)
    assert (out.sum(0) * x**2).sum().item() == pytest.approx(4.0, rel=0.02)
    assert (out.sum(0) * x**2).sum().item() < 4.0


def test_speckle_and_gain_have_mean_one_and_gamma_contrast():
    g = torch.Generator().manual_seed(0)
    x = torch.full((4000, 3, 8, 8), 0.1)  # low enough that clamping at 1 is negligible
    y = chip_artifacts(x, g, probability=1.0)
    assert y.mean().item() == pytest.approx(0.1, rel=0.02)  # E[speckle] = E[gain] = 1
    # per image: speckle contrast^2 = 1/k with k uniform on 1..10, gain cancels out
    c2 = (y.var(dim=(1, 2, 3)) / y.mean(dim=(1, 2, 3)) ** 2).mean().item()
    expected = sum(1 / k for k in range(1, 11)) / 10  # 0.293
    assert c2 == pytest.approx(expected, rel=0.1)


def test_augmentation_is_seeded_and_probability_zero_is_the_identity():
    x = torch.rand(16, 3, 12, 12)
    a = chip_artifacts(x, torch.Generator().manual_seed(3))
    b = chip_artifacts(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)
    changed = (a != x).flatten(1).any(1)
    assert 0 < int(changed.sum()) < 16  # about half the batch
    assert torch.equal(chip_artifacts(x, torch.Generator(), probability=0.0), x)


def test_augmented_judge_is_cached_apart_and_plain_entries_stay_valid(tmp_path, count_training):
    ds = _tiny()
    plain, _ = _cached(ds, tmp_path)
    aug, _ = _cached(ds, tmp_path, augment="chip")
    again, _ = _cached(ds, tmp_path, augment="chip")
    _cached(ds, tmp_path)
    assert len(count_training) == 2  # one plain, one augmented; both reused afterwards
    metas = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert sorted(m.get("augment", "none") for m in metas) == ["chip", "none"]
    assert any(
        not torch.equal(p, q) for p, q in zip(plain.parameters(), aug.parameters(), strict=True)
    )
    for p, q in zip(aug.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)


def test_unknown_augmentation_names_the_value():
    with pytest.raises(ValueError, match="augment='noise'"):
        train_classifier(_tiny(), augment="noise", progress=False)


def test_an_unwritable_cache_warns_before_training_and_still_returns_the_classifier(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="is not writable .*trained but not cached"):
        model, acc = _cached(_tiny(), blocker / "cache")
    assert isinstance(model, clf.SmallCNN) and 0 <= acc <= 1
    assert blocker.read_text() == "not a folder"
