r"""Ex-post density estimation of the optical latent space (OLS).

After training, the prior P(Z) the chip was trained against is often not where the encoder
actually puts images: its samples fall off the encoded set, and because the camera reads
``|A z|^2`` of a coherent field, off-set latents turn into speckle (docs/results.md). Ghosh
et al. ("From variational to deterministic autoencoders", ICLR 2020, sec. 4) fit a richer
density to the encoded training set *after* training and sample that instead. The rule
here:

1. encode every training image x_i (the training split exactly as ``lightgen train`` loaded
   it) to its posterior mean mu_i = E[z | x_i] -- for the chip, the coupled fiber
   amplitudes; only the prior's (free) dimensions;
2. write each complex latent as real pairs, ``(Re z_1, Im z_1, Re z_2, ...)`` (``D = 2 x
   free fibers``);
3. fit a Gaussian mixture ``sum_k pi_k N(m_k, S_k)`` by expectation-maximisation
   (Dempster et al. 1977) in float64, with ``S_k`` full or diagonal; k-means++ seeding
   (Arthur & Vassilvitskii 2007) and Lloyd iterations give the initial responsibilities;
   every covariance gets ``reg_covar x (mean per-dimension variance of the data)`` added
   to its diagonal, so a component on a few nearly identical latents stays invertible;
   seeded, so the same run and options give the same density;
4. to generate, draw z from the mixture with a random-number generator and drive the
   fibers with it through the injection port. Nothing maps noise into the light path: the
   mixture is a distribution of fiber drive values, like P(Z) itself.

The density is saved with the checkpoint it was fitted for
(``<run>/checkpoints/step-N/expost/gmm-<covariance>-k<K>-seed<s>.safetensors`` + ``.json``
holding the rule, the number of components, the data it was fitted on and the mean fit
log-likelihood per image) and reused when asked for again.

``expost-class`` replaces step 3 by one Gaussian per class, fitted to the encoded training
images of that class (the labels select which Gaussian drives the fibers; no paired
targets); component ``c`` of the mixture is class ``c`` (``class-<covariance>`` files).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from lightgen._checks import require_choice, require_int_range, require_positive

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

COVARIANCES = ("full", "diag")
SAMPLERS = ("prior", "expost-gmm", "expost-class")
CLASS_RULE = (
    "ex-post class density: posterior means E[z|x] of the training split as real pairs "
    "(Re, Im), one Gaussian per class fitted to that class's encoded images (maximum "
    "likelihood, float64, reg_covar x mean data variance on every diagonal); component c is "
    "class c; samples drive the fibers through the injection port"
)
RULE = (
    "ex-post density estimation (Ghosh et al., ICLR 2020): posterior means E[z|x] of the "
    "training split, complex fiber amplitudes as real pairs (Re, Im), Gaussian mixture fitted "
    "by EM (float64, k-means++ seeding + Lloyd init, reg_covar x mean data variance added to "
    "every covariance's diagonal); samples drive the fibers through the injection port"
)
_LOG_2PI = math.log(2 * math.pi)


def _check_covariance(covariance: str) -> str:
    require_choice(
        "covariance",
        covariance,
        COVARIANCES,
        "full: one D x D covariance per component; diag: one variance per component and dimension",
    )
    return covariance


def _check_points(x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.is_complex():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"points must be a real (N, D) tensor, got {got}; write complex latents as real "
            "pairs with latents_to_real."
        )
    if not torch.isfinite(x).all():
        raise ValueError("points hold NaN or inf values; check the encoder's output.")
    return x.detach().to("cpu", torch.float64)


def latents_to_real(z: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` complex latents as ``(N, 2D)`` real pairs ``(Re z_1, Im z_1, ...)``;
    real latents are returned unchanged (as float64)."""
    if z.is_complex():
        return torch.view_as_real(z.detach().cpu().to(torch.complex128)).reshape(z.shape[0], -1)
    return z.detach().cpu().to(torch.float64)


