"""A linear ceiling for reconstruction: PCA with as many components as a latent has.

A chip whose optical latent space carries ``n`` complex fiber amplitudes passes at most
``2 n`` real numbers per image from encoder to generator. The best *linear*
autoencoder with ``k`` real numbers is the projection onto the first ``k`` principal
components of the training images (Eckart-Young: the rank-k truncated SVD minimises the
squared error among all rank-k maps; Baldi & Hornik 1989 for linear autoencoders). Its
held-out reconstruction PSNR is therefore a ceiling a nonlinear model at the same width
should reach, and the mean training image (``k = 0``) is the floor.

Computation: the train images ``X`` ``(N, D)`` are centred on their mean; the
principal directions are the eigenvectors of the Gram matrix ``X X^T`` ``(N, N)``,
accumulated in float64 over column blocks (so a 512 x 512 x 3 set never needs a second
full copy in memory), mapped back by ``v_i = X^T u_i / s_i``. Held-out images are
projected onto the first ``k`` and clipped to the data range ``[0, 1]`` (clipping can
only bring a reconstruction closer to an image in that range).
"""

from __future__ import annotations

import torch

from lightgen._checks import require_int_range

_COLUMN_BLOCK = 1 << 16


def _flat(images: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim < 2:
        raise ValueError(
            f"{name} must be a tensor of images (N, ...), got {getattr(images, 'shape', images)!r}."
        )
    return images.reshape(images.shape[0], -1).float()


def pca_basis(train: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and the first ``k`` principal directions ``(k, D)`` (orthonormal rows)
    of ``train`` ``(N, ...)`` flattened to ``D`` values per image.

    Raises:
        ValueError: ``k`` outside ``[0, min(N - 1, D)]`` (centred data have rank <= N - 1).
    """
    x = _flat(train, "train")
    n, d = x.shape
    k = require_int_range(
        "k",
        k,
        0,
        max(min(n - 1, d), 0),
        fix=f"{n} centred training images span at most {min(n - 1, d)} directions; use fewer "
        "components or more training images.",
    )
    mean = x.mean(0)
    if k == 0:
        return mean, x.new_zeros(0, d)
    gram = torch.zeros(n, n, dtype=torch.float64)
    for j in range(0, d, _COLUMN_BLOCK):
        block = (x[:, j : j + _COLUMN_BLOCK] - mean[j : j + _COLUMN_BLOCK]).double()
        gram += block @ block.T
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals, evecs = evals.flip(0)[:k], evecs.flip(1)[:, :k]
    if evals[-1] <= evals[0] * 1e-12:
        raise ValueError(
            f"k={k}: the training images span fewer than {k} independent directions (the "
            f"{k}-th eigenvalue is {float(evals[-1]):.3g}). Use fewer components."
        )
    components = torch.empty(k, d)
    u = (evecs / evals.sqrt()).T.float()  # (k, N)
    for j in range(0, d, _COLUMN_BLOCK):
        components[:, j : j + _COLUMN_BLOCK] = u @ (
            x[:, j : j + _COLUMN_BLOCK] - mean[j : j + _COLUMN_BLOCK]
        )
    return mean, components


def pca_reconstruction(
    train: torch.Tensor, test: torch.Tensor, k: int, clip: bool = True
) -> torch.Tensor:
    """``test`` projected onto the mean plus the first ``k`` principal components of
    ``train`` (same shape as ``test``; ``k = 0``: the mean training image for every image).

    Args:
        train: ``(N, ...)`` images the components are fitted on.
        test: ``(M, ...)`` images of the same per-image shape.
        k: number of components, ``0 <= k <= min(N - 1, D)``.
        clip: clip the result to ``[0, 1]`` (the data range of lightgen images).
    """
    if tuple(test.shape[1:]) != tuple(train.shape[1:]):
        raise ValueError(
            f"test images have shape {tuple(test.shape[1:])} but train images "
            f"{tuple(train.shape[1:])}; load both at one size."
        )
    return pca_project(test, *pca_basis(train, k), clip=clip)


def pca_project(
    test: torch.Tensor, mean: torch.Tensor, components: torch.Tensor, clip: bool = True
) -> torch.Tensor:
    """``test`` ``(M, ...)`` projected onto ``mean`` plus the span of ``components``
    (``(k, D)`` orthonormal rows, e.g. the first ``k`` rows of :func:`pca_basis`'s), clipped
    to ``[0, 1]`` if ``clip``. Fitting once at the largest ``k`` and slicing the rows gives
    every smaller ``k`` without refitting."""
    t = _flat(test, "test") - mean
    out = (t @ components.T) @ components + mean
    if clip:
        out = out.clamp_(0.0, 1.0)
    return out.reshape(test.shape)
