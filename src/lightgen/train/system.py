"""The trained system: a model (chip, hybrid or digital VAE) and its prior as one module.

:class:`BOGTSystem` is what training optimises and what every task takes; its
``model`` follows :class:`lightgen.train.models.TrainedModel`. :func:`load_trained`
rebuilds one from a checkpoint. Condition fibers (the injection port driving chosen
fibers with given complex values) are handled here: :func:`condition_latent_index`,
:func:`label_conditions`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lightgen.chip.fabrication import apply_fabrication
from lightgen.train.checkpoint import check_tensors_match, load_checkpoint
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.models import TrainedModel, build_model
from lightgen.train.objective import bogt_loss
from lightgen.train.priors import make_prior

TWO_PI = 2 * math.pi


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={name!r} is not a device torch knows; use 'cpu', 'cuda', 'cuda:1' or 'auto'."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={name!r} but no CUDA device is available; use device='cpu' or 'auto'."
        )
    return dev


def check_class_labels(labels, n_classes: int, count_name: str = "n_classes") -> torch.Tensor:
    """``labels`` as 1-D int64 class indices in ``[0, n_classes)``, or a ValueError naming
    the count as ``count_name``."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D class indices, got shape {tuple(labels.shape)}.")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes - 1}] for {count_name}={n_classes}, got range "
            f"[{int(labels.min())}, {int(labels.max())}]; pass the data set's class count."
        )
    return labels.long()


def label_conditions(labels: torch.Tensor, n_classes: int, amplitude: float) -> torch.Tensor:
    """One-hot class codes for the injection port: ``(N, n_classes)`` complex64.

    Fiber ``c`` of image ``i`` carries latent amplitude ``amplitude`` (|z|^2 = amplitude^2
    times a fiber's fair share of the generator power) when ``labels[i] == c`` and is dark
    otherwise; the phase is 0 (a fixed reference the generator learns to interfere with).
    """
    labels = check_class_labels(labels, n_classes)
    if not amplitude > 0:
        raise ValueError(f"amplitude must be > 0 (the 'on' fiber's value), got {amplitude}.")
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(torch.float32)
    return torch.complex(onehot * amplitude, torch.zeros_like(onehot))


def condition_latent_index(
    latent_dim: int, n_conditions: int, n_wavelengths: int, all_wavelengths: bool
) -> torch.Tensor:
    """Latent indices driven by the injection port, in the order of the conditions.

    The chip's latent is ``(n_wavelengths, n_fibers)`` flattened wavelength-major
    (index ``l * n_fibers + m``). ``all_wavelengths=False``: the last ``n_conditions``
    indices, i.e. the last fibers of the *last* wavelength only. ``True``: the last
    ``n_conditions`` fibers at every wavelength, ``(n_wavelengths * n_conditions,)``
    indices, wavelength-major (condition j of wavelength l at position ``l * k + j``).
    Since each camera colour channel is the intensity of one wavelength through linear
    optics, only the second layout lets a condition reach every colour channel.
    """
    if not all_wavelengths or n_wavelengths == 1:
        return torch.arange(latent_dim - n_conditions, latent_dim)
    n_fibers = latent_dim // n_wavelengths
    if n_conditions >= n_fibers:
        raise ValueError(
            f"{n_conditions} condition fibers at every wavelength leave no free fiber "
            f"(n_fibers={n_fibers}); use fewer condition fibers or more fibers."
        )
    return torch.cat(
        [
            torch.arange(wl * n_fibers + n_fibers - n_conditions, (wl + 1) * n_fibers)
            for wl in range(n_wavelengths)
        ]
    )