def real_to_latents(x: torch.Tensor, complex_latent: bool) -> torch.Tensor:
    """Inverse of :func:`latents_to_real`: ``(N, 2D)`` real pairs -> ``(N, D)`` complex64
    (``complex_latent``) or ``(N, D)`` float32."""
    if complex_latent:
        if x.shape[1] % 2:
            raise ValueError(f"{x.shape[1]} real values per latent cannot be (Re, Im) pairs.")
        return torch.view_as_complex(x.reshape(x.shape[0], -1, 2).contiguous()).to(torch.complex64)
    return x.to(torch.float32)


@dataclass(frozen=True)
class GaussianMixture:
    """``sum_k weights[k] N(means[k], S_k)`` over real vectors, float64.

    ``covariances``: ``(K, D, D)`` (``covariance='full'``) or ``(K, D)`` variances
    (``'diag'``)."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    covariance: str

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def _chol(self) -> torch.Tensor:
        return torch.linalg.cholesky(self.covariances)

    def component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log pi_k + log N(x_n; m_k, S_k)`` for every point and component, ``(N, K)``."""
        x = _check_points(x)
        d = x.shape[1]
        if self.covariance == "diag":
            var = self.covariances  # (K, D)
            maha = (
                (x.square() @ (1 / var).T)
                - 2 * (x @ (self.means / var).T)
                + (self.means.square() / var).sum(1)[None]
            )
            logdet = var.log().sum(1)
        else:
            chol = self._chol()  # (K, D, D)
            maha = torch.empty(x.shape[0], self.n_components, dtype=torch.float64)
            for k in range(self.n_components):
                y = torch.linalg.solve_triangular(chol[k], (x - self.means[k]).T, upper=False)
                maha[:, k] = y.square().sum(0)
            logdet = 2 * torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(1)
        return self.weights.log()[None] - 0.5 * (d * _LOG_2PI + logdet[None] + maha.clamp_min(0))

    def log_likelihood(self, x: torch.Tensor) -> float:
        """Mean log-density per point, ``mean_n log p(x_n)`` (nats)."""
        return float(torch.logsumexp(self.component_log_prob(x), 1).mean())

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        component: int | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """``n`` draws ``(n, D)`` float64 (of one ``component`` if given); ``temperature``
        scales every component's standard deviation (1 = the mixture itself)."""
        n = require_int_range("n", n, 1, fix="Ask for at least one sample.")
        if component is None:
            k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        else:
            require_int_range(
                "component",
                component,
                0,
                self.n_components - 1,
                fix=f"This mixture has {self.n_components} components.",
            )
            k = torch.full((n,), int(component), dtype=torch.long)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        if self.covariance == "diag":
            step = eps * self.covariances[k].sqrt()
        else:
            step = (self._chol()[k] @ eps[:, :, None]).squeeze(-1)
        return self.means[k] + temperature * step

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "weights": self.weights.contiguous(),
            "means": self.means.contiguous(),
            "covariances": self.covariances.contiguous(),
        }


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability ~ squared distance to the
    nearest centre chosen so far (Arthur & Vassilvitskii, SODA 2007)."""
    n = x.shape[0]
    idx = [int(torch.randint(n, (1,), generator=g))]
    d2 = (x - x[idx[0]]).square().sum(1)
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0:  # fewer distinct points than centres: repeat one
            nxt = int(torch.randint(n, (1,), generator=g))
        else:
            nxt = int(torch.multinomial(d2 / total, 1, generator=g))
        idx.append(nxt)
        d2 = torch.minimum(d2, (x - x[nxt]).square().sum(1))
    return x[idx].clone()


def _lloyd(x: torch.Tensor, centres: torch.Tensor, iters: int) -> torch.Tensor:
    """Hard assignments ``(N,)`` after ``iters`` Lloyd iterations (empty clusters keep
    their centre)."""
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(1)
        counts = torch.bincount(assign, minlength=centres.shape[0]).to(x.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        full = counts > 0
        new = centres.clone()
        new[full] = sums[full] / counts[full, None]
        if torch.equal(new, centres):
            break
        centres = new
    return torch.cdist(x, centres).argmin(1)


def _m_step(
    x: torch.Tensor, resp: torch.Tensor, covariance: str, reg: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    nk = resp.sum(0) + 10 * torch.finfo(torch.float64).eps  # (K,)
    means = (resp.T @ x) / nk[:, None]
    if covariance == "diag":
        var = (resp.T @ x.square()) / nk[:, None] - means.square()
        return nk / nk.sum(), means, var.clamp_min(0) + reg
    d = x.shape[1]
    covs = torch.empty(resp.shape[1], d, d, dtype=torch.float64)
    eye = torch.eye(d, dtype=torch.float64)
    for k in range(resp.shape[1]):
        diff = x - means[k]
        c = (resp[:, k, None] * diff).T @ diff / nk[k]
        covs[k] = (c + c.T) / 2 + reg * eye
    return nk / nk.sum(), means, covs


@dataclass(frozen=True)
class FitReport:
    log_likelihood: float
    """mean log-density per fitted point at the end (nats)"""
    iterations: int
    converged: bool
    reg: float
    """absolute value added to every covariance's diagonal"""


