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
