"""Checkpoints: safetensors weights + JSON config/state, written atomically.

Layout: ``<run>/checkpoints/step-000500/{model,optimizer,rng}.safetensors`` plus
``state.json`` (step, config). A checkpoint directory is written under a
temporary name and renamed into place, then ``<run>/checkpoints/latest`` (a
one-line text file) is replaced atomically; a crash leaves the previous
checkpoint intact. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _atomic_write_text(ckdir / "latest", final.name + "\n")
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a run folder, its ``checkpoints`` folder, or one ``step-*`` folder."""
    p = Path(path)
    if (p / "checkpoints").is_dir():
        p = p / "checkpoints"
    if (p / "latest").is_file():
        p = p / (p / "latest").read_text().strip()
    if not (p / "model.safetensors").is_file() or not (p / "state.json").is_file():
        raise ValueError(
            f"{path} is not a lightgen checkpoint (no model.safetensors + state.json found). "
            "Pass a run folder made by `lightgen train` or one of its checkpoints/step-* folders."
        )
    return p


def load_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor], Path]:
    """Return ``(state_json, model_tensors, checkpoint_dir)``; corrupt files raise ValueError."""
    ck = resolve_checkpoint(path)
    try:
        meta = json.loads((ck / "state.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{ck / 'state.json'} is corrupt ({e}); use an earlier checkpoint in {ck.parent}."
        ) from None
    try:
        tensors = load_file(ck / "model.safetensors")
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ValueError(
            f"{ck / 'model.safetensors'} is truncated or corrupt ({e}); "
            f"use an earlier checkpoint in {ck.parent} (they are kept)."
        ) from None
    return meta, tensors, ck