def fit_gmm(
    x: torch.Tensor,
    n_components: int,
    covariance: str = "full",
    seed: int = 0,
    max_iter: int = 300,
    tol: float = 1e-5,
    reg_covar: float = 1e-4,
    kmeans_iters: int = 20,
) -> tuple[GaussianMixture, FitReport]:
    """Fit a Gaussian mixture to points ``x`` ``(N, D)`` by EM.

    Stops when the mean log-likelihood per point rises by less than ``tol`` (nats) or after
    ``max_iter`` iterations. ``reg_covar`` is relative: ``reg_covar x mean_d var(x_d)`` is
    added to every covariance's diagonal.
    """
    x = _check_points(x)
    covariance = _check_covariance(covariance)
    n = x.shape[0]
    n_components = require_int_range(
        "n_components",
        n_components,
        1,
        n,
        fix=f"A mixture needs between 1 component and one per point ({n} points).",
    )
    require_int_range("max_iter", max_iter, 1, fix="Use e.g. 300.")
    require_positive("reg_covar", reg_covar, fix="Use e.g. 1e-4 (relative to the data variance).")
    scale = float(x.var(0).mean()) if n > 1 else 1.0
    reg = reg_covar * (scale if scale > 0 else 1.0)
    g = torch.Generator().manual_seed(seed)
    assign = _lloyd(x, _kmeans_pp(x, n_components, g), kmeans_iters)
    resp = torch.nn.functional.one_hot(assign, n_components).to(torch.float64)
    weights, means, covs = _m_step(x, resp, covariance, reg)
    gmm = GaussianMixture(weights, means, covs, covariance)
    last, converged, iterations = -math.inf, False, 0
    while iterations < max_iter:
        logp = gmm.component_log_prob(x)
        norm = torch.logsumexp(logp, 1, keepdim=True)
        ll = float(norm.mean())
        if ll - last < tol:
            converged = True
            break
        last = ll
        weights, means, covs = _m_step(x, (logp - norm).exp(), covariance, reg)
        gmm = GaussianMixture(weights, means, covs, covariance)
        iterations += 1
    return gmm, FitReport(gmm.log_likelihood(x), iterations, converged, reg)


def save_density(path: str | Path, gmm: GaussianMixture, meta: dict) -> Path:
    """Write ``<path>.safetensors`` (weights, means, covariances, float64) and
    ``<path>.json`` (``meta`` plus the covariance kind and shapes); both replaced atomically."""
    stem = Path(path).with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    tmp_st, tmp_js = st.with_name(f".{st.name}.tmp"), js.with_name(f".{js.name}.tmp")
    save_file(gmm.tensors(), tmp_st)
    info = {
        **meta,
        "covariance": gmm.covariance,
        "n_components": gmm.n_components,
        "real_dim": gmm.dim,
    }
    tmp_js.write_text(json.dumps(info, indent=1))
    os.replace(tmp_st, st)
    os.replace(tmp_js, js)
    return st


