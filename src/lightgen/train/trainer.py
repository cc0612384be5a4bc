"""BOGT trainer: seeded, resumable, atomic checkpoints, CSV/TensorBoard logs, DDP.

Reproducibility: the data order of step ``s`` and the posterior noise come from
generators seeded by ``seed`` whose states are saved in every checkpoint, so
``--resume`` continues exactly as if never interrupted.

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
from safetensors.torch import load_file

from lightgen.chip.fabrication import apply_fabrication
from lightgen.optics.fft import set_fft_backend
from lightgen.train.checkpoint import load_checkpoint, optimizer_from_tensors, save_checkpoint
from lightgen.train.config import TrainConfig
from lightgen.train.models import build_model
from lightgen.train.objective import bogt_loss
from lightgen.train.priors import make_prior, standard_normal


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={name!r} but no CUDA device is available; use device='cpu' or 'auto'."
        )
    return dev


class BOGTSystem(torch.nn.Module):
    """Model + prior as one module (one state dict, one optimizer).

    With ``condition_fibers = k > 0`` the last ``k`` latent dimensions are driven by the
    injection port with given complex values (e.g. a view angle) instead of the coupled
    light: they carry no KL term and the prior covers the other dimensions only.
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
        if self.n_conditions >= self.model.latent_dim:
            raise ValueError(
                f"condition_fibers={cfg.condition_fibers} leaves no free latent dimension "
                f"(latent_dim={self.model.latent_dim}); use fewer condition fibers."
            )
        self.free_dim = self.model.latent_dim - self.n_conditions
        self.prior = make_prior(
            cfg.prior, self.free_dim, cfg.n_components, self.model.complex_latent, cfg.seed
        )

    def with_conditions(
        self, z_free: torch.Tensor, conditions: torch.Tensor | None
    ) -> torch.Tensor:
        """Full latent: free dimensions, then the injected conditions (if any)."""
        if self.n_conditions == 0:
            if conditions is not None:
                raise ValueError("conditions given but this model has condition_fibers=0.")
            return z_free
        if conditions is None or conditions.shape != (z_free.shape[0], self.n_conditions):
            got = None if conditions is None else tuple(conditions.shape)
            raise ValueError(
                f"this model injects {self.n_conditions} condition value(s) per image; "
                f"pass conditions of shape ({z_free.shape[0]}, {self.n_conditions}), got {got}."
            )
        return torch.cat([z_free[:, : self.free_dim], conditions.to(z_free)], dim=1)

    def routing(self, z: torch.Tensor) -> int | torch.Tensor:
        gens = getattr(getattr(self.model, "chip", None), "generators", None)
        if gens is None or len(gens) == 1:
            return 0
        # optical switch: each latent goes to the generator of its most likely prior component
        return self.prior.responsibilities(z[:, : self.free_dim].detach()).argmax(1) % len(gens)

    def forward(
        self,
        images: torch.Tensor,
        noise: torch.Tensor,
        beta: float,
        sigma_x: float,
        conditions: torch.Tensor | None = None,
    ):
        mu, log_var = self.model.posterior(images)
        z = self.with_conditions(mu + torch.exp(0.5 * log_var) * noise, conditions)
        recon = self.model.decode(z, self.routing(z))
        f = self.free_dim
        kl = self.prior.kl(mu[:, :f], log_var[:, :f])
        return bogt_loss(images, recon, kl, beta, sigma_x), recon


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    final_loss: float
    seconds: float
    checkpoint: Path


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
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(cfg.device)
        set_fft_backend(cfg.fft_backend)
        if self.world > 1 and not dist.is_initialized():
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
        if cfg.condition_fibers and (
            conditions is None or conditions.shape != (images.shape[0], cfg.condition_fibers)
        ):
            raise ValueError(
                f"condition_fibers={cfg.condition_fibers} needs conditions of shape "
                f"({images.shape[0]}, {cfg.condition_fibers}) (one complex value per image and fiber)."
            )
        self.conditions = conditions
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg.seed)
        self.system = BOGTSystem(cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self.system.parameters(), lr=cfg.lr)
        self.noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        ck = self.run_dir / "checkpoints"
        has_ck = (ck / "latest").is_file()
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
        self.ddp = None
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.system)

    # ----------------------------------------------------------------- state
    def _resume(self) -> None:
        meta, tensors, ckdir = load_checkpoint(self.run_dir)
        saved = meta["config"]
        mine = self.cfg.model_dump()
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
        self.system.load_state_dict({k: v.to(self.device) for k, v in tensors.items()})
        optimizer_from_tensors(
            self.optimizer, load_file(ckdir / "optimizer.safetensors"), meta["optimizer"]
        )
        rng = load_file(ckdir / "rng.safetensors")
        self.noise_gen.set_state(rng["noise"])
        torch.set_rng_state(rng["torch"])
        self.step = int(meta["step"])

    def save(self) -> Path:
        rng = {"noise": self.noise_gen.get_state(), "torch": torch.get_rng_state()}
        return save_checkpoint(
            self.run_dir,
            self.step,
            self.system,
            self.optimizer,
            rng,
            self.cfg.model_dump(),
            {"lightgen_checkpoint": 1},
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
        module = self.ddp or self.system
        terms, _ = module(x, noise, cfg.beta, cfg.sigma_x, cond)
        if not torch.isfinite(terms.loss):
            raise FloatingPointError(
                f"loss became {terms.loss.item()} at step {self.step} (recon {terms.recon.item():.4g}, "
                f"kl {terms.kl.item():.4g}); nothing was saved from this step. The last good checkpoint is in "
                f"{self.run_dir / 'checkpoints'}. Lower --lr (now {cfg.lr}) or --beta and --resume."
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

    def run(self) -> TrainResult:
        cfg = self.cfg
        writer_csv = tb = None
        t0 = time.perf_counter()
        last: dict[str, float] = {"loss": math.nan}
        last_ck = None
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(cfg.model_dump(), indent=1))
            new = not (self.run_dir / "log.csv").exists()
            fcsv = open(self.run_dir / "log.csv", "a", newline="")
            writer_csv = csv.writer(fcsv)
            if new:
                writer_csv.writerow(["step", "loss", "recon", "kl", "mse", "seconds"])
            try:
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(self.run_dir / "tensorboard"))
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
        finally:
            if writer_csv is not None:
                fcsv.close()
            if tb is not None:
                tb.close()
        if last_ck is None and self.rank == 0:
            last_ck = self.save()
        return TrainResult(self.run_dir, self.step, last["loss"], time.perf_counter() - t0, last_ck)


def load_trained(
    path: str | Path, device: str = "cpu", expect_preset: str | None = None
) -> tuple[BOGTSystem, TrainConfig]:
    """Rebuild a trained model + prior from a checkpoint (run folder or step folder)."""
    from lightgen.train.config import load_train_config

    meta, tensors, ckdir = load_checkpoint(path)
    cfg = load_train_config(meta["config"])
    if expect_preset is not None and cfg.preset != expect_preset:
        raise ValueError(
            f"checkpoint {ckdir} was trained for preset {cfg.preset!r}, not {expect_preset!r}; "
            f"pass --preset {cfg.preset} or a checkpoint trained for {expect_preset!r}."
        )
    system = BOGTSystem(cfg)
    missing = set(system.state_dict()) ^ set(tensors)
    if missing:
        raise ValueError(
            f"checkpoint {ckdir} does not match the {cfg.model!r} model of preset {cfg.preset!r} "
            f"(mismatched tensors: {sorted(missing)[:5]}); it was made by another lightgen version or model."
        )
    system.load_state_dict(tensors)
    system.to(resolve_device(device)).eval()
    return system, cfg
