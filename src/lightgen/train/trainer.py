"""BOGT trainer: seeded, resumable, atomic checkpoints, CSV/TensorBoard logs, DDP.

Reproducibility: the data order of step ``s`` and the posterior noise come from
generators seeded by ``seed`` whose states are saved in every checkpoint, so
``--resume`` continues exactly as if never interrupted.

Targets: by default the reconstruction target of each image is the image itself (BOGT).
An optional ``targets`` tensor aligned with the images makes image ``i`` the encoder's
input and ``targets[i]`` the camera's target (e.g. the multi-view task's cross-view
objective: encode one view, reconstruct another); the data order is the same either way.

Data parallel: under ``torchrun`` (``WORLD_SIZE > 1``) each rank takes a
disjoint slice of every global batch and gradients are averaged by
DistributedDataParallel (gloo on CPU, nccl on CUDA). Rank 0 alone writes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lightgen.chip.fabrication import apply_fabrication
from lightgen.data.deform import handwriting_like
from lightgen.export._atomic import atomic_write_text
from lightgen.optics.fft import set_fft_backend
from lightgen.train.checkpoint import (
    check_tensors_match,
    load_checkpoint,
    load_training_state,
    lock_run_dir,
    save_checkpoint,
)
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.models import build_model
from lightgen.train.objective import bogt_loss
from lightgen.train.priors import make_prior, standard_normal

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
        self.model = build_model(
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
        gens = getattr(getattr(self.model, "chip", None), "generators", None)
        if gens is None or len(gens) == 1:
            return 0
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


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    final_loss: float
    seconds: float
    checkpoint: Path


def data_summary(tensors: dict[str, torch.Tensor | None], chunks: int = 64) -> dict:
    """A small fingerprint of each training tensor, kept in every checkpoint: its shape and
    the means of ``chunks`` equal slices of its flattened values (complex ones as real
    pairs). Compared with a tolerance on resume, so the last-bit differences of another
    CPU's data pipeline pass while other data, targets or labels do not."""
    out = {}
    for name, t in tensors.items():
        if t is None:
            continue
        flat = t.detach().cpu()
        flat = (torch.view_as_real(flat) if flat.is_complex() else flat).reshape(-1)
        parts = torch.tensor_split(flat, min(chunks, flat.numel()))
        means = [float(c.double().mean()) for c in parts]  # one slice in float64 at a time
        out[name] = {"shape": list(t.shape), "chunk_means": means}
    return out