def load_density(path: str | Path) -> tuple[GaussianMixture, dict]:
    """Read a density written by :func:`save_density` (``path`` with or without suffix)."""
    stem = Path(path).with_suffix("")
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not st.is_file() or not js.is_file():
        raise ValueError(
            f"{stem}: no saved density (.safetensors + .json); fit one with "
            "`lightgen eval/generate --sampler expost-gmm`."
        )
    meta = json.loads(js.read_text())
    t = load_file(st)
    gmm = GaussianMixture(
        t["weights"], t["means"], t["covariances"], _check_covariance(meta["covariance"])
    )
    return gmm, meta


class ExPostSampler:
    """Draws fiber drive values from a fitted mixture; same ``sample`` signature as the
    priors of :mod:`lightgen.train.priors` (``component`` = a mixture component)."""

    def __init__(self, gmm: GaussianMixture, complex_latent: bool, meta: dict):
        self.gmm, self.complex_latent, self.meta = gmm, complex_latent, meta
        self.n_components = gmm.n_components

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        component: int | None = None,
        device=None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        x = self.gmm.sample(n, generator, component, temperature)
        return real_to_latents(x, self.complex_latent).to(device or "cpu")

    def describe(self) -> dict:
        return {"sampler": self.meta.get("sampler", "expost-gmm"), **self.meta}


def _images_sha256(images: torch.Tensor) -> str:
    return hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