class BOGTSystem(torch.nn.Module):
    """Model + prior as one module (one state dict, one optimizer).

    With ``condition_fibers = k > 0`` k fibers are driven by the injection port with given
    complex values (e.g. a view angle, or a one-hot class code with ``condition_on='labels'``)
    instead of the coupled light: by default the last ``k`` latent dimensions (the last k
    fibers of the last wavelength); with ``condition_all_wavelengths`` the last k fibers at
    every wavelength, each carrying its condition value at all wavelengths
    (:func:`condition_latent_index`). Those dimensions carry no KL term and the prior covers
    the others (``free_index``) only.

    With ``reference_amplitude = r > 0`` the last fiber at every wavelength is a reference
    fed from the laser with the constant value ``r`` (phase 0) in place of the coupled light:
    it is filled in by :meth:`with_conditions` (no conditions are passed) and carries no KL
    term; ``n_conditions`` stays 0.
    """

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        chip_cfg = cfg.chip_config()
        self.model: TrainedModel = build_model(
            cfg.model, chip_cfg, cfg.init_log_var, cfg.activation_checkpointing
        )
        if cfg.fabrication is not None:
            apply_fabrication(self.model, cfg.fabrication, cfg.seed)
        self.n_conditions = cfg.condition_fibers
        self.reference_amplitude = float(cfg.reference_amplitude)
        self.routing_mode = cfg.routing
        d = self.model.latent_dim
        n_fixed = 1 if self.reference_amplitude > 0 else self.n_conditions
        if n_fixed >= d:
            raise ValueError(
                f"condition_fibers={cfg.condition_fibers} leaves no free latent dimension "
                f"(latent_dim={d}); use fewer condition fibers."
            )
        cond = condition_latent_index(
            d,
            n_fixed,
            chip_cfg.n_wavelengths,
            cfg.condition_all_wavelengths or self.reference_amplitude > 0,
        )
        # conditions broadcast over wavelengths: (B, k) -> (B, L * k) via repeat
        self.condition_repeat = cond.numel() // max(n_fixed, 1)
        keep = torch.ones(d, dtype=torch.bool)
        keep[cond] = False
        self.condition_index = cond
        self.free_index = keep.nonzero().squeeze(1)
        self.free_dim = int(self.free_index.numel())
        self.prior = make_prior(
            cfg.prior,
            self.free_dim,
            cfg.n_components,
            self.model.complex_latent,
            cfg.seed,
            diagonal=cfg.prior_covariance == "diagonal",
        )

    def with_conditions(
        self, z_free: torch.Tensor, conditions: torch.Tensor | None
    ) -> torch.Tensor:
        """Full latent: free dimensions, then the injected conditions (if any) or the
        reference fiber's constant value."""
        if self.n_conditions == 0:
            if conditions is not None:
                raise ValueError("conditions given but this model has condition_fibers=0.")
            if self.reference_amplitude == 0:
                return z_free
            conditions = z_free.new_full((z_free.shape[0], 1), self.reference_amplitude)
        elif conditions is None or conditions.shape != (z_free.shape[0], self.n_conditions):
            got = None if conditions is None else tuple(conditions.shape)
            raise ValueError(
                f"this model injects {self.n_conditions} condition value(s) per image; "
                f"pass conditions of shape ({z_free.shape[0]}, {self.n_conditions}), got {got}."
            )
        d = self.model.latent_dim
        if z_free.shape[1] not in (self.free_dim, d):  # checked before indexing with it
            raise ValueError(
                f"latent has {z_free.shape[1]} dims; pass the {self.free_dim} free dims or the "
                f"full {d}."
            )
        free = z_free if z_free.shape[1] == self.free_dim else self.free_part(z_free)
        cond = conditions.to(free).repeat(1, self.condition_repeat)
        z = free.new_zeros(free.shape[0], d)
        z = z.index_copy(1, self.free_index.to(free.device), free)
        return z.index_copy(1, self.condition_index.to(free.device), cond)

    def with_reference(self, z: torch.Tensor) -> torch.Tensor:
        """Full latents ``(B, latent_dim)`` with the reference fiber set to its constant
        (unchanged for a model without one), e.g. before decoding encoded latents."""
        return z if self.reference_amplitude == 0 else self.with_conditions(z, None)

    def free_part(self, z: torch.Tensor) -> torch.Tensor:
        """The prior's dimensions ``(B, free_dim)`` of full latents ``(B, latent_dim)``."""
        if self.free_dim == self.model.latent_dim:
            return z
        return z[:, self.free_index.to(z.device)]

    def condition_part(self, z: torch.Tensor) -> torch.Tensor:
        """The injected values ``(B, k)`` of full latents (first wavelength's copy)."""
        return z[:, self.condition_index.to(z.device)][:, : self.n_conditions]

    def routing(self, z: torch.Tensor) -> int | torch.Tensor:
        chip = self.model.optical_chip
        if chip is None or len(chip.generators) == 1:
            return 0
        gens = chip.generators
        if self.routing_mode == "view-angle":
            # optical switch set by the requested view: sector of the injected exp(i azimuth)
            phase = torch.remainder(torch.angle(self.condition_part(z)[:, 0].detach()), TWO_PI)
            sector = torch.floor(phase * (len(gens) / TWO_PI)).long()
            return sector.clamp_(0, len(gens) - 1)
        if self.routing_mode == "domain":
            return 0  # trained with per-image domains; afterwards the dataset's generator
        # optical switch: each latent goes to the generator of its most likely prior component
        return self.prior.responsibilities(self.free_part(z).detach()).argmax(1) % len(gens)

    def forward(
        self,
        images: torch.Tensor,
        noise: torch.Tensor,
        beta: float,
        sigma_x: float,
        conditions: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        components: torch.Tensor | None = None,
        routes: torch.Tensor | None = None,
    ):
        """BOGT terms and camera images for encoder inputs ``images`` ``(B, C, H, W)``;
        the camera is scored against ``targets`` (same shape; default: ``images``).
        ``components`` ``(B,)``: each image's prior component (label-selected components,
        ``condition_on='components'``); default: KL against the whole prior. ``routes``
        ``(B,)``: the generator each image is switched to (``routing='domain'``: its
        domain); default: :meth:`routing`."""
        mu, log_var = self.model.posterior(images)
        z = self.with_conditions(mu + torch.exp(0.5 * log_var) * noise, conditions)
        recon = self.model.decode(z, self.routing(z) if routes is None else routes)
        kl = self.prior.kl(self.free_part(mu), self.free_part(log_var), components)
        target = images if targets is None else targets
        return bogt_loss(target, recon, kl, beta, sigma_x), recon


def load_trained(
    path: str | Path, device: str = "cpu", expect_preset: str | None = None
) -> tuple[BOGTSystem, TrainConfig]:
    """Rebuild a trained model + prior from a checkpoint (run folder or step folder)."""

    meta, tensors, ckdir = load_checkpoint(path)
    cfg = load_train_config(meta["config"])
    if expect_preset is not None and cfg.preset != expect_preset:
        raise ValueError(
            f"checkpoint {ckdir} was trained for preset {cfg.preset!r}, not {expect_preset!r}; "
            f"pass --preset {cfg.preset} or a checkpoint trained for {expect_preset!r}."
        )
    system = BOGTSystem(cfg)
    check_tensors_match(
        system.state_dict(),
        tensors,
        ckdir / "model.safetensors",
        f"the {cfg.model!r} model of preset {cfg.preset!r}",
    )
    system.load_state_dict(tensors)
    system.to(resolve_device(device)).eval()
    return system, cfg
