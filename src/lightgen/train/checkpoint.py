"""Checkpoints: safetensors weights + JSON config/state, written atomically.

Layout: ``<run>/checkpoints/step-000500/{model,optimizer,rng}.safetensors`` plus
``state.json`` (step, config). A checkpoint directory is written under a
temporary name and renamed into place, then ``<run>/checkpoints/latest`` (a
one-line text file) is replaced atomically; a crash leaves the previous
checkpoint intact. Nothing is deleted before its replacement is in place: a
folder of the same step is moved aside, the new one renamed in, and only then is
the old one removed. If ``latest`` names a folder that is gone (a crash in that
window, or a hand-deleted folder), readers fall back to the newest complete
``step-*`` folder with a warning. No pickle anywhere.

A run folder is written by one process at a time: :func:`lock_run_dir` takes an
OS-level exclusive lock (``fcntl.flock``) on ``<run>/.lock``, released by the OS when
the process exits, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import IO

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lightgen._io import atomic_write_text, replace_dir

#: Files every complete checkpoint folder holds.
CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json")
LOCK_NAME = ".lock"


class RunLockedError(ValueError):
    """Another process holds the run folder's lock."""


def lock_run_dir(run_dir: str | Path) -> IO[str]:
    """Take an exclusive OS lock on ``<run_dir>/.lock`` and return its open file.

    The lock lasts as long as the returned file stays open (close it to release); the OS
    drops it when the process ends, also on a crash or ``kill -9``. A second writer --
    another process, or another open of the same folder in this one -- gets a
    :class:`RunLockedError` naming the holder's process id.
    """
    import fcntl

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    f = open(run / LOCK_NAME, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise RunLockedError(
            f"run folder {str(run)!r} is in use by another lightgen process (pid {holder}); "
            "two writers would mix their checkpoints and logs. Wait for that run to finish "
            "(then --resume it), or choose another --out folder."
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: dict[str, torch.Tensor],
    config: dict,
    extra: dict | None = None,
) -> Path:
    ckdir = Path(run_dir) / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    final = ckdir / f"step-{step:06d}"
    tmp = ckdir / f".tmp-step-{step:06d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp / "model.safetensors")
    opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    save_file({k: v.cpu().contiguous() for k, v in rng.items()}, tmp / "rng.safetensors")
    meta = {"step": step, "config": config, "optimizer": opt_meta, **(extra or {})}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    # a step saved again: the old folder is moved aside under the name the loader falls
    # back to, and deleted only after the new one is in place and `latest` names it
    old = replace_dir(tmp, final, backup=ckdir / f".old-step-{step:06d}")
    atomic_write_text(ckdir / "latest", final.name + "\n")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CHECKPOINT_FILES)


def newest_complete_checkpoint(ckdir: Path) -> Path | None:
    """The complete checkpoint folder of ``ckdir`` with the highest step: a ``step-*``
    folder, or a ``.old-step-*`` one that a save interrupted between moving it aside and
    renaming its replacement in."""

    def key(p: Path) -> tuple[int, bool]:
        return int(p.name.rsplit("-", 1)[1]), p.name.startswith("step-")

    found = [
        p
        for p in [*ckdir.glob("step-*"), *ckdir.glob(".old-step-*")]
        if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit() and _is_complete(p)
    ]
    return max(found, key=key) if found else None


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint (a ``latest`` pointer or any ``step-*`` folder):
    the test every command uses before it refuses to start over an existing run."""
    ck = Path(run_dir) / "checkpoints"
    return (ck / "latest").is_file() or any(ck.glob("step-*"))


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a run folder, its ``checkpoints`` folder, or one ``step-*`` folder."""
    p = Path(path)
    if (p / "checkpoints").is_dir():
        p = p / "checkpoints"
    if (p / "latest").is_file():
        named = p / (p / "latest").read_text().strip()
        if _is_complete(named):
            p = named
        else:
            fallback = newest_complete_checkpoint(p)
            if fallback is not None:
                warnings.warn(
                    f"{p / 'latest'} names {named.name!r}, which is missing or incomplete "
                    f"(an interrupted save?); using the newest complete checkpoint "
                    f"{fallback.name!r} instead.",
                    UserWarning,
                    stacklevel=2,
                )
            p = fallback or named
    if not (p / "model.safetensors").is_file() or not (p / "state.json").is_file():
        raise ValueError(
            f"{path} is not a lightgen checkpoint (no model.safetensors + state.json found). "
            "Pass a run folder made by `lightgen train` or one of its checkpoints/step-* folders."
        )
    return p


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(file)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ValueError(
            f"{file} is truncated or corrupt ({e}); "
            f"use an earlier checkpoint in {file.parent.parent} (they are kept)."
        ) from None