@torch.no_grad()
def encode_means(system: BOGTSystem, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Posterior means of the prior's (free) latent dimensions, ``(N, free_dim)``."""
    dev = next(system.parameters()).device
    out = []
    for i in range(0, images.shape[0], batch_size):
        mu = system.model.posterior(images[i : i + batch_size].to(dev))[0]
        out.append(system.free_part(mu).cpu())
    return torch.cat(out)


def fit_class_gaussians(
    points: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    covariance: str = "full",
    reg_covar: float = 1e-6,
) -> GaussianMixture:
    """One Gaussian per class, fitted to the points of that class: the maximum-likelihood
    mixture when the labels are the component assignments (one M-step with one-hot
    responsibilities). Component ``c`` is class ``c``, so labels only *select* where the
    fiber drive values are drawn from (no paired targets). ``points`` ``(N, D)`` real,
    ``labels`` ``(N,)`` in ``0..n_classes-1``, every class present; ``reg_covar`` times the
    mean per-dimension variance is added to each covariance's diagonal."""
    x = _check_points(points)
    covariance = _check_covariance(covariance)
    labels = torch.as_tensor(labels).long()
    if labels.shape != (x.shape[0],) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(
            f"labels must be ({x.shape[0]},) integers in 0..{n_classes - 1}; got shape "
            f"{tuple(labels.shape)}. Pass one class per encoded image."
        )
    counts = torch.bincount(labels, minlength=n_classes)
    if (counts < 2).any():
        c = int((counts < 2).nonzero()[0])
        raise ValueError(
            f"class {c} has {int(counts[c])} encoded image(s); a Gaussian needs >= 2. Use a "
            "data set with every class in the training split."
        )
    scale = x.var(0).mean().item()
    resp = torch.nn.functional.one_hot(labels, n_classes).double()
    weights, means, covs = _m_step(x, resp, covariance, reg_covar * (scale if scale > 0 else 1.0))
    return GaussianMixture(weights, means, covs, covariance)


def fit_expost(
    system: BOGTSystem,
    images: torch.Tensor,
    n_components: int,
    covariance: str = "full",
    seed: int = 0,
    data: dict | None = None,
) -> tuple[GaussianMixture, dict]:
    """Encode ``images`` and fit the mixture; returns it and its JSON record."""
    mu = encode_means(system, images)
    gmm, rep = fit_gmm(latents_to_real(mu), n_components, covariance, seed)
    meta = {
        "rule": RULE,
        "covariance": covariance,
        "n_components": n_components,
        "seed": seed,
        "fit_log_likelihood_per_image": rep.log_likelihood,
        "em_iterations": rep.iterations,
        "em_converged": rep.converged,
        "reg_covar_absolute": rep.reg,
        "latent": "complex fiber amplitudes as (Re, Im) pairs"
        if mu.is_complex()
        else "real latent",
        "data": {
            **(data or {}),
            "n_images": int(images.shape[0]),
            "images_sha256": _images_sha256(images),
        },
    }
    return gmm, meta


def check_sampler_options(
    sampler: str, n_components: int | None, covariance: str | None
) -> tuple[str, int, str]:
    """Validate ``--sampler`` and its mixture options; returns ``(sampler, K, covariance)``
    with the defaults (10 components, full covariance) filled in."""
    require_choice(
        "sampler",
        sampler,
        SAMPLERS,
        "prior: the trained P(Z); expost-gmm: a Gaussian mixture fitted to the encoded "
        "training set; expost-class: one Gaussian per class of the encoded training set",
    )
    if sampler == "prior":
        given = [
            name
            for name, v in (("gmm_components", n_components), ("gmm_covariance", covariance))
            if v is not None
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to sampler='expost-gmm' (got sampler='prior'); "
                "drop them or pass sampler='expost-gmm'."
            )
        return sampler, 0, ""
    if sampler == "expost-class":
        if n_components is not None:
            raise ValueError(
                f"gmm_components={n_components} does not apply to sampler='expost-class' (one "
                "Gaussian per class of the data set); drop it or pass sampler='expost-gmm'."
            )
        return sampler, 0, _check_covariance("full" if covariance is None else covariance)
    k = require_int_range(
        "gmm_components", 10 if n_components is None else n_components, 1, fix="Use e.g. 10-100."
    )
    return sampler, k, _check_covariance("full" if covariance is None else covariance)


def expost_sampler(
    checkpoint: str | Path,
    system: BOGTSystem,
    cfg: TrainConfig,
    n_components: int = 10,
    covariance: str = "full",
    seed: int = 0,
    refit: bool = False,
    refine: int = 1,
) -> ExPostSampler:
    """The ex-post mixture of a trained run: loaded from its checkpoint folder if fitted
    before with the same options, else fitted on the run's training split and saved there.
    ``refine``: ``system``'s optics are the run's chip simulated on a grid that many times
    finer (``eval --refine``); its encoder puts images elsewhere, so such a fit is its own
    file (``...-refined<R>``), never the run's own-grid fit."""
    from lightgen.train.checkpoint import resolve_checkpoint
    from lightgen.train.data import train_split

    if system.n_conditions:
        raise ValueError(
            f"this model injects {system.n_conditions} condition value(s); the ex-post "
            "mixture covers unconditional models only (a per-condition fit is not built). "
            "Use sampler='prior'."
        )
    covariance = _check_covariance(covariance)
    ck = resolve_checkpoint(checkpoint)
    stem = ck / "expost" / f"gmm-{covariance}-k{n_components}-seed{seed}{_grid_tag(refine)}"
    if stem.with_suffix(".json").is_file() and not refit:
        gmm, meta = load_density(stem)
    else:
        size = cfg.chip_config().image_size
        ds = train_split(cfg, cfg.dataset, size)
        data = _fit_data(cfg, ck, refine)
        gmm, meta = fit_expost(system, ds.images, n_components, covariance, seed, data)
        save_density(stem, gmm, meta)
        meta = load_density(stem)[1]
    return _sampler_at(stem, gmm, meta, system)


def _fit_data(cfg: TrainConfig, ck: Path, refine: int = 1) -> dict:
    """Which images a fit saw (kept in its JSON): the run's training split, encoded by the
    run's chip on its own grid or (``refine`` > 1) on a grid that many times finer."""
    data = {
        "dataset": cfg.dataset,
        "split": "train",
        "train_limit": cfg.train_limit,
        "data_seed": cfg.seed,
        "checkpoint": ck.name,
    }
    return data if refine == 1 else {**data, "refine": refine}


def _grid_tag(refine: int) -> str:
    """The file-name tag of a fit made with the optics simulated ``refine`` times finer."""
    return "" if refine == 1 else f"-refined{refine}"


def _sampler_at(stem: Path, gmm, meta: dict, system: BOGTSystem) -> ExPostSampler:
    """The sampler of a density saved at ``stem``, its record naming the file."""
    meta = {**meta, "path": str(stem.with_suffix(".safetensors"))}
    return ExPostSampler(gmm, system.prior.complex_latent, meta)


def expost_class_sampler(
    checkpoint: str | Path,
    system: BOGTSystem,
    cfg: TrainConfig,
    covariance: str = "full",
    refit: bool = False,
    train=None,
    means: torch.Tensor | None = None,
    refine: int = 1,
) -> ExPostSampler:
    """One Gaussian per class of the run's training split (:func:`fit_class_gaussians` on the
    encoded images), loaded from the checkpoint folder if fitted before, else fitted and
    saved there (``expost/class-<covariance>``).

    ``train``: the run's training split if the caller has it loaded already (the images
    ``train_split(cfg, ...)`` gives; a 512 px split is 5 GB, so it is not loaded twice);
    ``means``: :func:`encode_means` of its images if already computed (one row per image);
    ``refine``: as in :func:`expost_sampler`.
    """
    from lightgen.train.checkpoint import resolve_checkpoint
    from lightgen.train.data import train_split

    covariance = _check_covariance(covariance)
    ck = resolve_checkpoint(checkpoint)
    stem = ck / "expost" / f"class-{covariance}{_grid_tag(refine)}"
    if not stem.with_suffix(".json").is_file() or refit:
        ds = (
            train
            if train is not None
            else train_split(cfg, cfg.dataset, cfg.chip_config().image_size)
        )
        if ds.n_classes < 1:
            raise ValueError(
                f"data set {cfg.dataset!r} has no class labels; sampler='expost-class' needs "
                "them. Use sampler='expost-gmm'."
            )
        batch = 16 if ds.images.shape[-1] > 128 else 256
        if means is not None and means.shape[0] != ds.images.shape[0]:
            raise ValueError(
                f"means has {means.shape[0]} rows but the train split {ds.images.shape[0]} "
                "images; pass encode_means of those images or None."
            )
        mu = means if means is not None else encode_means(system, ds.images, batch_size=batch)
        gmm = fit_class_gaussians(latents_to_real(mu), ds.labels, ds.n_classes, covariance)
        meta = {
            "sampler": "expost-class",
            "rule": CLASS_RULE,
            "covariance": covariance,
            "n_components": ds.n_classes,
            "data": {
                **_fit_data(cfg, ck, refine),
                "n_images": int(ds.images.shape[0]),
                "images_sha256": _images_sha256(ds.images),
            },
        }
        save_density(stem, gmm, meta)
    gmm, meta = load_density(stem)
    return _sampler_at(stem, gmm, meta, system)


def resolve_sampler(
    checkpoint: str | Path,
    system: BOGTSystem,
    cfg: TrainConfig,
    sampler: str = "prior",
    n_components: int | None = None,
    covariance: str | None = None,
    train=None,
    means: torch.Tensor | None = None,
    refine: int = 1,
):
    """``(sampler object or None for the prior, JSON record)`` for the CLI options
    (``train``, ``means``: see :func:`expost_class_sampler`; ``refine``: see
    :func:`expost_sampler`)."""
    sampler, k, cov = check_sampler_options(sampler, n_components, covariance)
    if sampler == "prior":
        return None, {"sampler": "prior", "prior": cfg.prior}
    if sampler == "expost-class":
        s = expost_class_sampler(
            checkpoint, system, cfg, cov, train=train, means=means, refine=refine
        )
        return s, s.describe()
    s = expost_sampler(checkpoint, system, cfg, k, cov, refine=refine)
    return s, s.describe()
