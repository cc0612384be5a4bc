r"""Distribution distances between sets of features: FID, KID, precision / recall.

All three compare ``(N, D)`` feature matrices (rows = images) computed by one feature
network; lightgen's default is the penultimate layer of
:class:`~lightgen.metrics.classifier.SmallCNN` trained on the real data set, and every
score dict names the network used, because scores from different networks are not
comparable. Everything is computed in float64.

* Frechet distance (Heusel et al. 2017, NeurIPS, "GANs trained by a two time-scale
  update rule...") between Gaussians fitted to the two sets:
  :math:`\|\mu_1-\mu_2\|^2 + \mathrm{Tr}(\Sigma_1+\Sigma_2-2(\Sigma_1\Sigma_2)^{1/2})`.
* Kernel inception distance (Binkowski et al. 2018, ICLR, "Demystifying MMD GANs"):
  unbiased MMD^2 with the cubic kernel :math:`k(x,y)=(x\cdot y/D+1)^3`, averaged over
  random subsets; unbiased, so about 0 (and possibly negative) for equal distributions.
* Precision / recall (Kynkaanniemi et al. 2019, NeurIPS, "Improved precision and
  recall metric..."): the fraction of fake samples inside the real k-NN manifold
  (union of balls reaching each real sample's k-th nearest real neighbour), and the
  fraction of real samples inside the fake manifold.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lightgen._checks import require_int_range

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def _as_features(name: str, feats, min_rows: int = 2) -> np.ndarray:
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(feats, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (N, D) feature matrix, got shape {arr.shape}. "
            "Flatten per-image features to one row each."
        )
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (images), got {arr.shape[0]}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf values; check the feature network's input.")
    return arr


def _same_dim(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names[0]} has {a.shape[1]} features per row but {names[1]} has {b.shape[1]}. "
            "Compute both with the same feature network."
        )


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root by eigen-decomposition (negative round-off clipped)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_moments(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    r"""Frechet distance between :math:`N(\mu_1,\Sigma_1)` and :math:`N(\mu_2,\Sigma_2)`.

    :math:`\mathrm{Tr}(\Sigma_1\Sigma_2)^{1/2}` is computed as
    :math:`\mathrm{Tr}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}` (same eigenvalues,
    Dowson & Landau 1982): a symmetric PSD matrix, so ``eigh`` is stable and exact even
    for the singular covariances that N < D samples give, where ``scipy.linalg.sqrtm`` of
    the non-symmetric product returns complex round-off.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    r = _psd_sqrt(s1)
    m = r @ s2 @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(w, 0.0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(fd, 0.0)  # a distance; tiny negatives are round-off


def frechet_distance(feats_a, feats_b) -> float:
    r"""FID-style Frechet distance between the Gaussians fitted to two ``(N, D)`` sets.

    Uses sample means and unbiased (N-1) covariances. Units: squared feature units.

    With fewer samples than features the covariances are singular and the trace term
    is taken from the centred data instead: for :math:`\Sigma_1 = A^TA/(n-1)`,
    :math:`\Sigma_2 = B^TB/(m-1)` the non-zero eigenvalues of :math:`\Sigma_1\Sigma_2`
    are the squared singular values of :math:`AB^T/\sqrt{(n-1)(m-1)}`, so
    :math:`\mathrm{Tr}(\Sigma_1\Sigma_2)^{1/2}` is that matrix's nuclear norm -- exact,
    and an ``n x m`` SVD instead of ``D x D`` eigen-decompositions.
    """
    a = _as_features("feats_a", feats_a)
    b = _as_features("feats_b", feats_b)
    _same_dim(a, b, ("feats_a", "feats_b"))
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    mu_a, mu_b = a.mean(0), b.mean(0)
    if min(n, m) >= d:
        cov_a = np.atleast_2d(np.cov(a, rowvar=False, ddof=1))
        cov_b = np.atleast_2d(np.cov(b, rowvar=False, ddof=1))
        return frechet_distance_from_moments(mu_a, cov_a, mu_b, cov_b)
    ac, bc = a - mu_a, b - mu_b
    tr_a = float((ac * ac).sum()) / (n - 1)
    tr_b = float((bc * bc).sum()) / (m - 1)
    tr_sqrt = float(np.linalg.svd(ac @ bc.T, compute_uv=False).sum()) / np.sqrt((n - 1) * (m - 1))
    diff = mu_a - mu_b
    return max(float(diff @ diff) + tr_a + tr_b - 2.0 * tr_sqrt, 0.0)


def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_from_kernels(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    m, n = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    r"""Unbiased MMD^2 with the cubic kernel (Gretton et al. 2012, JMLR 13:723, eq. 3):
    :math:`\frac{1}{m(m-1)}\sum_{i\ne j}k(x_i,x_j) + \frac{1}{n(n-1)}\sum_{i\ne j}k(y_i,y_j)
    - \frac{2}{m n}\sum_{i,j} k(x_i,y_j)` (``m = len(x)``, ``n = len(y)``).
    """
    x = _as_features("x", x)
    y = _as_features("y", y)
    _same_dim(x, y, ("x", "y"))
    return _mmd2_from_kernels(_cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y))


_KID_FULL_MAX = 1 << 23  # entries per precomputed kernel matrix (64 MB in float64)


def kernel_inception_distance(
    feats_a,
    feats_b,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    precompute: bool | None = None,
) -> tuple[float, float]:
    """KID: mean and standard deviation of unbiased MMD^2 over random subsets.

    Each of ``n_subsets`` draws ``subset_size`` rows (without replacement; capped at the
    smaller set size) from each set. The std is over subsets (spread of one subset's
    estimate), as torchmetrics and Binkowski et al. report.

    Cost: each subset needs three ``m x m x D`` kernel products. When the subsets
    overlap a lot (small sets, many subsets) the full kernel matrices are computed once
    and indexed instead (``precompute=None`` decides by operation count and a 64 MB
    cap per matrix; the result is the same up to round-off).

    Returns:
        ``(kid_mean, kid_std)`` in squared-kernel units.
    """
    a = _as_features("feats_a", feats_a)
    b = _as_features("feats_b", feats_b)
    _same_dim(a, b, ("feats_a", "feats_b"))
    n_subsets = require_int_range("n_subsets", n_subsets, 1, fix="Use e.g. 100.")
    subset_size = require_int_range("subset_size", subset_size, 2, fix="Use e.g. 1000.")
    na, nb = a.shape[0], b.shape[0]
    m = min(subset_size, na, nb)
    rng = np.random.default_rng(seed)
    draws = [
        (rng.choice(na, m, replace=False), rng.choice(nb, m, replace=False))
        for _ in range(n_subsets)
    ]
    if precompute is None:
        cheaper = na * na + nb * nb + na * nb < 3 * m * m * n_subsets
        precompute = cheaper and max(na, nb) ** 2 <= _KID_FULL_MAX
    if precompute:
        kaa, kbb, kab = _cubic_kernel(a, a), _cubic_kernel(b, b), _cubic_kernel(a, b)
        vals = [
            _mmd2_from_kernels(kaa[np.ix_(ia, ia)], kbb[np.ix_(ib, ib)], kab[np.ix_(ia, ib)])
            for ia, ib in draws
        ]
    else:
        vals = [mmd2_unbiased(a[ia], b[ib]) for ia, ib in draws]
    vals = np.asarray(vals)
    return float(vals.mean()), float(vals.std())


_ROW_CHUNK = 1024  # rows of the distance matrix held at once (N x 1024 float64)


def _dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (float64; the matrix-product form is used for large sets,
    its ~1e-8 relative round-off is far below k-NN radii)."""
    return torch.cdist(x, y)


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest *other* row (self, at 0, is the 1st)."""
    return torch.cat(
        [
            torch.kthvalue(_dist(x[i : i + _ROW_CHUNK], x), k + 1, dim=1).values
            for i in range(0, x.shape[0], _ROW_CHUNK)
        ]
    )


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of ``points`` within ``radii[j]`` of some ``centres[j]``."""
    hits = sum(
        int((_dist(points[i : i + _ROW_CHUNK], centres) <= radii[None, :]).any(dim=1).sum())
        for i in range(0, points.shape[0], _ROW_CHUNK)
    )
    return hits / points.shape[0]


def precision_recall(real_feats, fake_feats, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    precision = fraction of fake rows inside the real manifold; recall = fraction of
    real rows inside the fake manifold. A manifold is the union of balls around its
    rows, each reaching that row's ``k``-th nearest neighbour in the same set.

    Returns:
        ``(precision, recall)``, each in ``[0, 1]``.
    """
    real = _as_features("real_feats", real_feats)
    fake = _as_features("fake_feats", fake_feats)
    _same_dim(real, fake, ("real_feats", "fake_feats"))
    k = require_int_range(
        "k", k, 1, min(real.shape[0], fake.shape[0]) - 1, fix="k must be below each set's size."
    )
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    precision = _coverage(f, r, _knn_radii(r, k))
    recall = _coverage(r, f, _knn_radii(f, k))
    return precision, recall


@torch.no_grad()
def extract_features(
    feature_fn: FeatureFn | torch.nn.Module, images: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Features ``(N, D)`` of ``images`` ``(N, C, H, W)``, in batches, without gradients.

    A module with a ``features`` method (:class:`SmallCNN`) is called through it, in
    eval mode (its training flag is restored afterwards).
    """
    fn = getattr(feature_fn, "features", feature_fn)
    module = feature_fn if isinstance(feature_fn, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    device = None
    if module is not None:
        p = next(module.parameters(), None)
        device = p.device if p is not None else None
    try:
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size]
            x = x.to(device) if device is not None else x
            out.append(torch.flatten(fn(x), 1).to("cpu", torch.float64))
    finally:
        if module is not None:
            module.train(was_training)
    return torch.cat(out)


def describe_features(feature_fn, feature_name: str | None = None) -> str:
    """A name for the feature space: ``feature_name``, else the module's ``description``."""
    if feature_name:
        return feature_name
    desc = getattr(feature_fn, "description", None)
    return str(desc) if desc else getattr(feature_fn, "__name__", type(feature_fn).__name__)


def generative_scores(
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    feature_fn: FeatureFn | torch.nn.Module,
    *,
    k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
    feature_name: str | None = None,
) -> dict:
    """FID, KID and precision/recall of ``fake_images`` against ``real_images``.

    Args:
        real_images, fake_images: ``(N, C, H, W)`` in the range the feature network
            was trained on (``[0, 1]`` for lightgen classifiers).
        feature_fn: a :class:`SmallCNN` (its ``features`` are used) or any callable
            mapping images to ``(N, D)`` features.
        feature_name: names the feature space in the result (default: the model's
            ``description``, e.g. ``"SmallCNN(mnist) penultimate 1152-d"``).

    Returns:
        ``{"fid", "kid_mean", "kid_std", "precision", "recall", "n_real", "n_fake",
        "features"}``.
    """
    for name, imgs in (("real_images", real_images), ("fake_images", fake_images)):
        if not isinstance(imgs, torch.Tensor) or imgs.ndim != 4:
            shape = tuple(imgs.shape) if isinstance(imgs, torch.Tensor) else type(imgs).__name__
            raise ValueError(f"{name} must be a (N, C, H, W) image tensor, got {shape}.")
    fr = extract_features(feature_fn, real_images, batch_size)
    ff = extract_features(feature_fn, fake_images, batch_size)
    kid_mean, kid_std = kernel_inception_distance(fr, ff, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(fr, ff, k)
    return {
        "fid": frechet_distance(fr, ff),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "n_real": int(fr.shape[0]),
        "n_fake": int(ff.shape[0]),
        "features": describe_features(feature_fn, feature_name),
    }


def _load_user_network(path, device: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``torch.export`` program (``.pt2``) or a TorchScript file, whichever ``path`` is."""
    import warnings
    import zipfile

    is_export = False
    try:
        with zipfile.ZipFile(path) as zf:
            is_export = any(n.endswith("archive_format") for n in zf.namelist())
    except zipfile.BadZipFile:
        pass
    if is_export:
        return torch.export.load(str(path)).module().to(device)
    with warnings.catch_warnings():
        # torch >= 2.10 deprecates TorchScript, but published Inception exports use it.
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location=device).eval()


def torchscript_features(
    path: str, input_size: int | None = None, input_scale: float = 1.0, device: str = "cpu"
) -> FeatureFn:
    """Feature function from a network file you supply (e.g. an Inception-v3 export).

    ``path`` is a TorchScript file (``torch.jit.save``) or a ``torch.export`` program
    (``torch.export.save``, ``.pt2``); nothing is ever downloaded. Images
    ``(N, C, H, W)`` in ``[0, 1]`` are repeated to 3 channels when grey, resized
    (bilinear, antialiased) to ``input_size`` if given (299 for Inception-v3), multiplied
    by ``input_scale`` (255 for networks that expect 0..255), and passed to the network,
    whose output is flattened to ``(N, D)``. Check what your export expects: these three
    settings are its input contract. (A bare state dict is not enough: it needs the
    architecture's code, which lightgen does not ship.)

    Security: loading this file runs its code. A TorchScript or ``torch.export`` file holds
    a program, not just weights, and calling the feature function executes it with your
    permissions, like running a script. Load only files you made yourself or got from a
    source you trust as much as the code you install.
    """
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(
            f"path={str(path)!r} is not a file. Give the path of a feature network you saved "
            "(torch.jit.save or torch.export.save); lightgen never downloads one."
        )
    module = _load_user_network(p, device)

    def fn(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if input_size is not None and tuple(x.shape[-2:]) != (input_size, input_size):
            x = torch.nn.functional.interpolate(
                x, size=(input_size, input_size), mode="bilinear", antialias=True
            )
        return torch.flatten(module(x * input_scale), 1)

    fn.description = f"{p.name}" + (f" @{input_size}px" if input_size else "")
    return fn