def load_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor], Path]:
    """Return ``(state_json, model_tensors, checkpoint_dir)``; corrupt files raise ValueError."""
    ck = resolve_checkpoint(path)
    try:
        meta = json.loads((ck / "state.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{ck / 'state.json'} is corrupt ({e}); use an earlier checkpoint in {ck.parent}."
        ) from None
    problem = None
    if not isinstance(meta, dict):
        problem = f"it holds a JSON {type(meta).__name__}, not an object"
    elif not isinstance(meta.get("config"), dict):
        problem = "it has no 'config' object"
    elif not isinstance(meta.get("step"), int) or meta["step"] < 0:
        problem = f"its 'step' is {meta.get('step')!r}, not a step count"
    if problem:
        raise ValueError(
            f"{ck / 'state.json'} is not a lightgen checkpoint state ({problem}); it was "
            f"edited or written by another program. Use an earlier checkpoint in {ck.parent}."
        )
    return meta, _load_tensors(ck / "model.safetensors"), ck


def check_tensors_match(
    expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], where: Path, what: str
) -> None:
    """Refuse ``tensors`` unless they have exactly ``expected``'s names, shapes and dtypes
    (a header edited from F32 to I32 would otherwise load as values of +-1e9)."""
    names = set(expected) ^ set(tensors)
    if names:
        raise ValueError(
            f"{where} does not match {what} (mismatched tensors: {sorted(names)[:5]}); it was "
            "made by another lightgen version or model. Use a checkpoint of this model."
        )
    for name, want in expected.items():
        got = tensors[name]
        if got.dtype != want.dtype or got.shape != want.shape:
            raise ValueError(
                f"{where}: tensor {name!r} is {str(got.dtype).removeprefix('torch.')} "
                f"{tuple(got.shape)}, but {what} needs {str(want.dtype).removeprefix('torch.')} "
                f"{tuple(want.shape)}; the file was changed or made for another model. Use an "
                "earlier checkpoint or one of this model."
            )


def load_training_state(
    ck: Path, meta: dict, optimizer: torch.optim.Optimizer
) -> dict[str, torch.Tensor]:
    """Load the optimizer state of checkpoint ``ck`` into ``optimizer`` and return its RNG
    tensors; a truncated, corrupt or foreign file raises ValueError naming it."""
    opt_tensors = _load_tensors(ck / "optimizer.safetensors")
    rng = _load_tensors(ck / "rng.safetensors")
    if {"noise", "torch"} - set(rng) or any(v.dtype != torch.uint8 for v in rng.values()):
        raise ValueError(
            f"{ck / 'rng.safetensors'} holds {sorted(rng)}, not lightgen's generator states "
            f"('noise', 'torch', uint8). Use an earlier checkpoint in {ck.parent}."
        )
    try:
        optimizer_from_tensors(optimizer, opt_tensors, meta["optimizer"])
        for st in optimizer.state.values():  # Adam's moments must match their parameters
            for k, v in st.items():
                if k in ("exp_avg", "exp_avg_sq") and not isinstance(v, torch.Tensor):
                    raise ValueError(f"state {k!r} is not a tensor")
        for group in optimizer.param_groups:
            for p in group["params"]:
                st = optimizer.state.get(p, {})
                for k in ("exp_avg", "exp_avg_sq"):
                    if k in st and (st[k].shape != p.shape or st[k].dtype != p.dtype):
                        raise ValueError(
                            f"{k} is {tuple(st[k].shape)} {st[k].dtype} for a parameter "
                            f"{tuple(p.shape)} {p.dtype}"
                        )
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        raise ValueError(
            f"{ck / 'optimizer.safetensors'} (with state.json's 'optimizer') does not fit this "
            f"model's optimizer ({e}); the files were changed or come from another model. Use "
            f"an earlier checkpoint in {ck.parent}."
        ) from None
    return rng
