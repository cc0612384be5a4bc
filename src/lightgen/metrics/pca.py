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


def lattice_windows(
    size: int, n_side: int, radius_fraction: float, shape: str = "disk"
) -> torch.Tensor:
    """``(n_side**2, size, size)`` bool disks of radius ``radius_fraction * size`` centred on
    an ``n_side x n_side`` square lattice over the image (centres at ``(i + 1/2) size /
    n_side``): where each fiber of a square array may draw in a local generator model
    (:func:`local_pca_reconstruction`). ``shape="square"``: squares of half-width
    ``radius_fraction * size`` instead (``1 / (2 n_side)``: the tiles of the image, one per
    fiber). ``radius_fraction`` >= 1.5 covers every pixel from every centre (a global
    model)."""
    if shape not in ("disk", "square"):
        raise ValueError(f"shape={shape!r} is unknown; choose disk or square.")
    n_side = require_int_range("n_side", n_side, 1, size, fix="use 1 to size windows per side.")
    if not radius_fraction > 0:
        raise ValueError(f"radius_fraction={radius_fraction!r} must be > 0 (of the image width).")
    c = (torch.arange(n_side, dtype=torch.float64) + 0.5) * size / n_side
    p = torch.arange(size, dtype=torch.float64) + 0.5
    r = radius_fraction * size
    if shape == "square":
        near = (p[None, :] - c[:, None]).abs() <= r  # (n, size)
        inside = near[:, None, :, None] & near[None, :, None, :]  # (n, n, size, size)
        return inside.reshape(n_side * n_side, size, size)
    dy = (p[None, :] - c[:, None]) ** 2  # (n, size)
    d2 = dy[:, None, :, None] + dy[None, :, None, :]  # (n, n, size, size)
    return (d2 <= r**2).reshape(n_side * n_side, size, size)


def local_pca_reconstruction(
    train: torch.Tensor,
    test: torch.Tensor,
    windows: torch.Tensor,
    k: int,
    steps: int = 100,
    clip: bool = True,
    seed: int = 0,
) -> torch.Tensor:
    """``test`` reconstructed by the best linear model whose basis images are *local*: ``k``
    per window, each zero outside its window (``windows`` ``(W, H, W)`` bool over the image
    plane, shared by every channel), per channel, around the mean training image.

    This is the PCA ceiling of a generator in which fiber ``w`` can only light window ``w``
    of the camera, with ``k`` real numbers per fiber and channel (a complex value per
    wavelength: ``k = 2``), and each wavelength only its own colour. Windows that do not
    overlap give the PCA of each window apart (block PCA), exactly. Overlapping windows
    couple the windows' bases: they start from each window's own PCA (plus a seeded
    perturbation of 1e-3 of its rms, so that equal windows can part) and are refined by
    ``steps`` rounds of alternating least squares on the training images (the per-image
    coefficients given the basis, then every basis image given the coefficients, exactly,
    within its window); the training error never rises, and with one window over the
    whole image it converges to that channel's PCA at ``k``. A fit that is not converged
    is a lower bound on the local ceiling.
    """
    if tuple(test.shape[1:]) != tuple(train.shape[1:]) or train.ndim != 4:
        raise ValueError(
            f"train {tuple(train.shape)} and test {tuple(test.shape)} must be (N, C, H, W) "
            "images of one size."
        )
    windows = windows.to(torch.bool)
    if windows.ndim != 3 or tuple(windows.shape[1:]) != tuple(train.shape[2:]):
        raise ValueError(
            f"windows {tuple(windows.shape)} must be (W, H, W) over the {tuple(train.shape[2:])} "
            "image plane."
        )
    k = require_int_range("k", k, 1, train.shape[0] - 1, fix="use fewer components per window.")
    out = torch.empty_like(test, dtype=torch.float32)
    flat_w = windows.reshape(windows.shape[0], -1)
    g = torch.Generator().manual_seed(seed)
    refine = bool(steps) and bool((flat_w.sum(0) > 1).any())  # windows overlap: refine jointly
    masks = flat_w.repeat_interleave(k, 0)
    if refine:
        order, groups = _pixel_groups(masks)  # the same for every channel
    for ch in range(train.shape[1]):
        x = train[:, ch].reshape(train.shape[0], -1).double()
        mean = x.mean(0)
        x = x - mean
        if refine:
            basis = local_pca_basis(x, flat_w, k, steps, generator=g, groups=(order, groups))
        else:
            basis = _window_pca(x, flat_w, k)
        t = test[:, ch].reshape(test.shape[0], -1).double() - mean
        rec = _coefficients(t, basis) @ basis + mean
        out[:, ch] = rec.float().reshape(test.shape[0], *test.shape[2:])
    return out.clamp_(0.0, 1.0) if clip else out


