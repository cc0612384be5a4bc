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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.distributed as dist
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lightgen._io import atomic_write_text
from lightgen.chip.config import grid_refinement
from lightgen.optics.fft import set_fft_backend
from lightgen.train.checkpoint import (
    check_tensors_match,
    has_checkpoint,
    load_checkpoint,
    load_training_state,
    lock_run_dir,
    save_checkpoint,
)
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.data import TrainingData
from lightgen.train.priors import standard_normal

# The trained system moved to lightgen.train.system; these names stay importable from
# here (other code imports them from lightgen.train.trainer).
from lightgen.train.system import (  # noqa: F401
    TWO_PI,
    BOGTSystem,
    check_class_labels,
    condition_latent_index,
    label_conditions,
    load_trained,
    resolve_device,
)

#: Settings a ``--resume`` may change (a step-size or β/σ_x schedule made by hand); each
#: change is recorded in the checkpoints' ``state.json`` as ``schedule`` ({"step": s, field:
#: value}: in force from step s on), so a run's history stays readable.
SCHEDULED_FIELDS = ("lr", "beta", "sigma_x")


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


@dataclass(frozen=True)
class TrainBatch:
    """What an :class:`ExtraLoss` sees at one training step: this rank's share of the
    batch on the training device, as the BOGT loss saw it.

    ``images`` are the encoder's inputs; ``labels`` the class labels given to the trainer
    (``None`` without); ``targets`` the camera's targets (``None``: the images, BOGT);
    ``domains`` the generator of each image (``routing='domain'``); ``step`` the step being
    taken (0 for the first); ``system`` the system being trained; ``terms`` its BOGT loss
    terms on this batch (:class:`~lightgen.train.objective.LossTerms`)."""

    images: torch.Tensor
    labels: torch.Tensor | None
    step: int
    system: BOGTSystem
    targets: torch.Tensor | None = None
    domains: torch.Tensor | None = None
    terms: Any = None


@runtime_checkable
class ExtraLoss(Protocol):
    """A training term added to the BOGT loss (``Trainer(..., extra_loss=...)``): called once
    per step with the :class:`TrainBatch`, it returns a scalar tensor; the trainer adds it
    to the BOGT loss before the backward pass, so its gradient reaches the chip through the
    same optimizer, gradient clipping and checkpoints. A term with parameters of its own
    (e.g. a critic) updates them itself inside the call. ``name`` (optional attribute) is
    saved in the checkpoints; a run is resumed only with the same name."""

    def __call__(self, batch: TrainBatch) -> torch.Tensor: ...


