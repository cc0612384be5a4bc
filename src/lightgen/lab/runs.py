"""Lab run folders: what ``lightgen lab calibrate|train|eval`` write and read.

A calibration folder holds ``lab.json`` (the backend, the error model, the design
checkpoint, which heights were fabricated), ``calibration-frames.safetensors`` (the
measured frames) and ``checkpoints/`` (the twin's errors and optimizer, resumable). A
training folder holds its own ``lab.json`` (naming its calibration), and ``checkpoints/``
of the whole trained system, loadable by every other command (``lightgen eval``,
``generate``...). Every file is written atomically; a run folder is locked while a
command writes to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import ValidationError

from lightgen._io import atomic_write_text
from lightgen.lab.errors import ChipErrors, LabErrorModel
from lightgen.lab.folder import FolderLab
from lightgen.lab.protocol import ChipMismatchError, check_supported
from lightgen.lab.simulated import SimulatedLab
from lightgen.train.checkpoint import check_tensors_match, load_checkpoint
from lightgen.train.system import load_trained

LAB_JSON = "lab.json"
FRAMES_FILE = "calibration-frames.safetensors"
BACKENDS = ("simulated", "folder")


def load_error_model(path: str | Path | None, seed: int | None = None) -> LabErrorModel:
    """The error model of a TOML/JSON file (keys of :class:`LabErrorModel`), or the defaults."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--errors {str(p)!r}: file not found; give a TOML or JSON file.")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix == ".json":
                data = json.loads(text)
            else:
                import tomllib

                data = tomllib.loads(text)
        except (json.JSONDecodeError, ValueError) as e:
            raise ValueError(f"--errors {str(p)!r} is not valid {p.suffix[1:]}: {e}") from None
    if seed is not None:
        data["seed"] = seed
    try:
        return LabErrorModel(**data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ValueError(
            f"lab error model: {where}={first.get('input')!r} is out of range ({first['msg']}); "
            f"known keys: {', '.join(LabErrorModel.model_fields)}."
        ) from None


def write_lab_json(run: Path, info: dict) -> None:
    atomic_write_text(run / LAB_JSON, json.dumps(info, indent=1) + "\n")


def read_lab_json(run: str | Path) -> dict:
    p = Path(run) / LAB_JSON
    if not p.is_file():
        raise ValueError(
            f"{str(run)!r} is not a lab run folder (no {LAB_JSON}); pass a folder made by "
            "`lightgen lab calibrate` or `lightgen lab train`."
        )
    try:
        info = json.loads(p.read_text(encoding="utf-8"))
        info["error_model"] = LabErrorModel(**info["error_model"])
    except (json.JSONDecodeError, KeyError, TypeError, ValidationError) as e:
        raise ValueError(f"{p} is corrupt ({e}); re-run the command that made it.") from None
    return info


def load_system(checkpoint: str | Path, expect_preset: str | None = None):
    """A trained system the lab can drive, or a named error."""
    try:
        system, cfg = load_trained(checkpoint, expect_preset=expect_preset)
    except ValueError as e:
        if expect_preset is not None and "was trained for preset" in str(e):
            raise ChipMismatchError(str(e)) from None
        raise
    check_supported(system)
    return system, cfg


def build_lab(info: dict, system_for_shapes=None):
    """The lab of a run's ``lab.json``: the simulated lab fabricated from the heights of
    ``info["fabricated_from"]``, or the folder backend."""
    model: LabErrorModel = info["error_model"]
    if info["backend"] == "simulated":
        fab, _ = load_system(info["fabricated_from"], expect_preset=info["preset"])
        return SimulatedLab(fab.model.optical_chip, model)
    chip = system_for_shapes.model.optical_chip
    cfg = chip.config
    s = cfg.image_size
    return FolderLab(
        info["folder"],
        (cfg.image_channels, s, s),
        (cfg.n_wavelengths, s, s),
        (cfg.n_wavelengths, cfg.n_fibers),
        timeout_s=info.get("timeout_s", 60.0),
    )


def load_twin(calibration: str | Path, chip, model: LabErrorModel) -> ChipErrors:
    """The calibrated twin errors of a calibration folder's newest checkpoint."""
    _meta, tensors, ckdir = load_checkpoint(calibration)
    twin = ChipErrors(chip, model)
    check_tensors_match(
        twin.state_dict(), tensors, ckdir / "model.safetensors", "this chip's twin errors"
    )
    twin.load_state_dict(tensors)
    return twin


def rng_state(extra: dict | None = None) -> dict[str, torch.Tensor]:
    return {"noise": torch.get_rng_state(), "torch": torch.get_rng_state(), **(extra or {})}
