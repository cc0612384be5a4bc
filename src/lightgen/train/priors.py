"""Priors P(Z) over the optical latent space, and KL terms against them.

Latents are complex (one amplitude and phase per fiber) for the chip and real for
the digital baseline; both cases share the code through ``complex_latent``.

Closed forms (per latent dimension):
  complex: KL(CN(mu, s1) || CN(m, s2)) = |mu-m|^2/s2 + s1/s2 - 1 - ln(s1/s2)
  real:    KL(N(mu, s1)  || N(m, s2))  = (|mu-m|^2/s2 + s1/s2 - 1 - ln(s1/s2)) / 2
with variances ``s``. A circular complex Gaussian CN(m, s) has E|z-m|^2 = s.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def gaussian_kl(
    mu: torch.Tensor,
    log_var: torch.Tensor,
    mean: torch.Tensor | float,
    log_var_prior: torch.Tensor | float,
    complex_latent: bool,
) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(mean, exp(log_var_prior))), summed over the last axis."""
    d2 = (mu - mean).abs().square()
    ratio = torch.exp(log_var - log_var_prior)
    kl = (
        d2 * torch.exp(-torch.as_tensor(log_var_prior, dtype=ratio.dtype, device=ratio.device))
        + ratio
        - 1
        - (log_var - log_var_prior)
    )
    kl = kl.sum(-1)
    return kl if complex_latent else 0.5 * kl


def standard_normal(shape, complex_latent: bool, generator=None, device=None) -> torch.Tensor:
    """Samples of N(0, 1) (real) or CN(0, 1) (complex: real and imaginary parts of variance 1/2)."""
    if complex_latent:
        re = torch.randn(shape, generator=generator, device=device)
        im = torch.randn(shape, generator=generator, device=device)
        return torch.complex(re, im) * math.sqrt(0.5)
    return torch.randn(shape, generator=generator, device=device)