def local_pca_basis(
    x: torch.Tensor,
    flat_windows: torch.Tensor,
    k: int,
    steps: int,
    generator: torch.Generator | None = None,
    groups: tuple | None = None,
) -> torch.Tensor:
    """The local linear model's basis ``(W * k, D)`` (float64; rows ``w*k .. w*k + k - 1``
    zero outside window ``w``) for centred rows ``x`` ``(N, D)`` and ``flat_windows``
    ``(W, D)`` bool: each window's own PCA, then ``steps`` rounds of alternating least
    squares (:func:`local_pca_reconstruction`). ``generator``: first perturb the start by a
    seeded 1e-3 of its rms, so that equal windows can part. ``groups``: the
    ``_pixel_groups`` of the basis masks, when the caller has them already."""
    basis = _window_pca(x, flat_windows, k)
    masks = flat_windows.repeat_interleave(k, 0)
    if generator is not None:
        noise = torch.randn(basis.shape, generator=generator, dtype=basis.dtype)
        basis = basis + 1e-3 * basis[masks].pow(2).mean().sqrt() * noise * masks
    if not steps:
        return basis
    order, grp = groups if groups is not None else _pixel_groups(masks)
    return _alternating_least_squares(x, basis, order, grp, steps)


def _window_pca(x: torch.Tensor, flat_w: torch.Tensor, k: int) -> torch.Tensor:
    rows = torch.zeros(flat_w.shape[0] * k, x.shape[1], dtype=x.dtype)
    for w, m in enumerate(flat_w):
        _, comps = pca_basis(x[:, m], k)
        rows[w * k : (w + 1) * k, m] = comps.to(x.dtype)
    return rows


def _ridge_solve(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``gram^-1 rhs`` with a ridge of 1e-9 of the mean diagonal (equal or unused basis
    images leave ``gram`` singular)."""
    ridge = 1e-9 * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
    return torch.linalg.solve(gram + ridge, rhs)


def _coefficients(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Least-squares coefficients ``(N, K)`` of the rows of ``x`` on the rows of ``basis``."""
    return _ridge_solve(basis @ basis.T, basis @ x.T).T


def _pixel_groups(masks: torch.Tensor) -> tuple[torch.Tensor, list]:
    """Pixels lit by the same set of basis images share one least-squares problem: the
    column ``order`` that makes each such group contiguous, and per group the rows that
    light it and its ``[start, stop)`` in that order."""
    patterns, inverse, counts = torch.unique(
        masks.T, dim=0, return_inverse=True, return_counts=True
    )
    order = torch.argsort(inverse, stable=True)
    stops = counts.cumsum(0).tolist()
    groups = [
        (pattern.nonzero().squeeze(1), stop - int(n), stop)
        for pattern, n, stop in zip(patterns, counts, stops, strict=True)
        if pattern.any()
    ]
    return order, groups


def _alternating_least_squares(x, basis, order, groups, steps: int) -> torch.Tensor:
    xs, bs = x[:, order], basis[:, order]  # gathered once: each group is a slice
    for _ in range(steps):
        c = _coefficients(xs, bs)
        bs = torch.zeros_like(bs)
        for active, start, stop in groups:
            ca = c[:, active]
            bs[active, start:stop] = _ridge_solve(ca.T @ ca, ca.T @ xs[:, start:stop])
    out = torch.empty_like(basis)
    out[:, order] = bs
    return out