def _batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of global batch ``step``: epoch-wise permutations seeded by (seed, epoch)."""
    per_epoch = max(1, n // batch_size)
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    return perm[pos * batch_size : (pos + 1) * batch_size]


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        images: torch.Tensor,
        resume: bool = False,
        progress: bool = True,
        conditions: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        domains: torch.Tensor | None = None,
    ):
        """``domains`` ``(N,)``: with ``cfg.routing='domain'``, 0 for an image of
        ``cfg.dataset`` and 1 for one of ``cfg.source_dataset``; it sets the generator the
        image is reconstructed by. ``labels`` ``(N,)``: with ``cfg.condition_on='labels'`` the trainer injects their
        one-hot codes (:func:`label_conditions`, ``cfg.condition_amplitude``) into the
        ``cfg.condition_fibers`` condition fibers (set it with
        :meth:`TrainConfig.with_label_conditions`); pass either ``labels`` or ``conditions``.
        With ``cfg.condition_on='components'`` image ``i``'s KL is taken against prior
        component ``labels[i]`` (``cfg.n_components`` = the number of classes)."""
        self.components = None
        if cfg.condition_on == "components":
            if labels is None or labels.shape != (images.shape[0],):
                got = None if labels is None else tuple(labels.shape)
                raise ValueError(
                    f"condition_on='components' needs one label per training image, shape "
                    f"({images.shape[0]},); got {got}. Pass labels=dataset.labels."
                )
            self.components = check_class_labels(labels, cfg.n_components, "n_components")
        elif cfg.condition_on == "labels":
            if conditions is not None or labels is None:
                raise ValueError(
                    "condition_on='labels' builds the conditions from the data set's labels: "
                    "pass labels=dataset.labels (and no conditions)."
                )
            if cfg.condition_fibers < 2:
                raise ValueError(
                    f"condition_on='labels' needs condition_fibers = the number of classes, got "
                    f"{cfg.condition_fibers}; call cfg.with_label_conditions(dataset.n_classes)."
                )
            if labels.shape != (images.shape[0],):
                raise ValueError(
                    f"labels have shape {tuple(labels.shape)}; pass one label per training "
                    f"image, shape ({images.shape[0]},)."
                )
            conditions = label_conditions(labels, cfg.condition_fibers, cfg.condition_amplitude)
        elif labels is not None:
            raise ValueError(
                "labels given but condition_on='none'; training is unsupervised. Set "
                "condition_on='labels' to use them as injected conditions."
            )
        if (cfg.routing == "domain") != (domains is not None):
            raise ValueError(
                f"routing={cfg.routing!r} but domains is {'given' if domains is not None else 'None'}; "
                "pass domains (0 = dataset, 1 = source_dataset, one per image) exactly when "
                "routing='domain'."
            )
        if domains is not None:
            domains = torch.as_tensor(domains)
            if (
                domains.shape != (images.shape[0],)
                or not torch.isin(domains, torch.tensor([0, 1])).all()
            ):
                raise ValueError(
                    f"domains must be 0 (dataset) or 1 (source_dataset), one per training image, "
                    f"shape ({images.shape[0]},); got shape {tuple(domains.shape)} with values "
                    f"{sorted(set(domains.flatten().tolist()))[:5]}."
                )
            domains = domains.long()
        self.domains = domains
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(cfg.device)
        set_fft_backend(cfg.fft_backend)
        self._owns_process_group = self.world > 1 and not dist.is_initialized()
        if self._owns_process_group:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        chip_cfg = cfg.chip_config()
        want = (chip_cfg.image_channels, chip_cfg.image_size, chip_cfg.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) not in (want, (1, *want[1:])):
            raise ValueError(
                f"training images have shape {tuple(images.shape)}; preset {cfg.preset!r} needs "
                f"(N, {want[0]}, {want[1]}, {want[2]}). Load the data with size={want[1]}."
            )
        if images.shape[0] < cfg.batch_size:
            raise ValueError(
                f"batch_size={cfg.batch_size} exceeds the {images.shape[0]} training images; lower it."
            )
        self.images = images.float()
        if cfg.input_augment == "handwriting":
            if targets is not None:
                raise ValueError(
                    "input_augment='handwriting' makes the targets itself (the undeformed "
                    "images); pass targets=None or set input_augment='none'."
                )
            targets = self.images
            # with two domains only the dataset's own images (domain 0) are deformed
            pick = slice(None) if domains is None else domains == 0
            self.images = self.images.clone()
            self.images[pick] = handwriting_like(targets[pick], seed=cfg.seed)
        if cfg.condition_fibers and (
            conditions is None or conditions.shape != (images.shape[0], cfg.condition_fibers)
        ):
            raise ValueError(
                f"condition_fibers={cfg.condition_fibers} needs conditions of shape "
                f"({images.shape[0]}, {cfg.condition_fibers}) (one complex value per image and fiber)."
            )
        self.conditions = conditions
        if targets is not None and tuple(targets.shape) != tuple(images.shape):
            raise ValueError(
                f"targets have shape {tuple(targets.shape)} but the images {tuple(images.shape)}; "
                "give one reconstruction target per training image (or targets=None for BOGT)."
            )
        self.targets = None if targets is None else targets.float()
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg.seed)
        self.system = BOGTSystem(cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self.system.parameters(), lr=cfg.lr)
        self.noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        self._resumed_from: Path | None = None
        self._data_summary = data_summary(self._data())
        self._lock = None
        if self.rank == 0:  # rank 0 alone writes, so it alone holds the run folder
            existed = self.run_dir.exists()
            self._lock = lock_run_dir(self.run_dir)
            try:
                self._start_or_resume(resume)
            except BaseException:
                self.release()
                if not existed:  # leave no trace of a run that never started
                    (self.run_dir / ".lock").unlink(missing_ok=True)
                    if not any(self.run_dir.iterdir()):
                        self.run_dir.rmdir()
                raise
        else:
            self._start_or_resume(resume)
        self.ddp = None
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.system)

    def release(self) -> None:
        """Release the run folder's lock (done by :meth:`run` when it ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _start_or_resume(self, resume: bool) -> None:
        ck = self.run_dir / "checkpoints"
        has_ck = (ck / "latest").is_file() or any(ck.glob("step-*"))
        if resume:
            if not has_ck:
                raise ValueError(
                    f"--resume given but {ck} holds no checkpoint; drop --resume to start fresh."
                )
            self._resume()
        elif has_ck:
            raise ValueError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue that run, "
                "or choose a new --out folder (existing checkpoints are never overwritten)."
            )

    # ----------------------------------------------------------------- state
    def _data(self) -> dict[str, torch.Tensor | None]:
        return {
            "images": self.images,
            "targets": self.targets,
            "conditions": self.conditions,
            "components": self.components,
            "domains": self.domains,
        }

    def _check_same_data(self, saved: dict) -> None:
        """Refuse to resume on other training tensors than the checkpoint's (the config does
        not pin them: e.g. ``targets=`` or ``conditions=`` passed by a script)."""
        mine = self._data_summary
        for name in sorted(set(saved) | set(mine)):
            a, b = saved.get(name), mine.get(name)
            same = (a is None) == (b is None) and (
                a is None
                or (
                    a["shape"] == b["shape"]
                    and torch.allclose(
                        torch.tensor(a["chunk_means"]), torch.tensor(b["chunk_means"]), atol=1e-4
                    )
                )
            )
            if not same:
                shapes = (None if a is None else a["shape"], None if b is None else b["shape"])
                raise ValueError(
                    f"cannot resume {self.run_dir}: its training {name} differ from the ones "
                    f"given now (shape saved, now: {shapes[0]}, {shapes[1]}). Resume with the "
                    "same data, targets, labels and conditions, or start a new --out folder."
                )

    def _resume(self) -> None:
        meta, tensors, ckdir = load_checkpoint(self.run_dir)
        if meta["step"] > self.cfg.steps:
            raise ValueError(
                f"cannot resume {self.run_dir} with --steps {self.cfg.steps}: its checkpoint is "
                f"already at step {meta['step']}. Pass --steps {meta['step']} or more (nothing "
                "was written)."
            )
        if "data" in meta:  # checkpoints before this check have none
            self._check_same_data(meta["data"])
        # validated and re-dumped, so fields added since it was saved read as their defaults
        saved = load_train_config(meta["config"]).model_dump(mode="json")
        mine = self.cfg.model_dump(mode="json")  # as saved: tuples become lists
        diff = {
            k: (saved.get(k), v)
            for k, v in mine.items()
            if k not in ("steps", "checkpoint_every", "log_every", "device", "fft_backend")
            and saved.get(k) != v
        }
        if diff:
            raise ValueError(
                f"cannot resume {self.run_dir}: its checkpoint was trained with a different config {diff} "
                "(saved, now). Resume with the same settings or start a new --out folder."
            )
        check_tensors_match(
            self.system.state_dict(),
            tensors,
            ckdir / "model.safetensors",
            f"the {self.cfg.model!r} model of preset {self.cfg.preset!r}",
        )
        self.system.load_state_dict({k: v.to(self.device) for k, v in tensors.items()})
        rng = load_training_state(ckdir, meta, self.optimizer)
        try:
            self.noise_gen.set_state(rng["noise"])
            torch.set_rng_state(rng["torch"])
        except RuntimeError as e:
            raise ValueError(
                f"{ckdir / 'rng.safetensors'} holds no valid generator state ({e}); use an "
                f"earlier checkpoint in {ckdir.parent}."
            ) from None
        self.step = int(meta["step"])
        self._resumed_from = ckdir

    def save(self) -> Path:
        rng = {"noise": self.noise_gen.get_state(), "torch": torch.get_rng_state()}
        return save_checkpoint(
            self.run_dir,
            self.step,
            self.system,
            self.optimizer,
            rng,
            self.cfg.model_dump(),
            {"lightgen_checkpoint": 1, "data": self._data_summary},
        )

    # ------------------------------------------------------------------ loop
    def _train_step(self) -> dict[str, float]:
        cfg = self.cfg
        idx = _batch_indices(self.images.shape[0], cfg.batch_size, self.step, cfg.seed)
        noise = standard_normal(
            (len(idx), self.system.model.latent_dim),
            self.system.model.complex_latent,
            self.noise_gen,
        )
        if self.world > 1:
            idx, noise = idx[self.rank :: self.world], noise[self.rank :: self.world]
        x = self.images[idx].to(self.device)
        noise = noise.to(self.device)
        cond = None if self.conditions is None else self.conditions[idx].to(self.device)
        y = None if self.targets is None else self.targets[idx].to(self.device)
        comp = None if self.components is None else self.components[idx].to(self.device)
        routes = None if self.domains is None else self.domains[idx].to(self.device)
        module = self.ddp or self.system
        terms, _ = module(x, noise, cfg.beta, cfg.sigma_x, cond, y, comp, routes)
        if not torch.isfinite(terms.loss):
            raise FloatingPointError(
                f"loss became {terms.loss.item()} at step {self.step} (recon {terms.recon.item():.4g}, "
                f"kl {terms.kl.item():.4g}); nothing was saved from this step. The last good checkpoint is in "
                f"{self.run_dir / 'checkpoints'}. {self._blow_up_cause(x, terms)}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.system.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        return {
            "loss": terms.loss.item(),
            "recon": terms.recon.item(),
            "kl": terms.kl.item(),
            "mse": terms.mse.item(),
        }

    def _blow_up_cause(self, x: torch.Tensor, terms) -> str:
        """The parameter most likely behind a non-finite loss, and what to change."""
        cfg = self.cfg
        if not torch.isfinite(x).all():
            return "The training images hold NaN or inf values: check the data set's files."
        if self.step == 0 and not torch.isfinite(terms.recon):
            return (
                f"It failed on the first step, so the settings, not the training, are the cause: "
                f"--sigma-x (now {cfg.sigma_x:g}) divides the squared image error, so keep it "
                f"near the camera noise (e.g. 0.1); check the chip's powers "
                f"(input_power_w, generator_power_w: finite, > 0)."
            )
        if not torch.isfinite(terms.kl):
            return (
                f"The KL term blew up: lower --beta (now {cfg.beta:g}) or --lr (now {cfg.lr:g}) "
                "and --resume."
            )
        return (
            f"The reconstruction term blew up: lower --lr (now {cfg.lr:g}) or raise --sigma-x "
            f"(now {cfg.sigma_x:g}), or lower --beta (now {cfg.beta:g}), and --resume."
        )

    def _open_log(self):
        """``log.csv`` for appending, holding exactly one row per step up to ``self.step``:
        rows a killed run logged after its last checkpoint are dropped (they are logged
        again), so every step appears once."""
        path = self.run_dir / "log.csv"
        header = ["step", "loss", "recon", "kl", "mse", "seconds"]
        rows: dict[int, list[str]] = {}
        if path.exists() and self.step > 0:
            with open(path, newline="") as f:
                for row in csv.reader(f):
                    try:
                        step = int(row[0])
                    except (ValueError, IndexError):
                        continue  # the header, or a row cut off by a kill
                    if step <= self.step and len(row) == len(header):
                        rows[step] = row  # the last one is of the run that saved the checkpoint
        lines = [header, *(rows[k] for k in sorted(rows))]
        atomic_write_text(path, "".join(",".join(r) + "\r\n" for r in lines))
        return open(path, "a", newline="")

    def run(self) -> TrainResult:
        cfg = self.cfg
        writer_csv = tb = None
        t0 = time.perf_counter()
        last: dict[str, float] = {"loss": math.nan}
        last_ck = None
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.json", json.dumps(cfg.model_dump(), indent=1))
            fcsv = self._open_log()
            writer_csv = csv.writer(fcsv)
            try:
                from torch.utils.tensorboard import SummaryWriter

                # events a killed run wrote after its last checkpoint are purged
                purge = self.step + 1 if self.step else None
                tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)
            except ImportError:  # tensorboard is an optional extra
                tb = None
        bar = Progress(
            TextColumn("[bold]train[/] {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            disable=not self.progress,
        )
        try:
            with bar:
                task = bar.add_task("train", total=cfg.steps, completed=self.step, info="")
                while self.step < cfg.steps:
                    last = self._train_step()
                    if self.rank == 0:
                        if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                            el = time.perf_counter() - t0
                            writer_csv.writerow(
                                [
                                    self.step,
                                    *(f"{last[k]:.6g}" for k in ("loss", "recon", "kl", "mse")),
                                    f"{el:.2f}",
                                ]
                            )
                            fcsv.flush()
                            if tb is not None:
                                for k, v in last.items():
                                    tb.add_scalar(f"train/{k}", v, self.step)
                        if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                            last_ck = self.save()
                    bar.update(
                        task,
                        completed=self.step,
                        info=f"loss {last['loss']:.4g} kl {last['kl']:.3g} mse {last['mse']:.4f}",
                    )
            if last_ck is None and self.rank == 0:
                # nothing trained (resumed at --steps): keep the checkpoint, never re-save it
                last_ck = self._resumed_from or self.save()
                if self._resumed_from is not None:
                    ckdir = self.run_dir / "checkpoints"
                    atomic_write_text(ckdir / "latest", last_ck.name + "\n")
        finally:
            if writer_csv is not None:
                fcsv.close()
            if tb is not None:
                tb.close()
            self.release()
        if self.world > 1:
            # every rank leaves together, after rank 0 has written: a rank that exits while
            # gloo still holds a connection to another dies with SIGABRT at teardown
            dist.barrier()
            if self._owns_process_group:
                dist.destroy_process_group()
        return TrainResult(self.run_dir, self.step, last["loss"], time.perf_counter() - t0, last_ck)


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
