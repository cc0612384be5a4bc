"""What a run folder holds, and the trained model and held-out images the page shows."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig


class NotARunError(ValueError):
    """The folder holds nothing a report could show (no config, log or checkpoint)."""


@dataclass
class RunFolder:
    """What a run folder holds; ``missing`` lists, in words, what it lacks."""

    path: Path
    config: object | None = None  # TrainConfig
    log: list[dict[str, float]] | None = None
    checkpoint: Path | None = None
    eval_files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _has_run_files(p: Path) -> bool:
    return (
        (p / "config.json").is_file() or (p / "log.csv").is_file() or (p / "checkpoints").is_dir()
    )


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a trainer's ``log.csv`` (step, loss, recon, kl, mse, seconds) as floats."""
    with open(path, newline="") as f:
        rows = [
            {k: float(v) for k, v in r.items() if v not in (None, "")} for r in csv.DictReader(f)
        ]
    if not rows:
        raise ValueError(f"{path} holds a header but no logged steps.")
    return rows


def find_run(path: str | Path) -> RunFolder:
    """Inspect ``path`` (a ``lightgen train`` run folder, or a ``lightgen demo`` output
    folder whose ``run/`` is one). Raises :class:`NotARunError` when it is neither."""
    from lightgen.train.checkpoint import load_checkpoint
    from lightgen.train.config import load_train_config

    p = Path(path)
    fix = (
        "Pass a run folder made by `lightgen train` (it holds config.json, log.csv and "
        "checkpoints/) or a `lightgen demo` output folder."
    )
    if not p.is_dir():
        raise NotARunError(f"{p} is not a folder. {fix}")
    if not _has_run_files(p) and _has_run_files(p / "run"):
        p = p / "run"
    if not _has_run_files(p):
        raise NotARunError(
            f"{p} is not a lightgen run: it holds none of config.json, log.csv, checkpoints/. {fix}"
        )
    run = RunFolder(p)
    try:
        _, _, run.checkpoint = load_checkpoint(p)
    except ValueError as e:
        run.missing.append(f"no usable checkpoint ({e})")
    sources = [p / "config.json"] + ([run.checkpoint / "state.json"] if run.checkpoint else [])
    for src in sources:
        if not src.is_file():
            continue
        try:
            data = json.loads(src.read_text())
            run.config = load_train_config(data.get("config", data))
            break
        except (ValueError, TypeError) as e:
            run.missing.append(f"{src.name} could not be read ({e})")
    if run.config is None:
        run.missing.append("no training config (config.json): the design cannot be drawn")
    if (p / "log.csv").is_file():
        try:
            run.log = read_log(p / "log.csv")
        except (ValueError, csv.Error) as e:
            run.missing.append(f"log.csv could not be read ({e})")
    else:
        run.missing.append("no log.csv: no training curves")
    run.eval_files = sorted(q for q in p.glob("eval*.json") if q.is_file())
    return run


def run_split(cfg: TrainConfig, split: str, n: int):
    """The first ``n`` images (and labels) of ``split`` of the run's data set, at the chip's
    size and channels."""
    from lightgen.train.data import run_split as load_split

    return load_split(cfg, split, n, channels=cfg.chip_config().image_channels)


def held_out(cfg: TrainConfig, n: int = 16):
    """The first ``n`` held-out images (and labels) of the run's data set at the chip's size."""
    return run_split(cfg, "test", n)


@dataclass
class Loaded:
    """The trained model and one batch of held-out inputs (``None`` where missing)."""

    system: object | None = None
    cfg: object | None = None
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)


def load_for_report(run: RunFolder) -> Loaded:
    from lightgen.train.trainer import load_trained

    out = Loaded(cfg=run.config)
    if run.checkpoint is None:
        out.notes.append("No checkpoint in this run: no samples, reconstructions or fields.")
        return out
    try:
        out.system, out.cfg = load_trained(run.checkpoint)
    except ValueError as e:
        out.notes.append(f"The checkpoint could not be loaded: {e}")
        return out
    try:
        ds = held_out(out.cfg)
        out.images, out.labels = ds.images, ds.labels
    except (ValueError, FileNotFoundError) as e:
        out.notes.append(
            f"Held-out images of {out.cfg.dataset!r} not found ({e}); reconstructions and the "
            "interpolation are left out, the inside view uses a generated image."
        )
    return out


def conditions_for(loaded: Loaded, n: int):
    from lightgen.tasks.evaluate import class_codes, is_class_conditioned

    system, cfg = loaded.system, loaded.cfg
    if is_class_conditioned(system, cfg) and loaded.labels is not None:
        return class_codes(system, cfg, loaded.labels[:n])
    if system.n_conditions:
        raise ValueError(
            f"this model injects {system.n_conditions} condition value(s) the report cannot "
            "supply (it is not class-conditional); use the task that trained it."
        )
    return None