def extra_loss_name(extra_loss: ExtraLoss | None) -> str | None:
    """The name a checkpoint records for ``extra_loss`` (its ``name``, else its type's)."""
    if extra_loss is None:
        return None
    return str(getattr(extra_loss, "name", type(extra_loss).__name__))


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        images: torch.Tensor | TrainingData,
        resume: bool = False,
        progress: bool = True,
        conditions: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        domains: torch.Tensor | None = None,
        extra_loss: ExtraLoss | None = None,
    ):
        """``images``: the training images ``(N, C, S, S)`` with their ``conditions``,
        ``targets``, ``labels`` and ``domains`` (checked by :meth:`TrainingData.
        from_tensors`, which says what each does), or a :class:`TrainingData` already
        built (then pass none of those four). ``extra_loss``: a term added to the BOGT loss
        at every step (:class:`ExtraLoss`); the log then has an ``extra`` column."""
        if isinstance(images, TrainingData):
            given = [
                k
                for k, v in {
                    "conditions": conditions,
                    "targets": targets,
                    "labels": labels,
                    "domains": domains,
                }.items()
                if v is not None
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} given beside a TrainingData; it holds them already: "
                    "build it with TrainingData.from_tensors(cfg, images, ...) and pass it alone."
                )
            data = images.check(cfg)
        else:
            data = TrainingData.from_tensors(cfg, images, conditions, targets, labels, domains)
        self.data = data
        self.images, self.targets, self.conditions = data.images, data.targets, data.conditions
        self.components, self.domains = data.components, data.domains
        self.extra_loss = extra_loss
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(cfg.device)
        set_fft_backend(cfg.fft_backend)
        self._owns_process_group = self.world > 1 and not dist.is_initialized()
        if self.world > 1 and extra_loss is not None:
            raise ValueError(
                "extra_loss is not supported under torchrun (WORLD_SIZE > 1): its gradient "
                "would bypass DistributedDataParallel's averaging. Train it on one process."
            )
        if self._owns_process_group:
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.progress = progress and self.rank == 0
        torch.manual_seed(cfg.seed)
        self.system = BOGTSystem(cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self.system.parameters(), lr=cfg.lr)
        self.noise_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        self._resumed_from: Path | None = None
        # [{"step": s, field: value, ...}]: the settings a --resume changed from step s on
        self._schedule: list[dict] = []
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
        has_ck = has_checkpoint(self.run_dir)
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
        return self.data.tensors()

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
        saved_extra, mine_extra = meta.get("extra_loss"), extra_loss_name(self.extra_loss)
        if saved_extra != mine_extra:
            raise ValueError(
                f"cannot resume {self.run_dir}: it was trained with extra_loss {saved_extra!r}, "
                f"now {mine_extra!r}. Resume with the same extra loss or start a new --out folder."
            )
        # validated and re-dumped, so fields added since it was saved read as their defaults
        saved_cfg = load_train_config(meta["config"])
        saved = saved_cfg.model_dump(mode="json")
        mine = self.cfg.model_dump(mode="json")  # as saved: tuples become lists
        # where the data lie may change (a moved or mounted folder) when the training tensors
        # themselves were checked just above; older checkpoints hold no such summary
        free = {"steps", "checkpoint_every", "log_every", "device", "fft_backend"}
        free |= set(SCHEDULED_FIELDS)  # changed from this step on, recorded below
        if "data" in meta:
            free.add("data_root")
        # the chip block may name the same chip another way, or the same chip on a finer grid
        # (coarse-to-fine: the weights are per metasurface pixel, so they carry over)
        saved_chip, mine_chip = saved_cfg.chip_config(), self.cfg.chip_config()
        refine = grid_refinement(saved_chip, mine_chip)
        coarser = None if refine else grid_refinement(mine_chip, saved_chip)
        if coarser:
            raise ValueError(
                f"cannot resume {self.run_dir}: it goes on on a grid {coarser}x finer than "
                "the chip given now (a coarse-to-fine run; 'schedule' in its state.json). "
                f"Pass --refine {coarser} (relative to this config) again."
            )
        free.add("chip")  # compared as resolved chips just above
        diff = {
            k: (saved.get(k), v) for k, v in mine.items() if k not in free and saved.get(k) != v
        }
        if refine is None:
            diff["chip"] = (saved["chip"], mine["chip"])
        if diff:
            raise ValueError(
                f"cannot resume {self.run_dir}: its checkpoint was trained with a different config {diff} "
                "(saved, now). Resume with the same settings or start a new --out folder "
                f"(only {', '.join(SCHEDULED_FIELDS)} may change on --resume, and the chip may "
                "go on on a finer grid of the same chip: --refine)."
            )
        changed = {k: mine[k] for k in SCHEDULED_FIELDS if saved.get(k) != mine[k]}
        notes = [f"{k} {v:g} (was {saved.get(k)})" for k, v in changed.items()]
        if refine > 1:
            changed["refine"] = refine
            notes.append(
                f"a grid {refine}x finer (layer_pixel_samples {saved_chip.layer_pixel_samples}"
                f" -> {mine_chip.layer_pixel_samples})"
            )
        self._schedule = list(meta.get("schedule", []))
        if changed:
            self._schedule.append({"step": int(meta["step"]), **changed})
            warnings.warn(  # a setting left at its default would otherwise change silently
                f"resuming {self.run_dir} at step {meta['step']} with {', '.join(notes)}; "
                "recorded as 'schedule' in the checkpoints' state.json.",
                stacklevel=2,
            )
        check_tensors_match(
            self.system.state_dict(),
            tensors,
            ckdir / "model.safetensors",
            f"the {self.cfg.model!r} model of preset {self.cfg.preset!r}",
        )
        self.system.load_state_dict({k: v.to(self.device) for k, v in tensors.items()})
        rng = load_training_state(ckdir, meta, self.optimizer)
        for group in self.optimizer.param_groups:  # the saved state holds the old step size
            group["lr"] = self.cfg.lr
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
            {"lightgen_checkpoint": 1, "data": self._data_summary, **self._extra_meta()},
        )

    def _extra_meta(self) -> dict:
        """The extra loss's name for the checkpoint (nothing without one: such checkpoints
        stay as they were)."""
        name = extra_loss_name(self.extra_loss)
        extra: dict = {} if name is None else {"extra_loss": name}
        if self._schedule:  # runs never resumed with other settings stay as they were
            extra["schedule"] = self._schedule
        return extra

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
        loss, extra = terms.loss, None
        if self.extra_loss is not None:
            labels = self.data.labels
            batch = TrainBatch(
                images=x,
                labels=None if labels is None else labels[idx].to(self.device),
                step=self.step,
                system=self.system,
                targets=y,
                domains=routes,
                terms=terms,
            )
            extra = torch.as_tensor(self.extra_loss(batch))
            if extra.numel() != 1:
                raise ValueError(
                    f"extra_loss {extra_loss_name(self.extra_loss)!r} returned a tensor of shape "
                    f"{tuple(extra.shape)}; it must return one scalar (e.g. take .mean())."
                )
            loss = loss + extra.reshape(())
        if not torch.isfinite(loss):
            what = "" if extra is None else f", extra {extra.item():.4g}"
            raise FloatingPointError(
                f"loss became {loss.item()} at step {self.step} (recon {terms.recon.item():.4g}, "
                f"kl {terms.kl.item():.4g}{what}); nothing was saved from this step. The last good checkpoint is in "
                f"{self.run_dir / 'checkpoints'}. {self._blow_up_cause(x, terms)}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.system.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        out = {
            "loss": loss.item(),
            "recon": terms.recon.item(),
            "kl": terms.kl.item(),
            "mse": terms.mse.item(),
        }
        if extra is not None:
            out["extra"] = extra.item()
        return out

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

    @property
    def _logged(self) -> tuple[str, ...]:
        """The loss columns of ``log.csv`` (``extra`` only with an extra loss)."""
        base = ("loss", "recon", "kl", "mse")
        return base if self.extra_loss is None else (*base, "extra")

    def _open_log(self):
        """``log.csv`` for appending, holding exactly one row per step up to ``self.step``:
        rows a killed run logged after its last checkpoint are dropped (they are logged
        again), so every step appears once."""
        path = self.run_dir / "log.csv"
        header = ["step", *self._logged, "seconds"]
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
                                    *(f"{last[k]:.6g}" for k in self._logged),
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


def train_from_config(
    cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True
) -> TrainResult:
    """Train ``cfg`` on its own data set into run folder ``out``, as ``lightgen train`` does.

    Loads the training split of ``cfg.dataset`` at the chip's image size (data root,
    ``train_limit``, seed and emoji options from ``cfg``); with ``source_dataset`` the
    second domain follows and ``routing='domain'`` gets each image's domain; with
    ``condition_on`` other than ``'none'`` the labels drive the condition fibers (or
    select prior components) and ``cfg`` gets one condition per class
    (:meth:`TrainConfig.with_label_conditions`). Raises ``ValueError`` naming the fix.
    """
    from lightgen.train.data import train_split, with_source_domain

    size = cfg.chip_config().image_size
    ds = train_split(cfg, cfg.dataset, size)
    images, labels, domains = ds.images, ds.labels, None
    if cfg.source_dataset is not None:
        images, labels, domains = with_source_domain(cfg, ds, size)
    if cfg.condition_on != "none":
        cfg = cfg.with_label_conditions(ds.n_classes)
    else:
        labels = None
    trainer = Trainer(
        cfg, out, images, resume=resume, labels=labels, domains=domains, progress=progress
    )
    return trainer.run()
