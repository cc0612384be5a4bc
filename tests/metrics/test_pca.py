"""The PCA reconstruction ceiling against closed forms."""

import itertools

import pytest
import torch

from lightgen.metrics.pca import pca_basis, pca_project, pca_reconstruction


def _subspace_data(n: int, d: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))[0].T
    mean = 0.5 + 0.05 * torch.randn(d, generator=g, dtype=torch.float64)
    coef = 0.05 * torch.randn(n, k, generator=g, dtype=torch.float64)
    return (mean + coef @ basis).float(), basis.float()


def test_images_in_a_k_dimensional_affine_subspace_reconstruct_exactly_with_k_components():
    x, _ = _subspace_data(60, 3 * 8 * 8, 5, seed=0)
    train, test = x[:40].view(40, 3, 8, 8), x[40:].view(20, 3, 8, 8)
    rec = pca_reconstruction(train, test, 5)
    assert rec.shape == test.shape
    assert (rec - test).abs().max() < 1e-4
    # one component fewer cannot reproduce them
    assert (pca_reconstruction(train, test, 4) - test).abs().max() > 1e-3


def test_zero_components_give_the_mean_training_image():
    g = torch.Generator().manual_seed(1)
    train, test = torch.rand(30, 1, 6, 6, generator=g), torch.rand(7, 1, 6, 6, generator=g)
    rec = pca_reconstruction(train, test, 0)
    assert torch.allclose(rec, train.mean(0).expand_as(test), atol=1e-7)


def test_components_are_orthonormal_and_match_the_svd_of_the_centred_data():
    g = torch.Generator().manual_seed(2)
    train = torch.rand(50, 2, 5, 5, generator=g)
    mean, comps = pca_basis(train, 8)
    assert torch.allclose(comps @ comps.T, torch.eye(8), atol=1e-4)
    x = train.reshape(50, -1) - train.reshape(50, -1).mean(0)
    vh = torch.linalg.svd(x.double(), full_matrices=False).Vh[:8].float()
    # same subspace: the projector onto it agrees
    assert torch.allclose(comps.T @ comps, vh.T @ vh, atol=1e-4)
    assert torch.allclose(mean, train.reshape(50, -1).mean(0))


def test_held_out_error_falls_as_components_are_added():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(80, 1, 6, 6, generator=g).cumsum(-1) / 6  # correlated pixels
    errs = [
        (pca_reconstruction(x[:60], x[60:], k, clip=False) - x[60:]).square().mean()
        for k in (0, 2, 8, 30)
    ]
    assert all(a > b for a, b in itertools.pairwise(errs))


def test_more_components_than_centred_training_images_span_is_refused():
    train = torch.rand(10, 1, 4, 4)
    with pytest.raises(ValueError, match=r"k must be in \[0, 9\].*span at most 9 directions"):
        pca_reconstruction(train, train, 10)


def test_slicing_one_fit_gives_every_smaller_k():
    g = torch.Generator().manual_seed(4)
    train, test = torch.rand(40, 1, 5, 5, generator=g), torch.rand(6, 1, 5, 5, generator=g)
    mean, comps = pca_basis(train, 12)
    for k in (0, 3, 12):
        assert torch.allclose(
            pca_project(test, mean, comps[:k]), pca_reconstruction(train, test, k), atol=1e-5
        )


def _images(n, seed, size=8):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear").clamp(0, 1)


def test_one_window_over_the_whole_image_is_pca():
    from lightgen.metrics.pca import lattice_windows, local_pca_reconstruction

    train, test = _images(40, 0), _images(10, 1)
    whole = lattice_windows(8, 1, 2.0)
    assert bool(whole.all())
    local = local_pca_reconstruction(train, test, whole, 3, steps=0, clip=False)
    for c in range(3):
        pca = pca_reconstruction(train[:, c], test[:, c], 3, clip=False)
        assert torch.allclose(local[:, c], pca, atol=1e-4)


def test_windows_that_do_not_overlap_are_block_pca_and_overlap_only_helps():
    from lightgen.metrics.pca import lattice_windows, local_pca_reconstruction

    train, test = _images(60, 2), _images(12, 3)
    tiles = lattice_windows(8, 2, 0.25, "square")  # the four 4x4 quadrants
    for i, (y, x) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        quadrant = torch.zeros(8, 8, dtype=torch.bool)
        quadrant[y : y + 4, x : x + 4] = True
        assert torch.equal(tiles[i], quadrant)
    local = local_pca_reconstruction(train, test, tiles, 2, clip=False)
    for c in range(3):
        for y, x in [(0, 0), (0, 4), (4, 0), (4, 4)]:
            q = (slice(None), c, slice(y, y + 4), slice(x, x + 4))
            block = pca_reconstruction(train[q], test[q], 2, clip=False)
            assert torch.allclose(local[q], block, atol=1e-4)
    # overlapping disks: on the training images, refining never loses to the start
    disks = lattice_windows(8, 2, 0.45)
    assert bool((disks.sum(0) > 1).any())
    err = [
        (local_pca_reconstruction(train, train, disks, 2, steps=s, clip=False) - train)
        .pow(2)
        .mean()
        for s in (0, 30)
    ]
    assert err[1] <= err[0] + 1e-7
    # four equal windows over the whole image, 2 each: alternating least squares reaches
    # each channel's PCA with 8 components (the closed form) on the training images
    whole = lattice_windows(8, 2, 2.0)
    assert bool(whole.all())
    fit = local_pca_reconstruction(train, train, whole, 2, steps=200, clip=False)
    for c in range(3):
        pca = pca_reconstruction(train[:, c], train[:, c], 8, clip=False)
        e_fit = (fit[:, c] - train[:, c]).pow(2).mean()
        e_pca = (pca - train[:, c]).pow(2).mean()
        assert e_pca <= e_fit <= e_pca * 1.01, (c, e_fit, e_pca)
    # and a window's basis never lights a pixel outside it: one corner window, k = 1
    corner = lattice_windows(8, 2, 0.2)[:1]
    rec = local_pca_reconstruction(train, test, corner, 1, clip=False)
    outside = ~corner[0]
    assert torch.allclose(
        rec[:, :, outside], train.mean(0)[:, outside].expand_as(rec[:, :, outside])
    )
