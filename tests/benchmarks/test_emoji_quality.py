"""benchmarks/emoji_quality.py's pieces on tiny tensors (the full run needs the shared set)."""

import pytest
import torch

from lightgen.data.dataset import ImageDataset
from lightgen.metrics.classifier import train_classifier


def test_pca_rows_start_at_the_mean_image_and_improve_with_k(load_script):
    mod = load_script("emoji_quality")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 12, 12, generator=g).cumsum(-1) / 12
    rows = mod.pca_rows(x[:40], x[40:], [0, 4, 16])
    assert [r["name"] for r in rows] == ["mean training image", "PCA k=4", "PCA k=16"]
    psnrs = [r["psnr_db"] for r in rows]
    assert psnrs == sorted(psnrs)


def test_judge_rows_report_real_recoloured_and_shuffled_accuracy(load_script):
    mod = load_script("emoji_quality")
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (64,), generator=g)
    x = torch.zeros(64, 3, 16, 16)
    x[labels == 0, :, 4:12, 4:12] = 0.8  # class 0: a square in the middle
    x[labels == 1, :, :, :4] = 0.8  # class 1: a bar on the left
    ds = ImageDataset(x, labels, ("square", "bar"), "toy")
    clf, _ = train_classifier(ds, epochs=8, batch_size=16, test_dataset=ds, progress=False)
    rows = mod.judge_rows(clf, x, labels, seed=0)
    assert set(rows) == {
        "accuracy_real_test",
        "accuracy_real_test_colour_randomised",
        "accuracy_real_test_block_shuffled",
    }
    assert rows["accuracy_real_test"] > 0.9
    assert rows["accuracy_real_test_block_shuffled"] < rows["accuracy_real_test"]


def test_pca_rows_chunked_equal_one_projection_of_all_test_images(load_script):
    from lightgen.metrics.image import psnr, ssim
    from lightgen.metrics.pca import pca_reconstruction

    mod = load_script("emoji_quality")
    g = torch.Generator().manual_seed(2)
    x = torch.rand(60, 3, 12, 12, generator=g).cumsum(-1) / 12
    rows = mod.pca_rows(x[:40], x[40:], [0, 3, 9], chunk=7)
    for r in rows:
        rec = pca_reconstruction(x[:40], x[40:], r["k"])
        assert abs(r["psnr_db"] - psnr(rec, x[40:]).item()) < 1e-4
        assert abs(r["ssim"] - ssim(rec, x[40:]).item()) < 1e-6
        assert r["n_test"] == 20


def test_held_out_subset_is_stratified_seeded_and_none_for_all(load_script):
    mod = load_script("emoji_quality")
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    idx = mod.held_out_subset(labels, 10, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [5, 3, 2]
    assert idx.tolist() == sorted(set(idx.tolist()))
    assert torch.equal(idx, mod.held_out_subset(labels, 10, seed=0))
    assert not torch.equal(idx, mod.held_out_subset(labels, 10, seed=1))
    # largest remainders: 7 of (50, 30, 20) -> exact (3.5, 2.1, 1.4) -> (4, 2, 1)
    assert torch.bincount(labels[mod.held_out_subset(labels, 7, seed=0)]).tolist() == [4, 2, 1]
    assert mod.held_out_subset(labels, None, seed=0) is None
    assert mod.held_out_subset(labels, 100, seed=0) is None


def test_pca_rows_take_ssim_on_the_masked_images_and_psnr_on_all(load_script):
    from lightgen.metrics.image import psnr, ssim
    from lightgen.metrics.pca import pca_reconstruction

    mod = load_script("emoji_quality")
    g = torch.Generator().manual_seed(3)
    x = torch.rand(60, 3, 12, 12, generator=g).cumsum(-1) / 12
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[1, 8, 9, 17]] = True
    (row,) = mod.pca_rows(x[:40], x[40:], [5], chunk=6, ssim_mask=mask)
    rec = pca_reconstruction(x[:40], x[40:], 5)
    assert abs(row["psnr_db"] - psnr(rec, x[40:]).item()) < 1e-4
    assert abs(row["ssim"] - ssim(rec[mask], x[40:][mask]).item()) < 1e-6
    assert abs(row["ssim"] - ssim(rec, x[40:]).item()) > 1e-6
    assert (row["n_test"], row["n_test_ssim"]) == (20, 4)


def test_local_rows_sit_between_the_mean_image_and_pca_and_bad_specs_are_named(load_script):
    import argparse

    eq = load_script("emoji_quality")
    g = torch.Generator().manual_seed(0)
    low = torch.rand(50, 3, 4, 4, generator=g)
    imgs = torch.nn.functional.interpolate(low, size=12, mode="bilinear").clamp(0, 1)
    train, test = imgs[:40], imgs[40:]
    mean_image = eq.pca_rows(train, test, [0])[0]["psnr_db"]
    specs = [eq.parse_local("2:2:0.25:square"), eq.parse_local("1:8:2")]
    assert specs == [(2, 2, 0.25, "square"), (1, 8, 2.0, "disk")]
    rows = eq.local_rows(train, test, specs, steps=0)
    assert rows[0]["k"] == 2 * 2 * 2 * 3 and "square radius 0.25" in rows[0]["name"]
    assert mean_image < rows[0]["psnr_db"]  # 4 tiles x 2 per colour beat the mean image
    # on the images they were fitted to, the same 8 numbers per colour free over the whole
    # image (one window: that colour's PCA, optimal there) do at least as well as tiles
    fitted = eq.local_rows(train, train, specs, steps=0)
    assert fitted[0]["psnr_db"] <= fitted[1]["psnr_db"] + 1e-6
    for bad in ("4:2", "a:2:0.1", "4:0:0.1", "4:2:0", "4:2:0.1:round", "4:2:0.1:square:x"):
        with pytest.raises(argparse.ArgumentTypeError, match="--local"):
            eq.parse_local(bad)