class Prior(nn.Module):
    """What every prior offers: ``dim``, ``complex_latent``, ``n_components``, ``kl``,
    ``responsibilities`` and :meth:`sample` (one home for its signature and checks; each
    prior draws in ``_draw``)."""

    dim: int
    complex_latent: bool
    n_components: int

    def sample(
        self,
        n: int,
        generator=None,
        component: int | None = None,
        device=None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """``n`` draws ``(n, dim)`` (of one ``component`` if given; a mixture's only);
        ``temperature`` scales each component's standard deviation (1 = the prior itself;
        < 1 trades diversity for fidelity)."""
        if component is not None and self.n_components == 1:
            raise ValueError(
                f"component={component} picks a mixture component, but this prior is a single "
                "Gaussian (one mode). Drop --component, or train with --prior mixture."
            )
        if component is not None and not 0 <= component < self.n_components:
            raise ValueError(
                f"component={component}; this prior has {self.n_components} components."
            )
        return self._draw(n, generator, component, device, temperature)

    def _draw(self, n, generator, component, device, temperature) -> torch.Tensor:
        raise NotImplementedError


class GaussianPrior(Prior):
    """Standard (complex) Gaussian prior."""

    def __init__(self, dim: int, complex_latent: bool = True):
        super().__init__()
        self.dim, self.complex_latent = dim, complex_latent
        self.n_components = 1

    def kl(
        self, mu: torch.Tensor, log_var: torch.Tensor, components: torch.Tensor | None = None
    ) -> torch.Tensor:
        if components is not None:
            raise ValueError(
                "components given but the prior is a single Gaussian; label-selected "
                "components need prior='mixture' (condition_on='components')."
            )
        return gaussian_kl(mu, log_var, 0.0, 0.0, self.complex_latent)

    def _draw(self, n, generator, component, device, temperature) -> torch.Tensor:
        return temperature * standard_normal((n, self.dim), self.complex_latent, generator, device)

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        return torch.ones(z.shape[0], 1, device=z.device)


class MixturePrior(Prior):
    """Learned Gaussian mixture prior, sum_k pi_k N(m_k, s_k I) (``diagonal=False``) or
    sum_k pi_k N(m_k, diag(s_k)) with one variance per component and latent dimension
    (``diagonal=True``: a component can be narrow along the dimensions its class barely
    uses, so its samples stay nearer the codes the encoder makes).

    KL(q || mixture) has no closed form; we use the variational approximation of
    Hershey & Olsen (ICASSP 2007, eq. 20) which for a single-Gaussian q reads
    ``D_var = -log sum_k pi_k exp(-KL(q || N_k))`` -- exact when the components are
    far apart, an upper bound-like surrogate otherwise.
    """

    def __init__(
        self,
        dim: int,
        n_components: int,
        complex_latent: bool = True,
        seed: int = 0,
        diagonal: bool = False,
    ):
        super().__init__()
        if n_components < 2:
            raise ValueError(
                f"n_components={n_components}: a mixture needs >= 2; use prior='gaussian'."
            )
        self.dim, self.complex_latent, self.n_components = dim, complex_latent, n_components
        g = torch.Generator().manual_seed(seed)
        # unit-variance random means: components start ~sqrt(2D) apart, distinct but reachable
        init = standard_normal((n_components, dim), complex_latent, g)
        if complex_latent:
            self.means_ri = nn.Parameter(torch.view_as_real(init).clone())
        else:
            self.means_ri = nn.Parameter(init.clone())
        self.diagonal = diagonal
        self.log_var = nn.Parameter(torch.zeros((n_components, dim) if diagonal else n_components))
        self.logits = nn.Parameter(torch.zeros(n_components))

    def _log_var_kd(self) -> torch.Tensor:
        """ln s per component and dimension, ``(K, D)`` (broadcast when isotropic)."""
        if self.diagonal:
            return self.log_var
        return self.log_var[:, None].expand(self.n_components, self.dim)

    @property
    def means(self) -> torch.Tensor:
        return torch.view_as_complex(self.means_ri) if self.complex_latent else self.means_ri

    def component_kl(self, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """KL(q || N_k) for every component: ``(B, K)``."""
        lv = log_var.expand_as(mu) if log_var.ndim == 1 else log_var
        return gaussian_kl(
            mu[:, None, :],
            lv[:, None, :],
            self.means[None],
            self._log_var_kd()[None],
            self.complex_latent,
        )

    def kl(
        self, mu: torch.Tensor, log_var: torch.Tensor, components: torch.Tensor | None = None
    ) -> torch.Tensor:
        """KL per image ``(B,)`` of q = N(mu, exp(log_var)) against the prior.

        ``components=None``: against the whole mixture (Hershey--Olsen, above).
        ``components`` ``(B,)`` (label-selected components, ``condition_on='components'``):
        each image's component ``c`` is given, so the term is the exact KL of the joint
        q(z) delta(c) against p(z, c) = pi_c N_c(z), i.e. ``KL(q || N_c) - ln pi_c``; its
        ``-ln pi_c`` makes the weights the class frequencies (maximum likelihood).
        """
        log_pi = torch.log_softmax(self.logits, 0)
        per_component = self.component_kl(mu, log_var)
        if components is None:
            return -torch.logsumexp(log_pi[None] - per_component, dim=1)
        components = torch.as_tensor(components, device=per_component.device).long()
        if components.shape != (mu.shape[0],):
            raise ValueError(
                f"components must hold one component index per image, shape ({mu.shape[0]},); "
                f"got {tuple(components.shape)}."
            )
        if components.numel() and (
            int(components.min()) < 0 or int(components.max()) >= self.n_components
        ):
            raise ValueError(
                f"components must lie in [0, {self.n_components - 1}], got range "
                f"[{int(components.min())}, {int(components.max())}]; the prior needs one "
                "component per class (n_components = the number of classes)."
            )
        chosen = per_component.gather(1, components[:, None]).squeeze(1)
        return chosen - log_pi[components]

    def _draw(self, n, generator, component, device, temperature) -> torch.Tensor:
        device = device or self.means_ri.device
        if component is None:
            k = torch.multinomial(
                torch.softmax(self.logits.detach(), 0).cpu(), n, True, generator=generator
            )
        else:
            k = torch.full((n,), component, dtype=torch.long)
        k = k.to(device)
        eps = standard_normal((n, self.dim), self.complex_latent, generator).to(device)
        return self.means.detach()[k] + temperature * eps * torch.exp(
            0.5 * self._log_var_kd().detach()[k]
        )

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        """Posterior component probabilities of latents ``z`` (for routing and analysis)."""
        lv = self._log_var_kd()  # (K, D)
        d2 = (z[:, None, :] - self.means[None]).abs().square()
        f = 1.0 if self.complex_latent else 0.5
        # log CN(z; m, diag s) = -sum_d [ln(pi s_d) + |z_d-m_d|^2/s_d]; real: half of that
        # with 2 pi (the constants cancel in the softmax)
        logp = torch.log_softmax(self.logits, 0)[None] - f * (
            (d2 * torch.exp(-lv)[None]).sum(-1) + lv.sum(-1)[None]
        )
        return torch.softmax(logp, 1)


def make_prior(
    kind: str,
    dim: int,
    n_components: int = 10,
    complex_latent: bool = True,
    seed: int = 0,
    diagonal: bool = False,
) -> Prior:
    """``diagonal``: per-dimension component variances (mixture only)."""
    if kind == "gaussian":
        return GaussianPrior(dim, complex_latent)
    if kind == "mixture":
        return MixturePrior(dim, n_components, complex_latent, seed, diagonal)
    raise ValueError(f"prior={kind!r} is unknown; choose 'gaussian' or 'mixture'.")
