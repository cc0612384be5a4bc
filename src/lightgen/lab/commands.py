"""The jobs behind ``lightgen lab calibrate|train|eval`` (progress, checkpoints, resume)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lightgen._io import atomic_write_text, check_writable_dir
from lightgen.lab.calibrate import CalibrationSet, Calibrator, measure, recovery
from lightgen.lab.errors import FABRICATION_FAMILIES, FAMILIES, ChipErrors, LabErrorModel
from lightgen.lab.pat import (
    IN_PLACE_PARTS,
    REFABRICATED_PARTS,
    PhysicsAwareTrainer,
    SlmWeights,
    check_mode,
    lab_quality,
)
from lightgen.lab.protocol import ChipMismatchError
from lightgen.lab.runs import (
    BACKENDS,
    FRAMES_FILE,
    build_lab,
    load_system,
    load_twin,
    read_lab_json,
    rng_state,
    write_lab_json,
)
from lightgen.lab.simulated import SimulatedLab
from lightgen.train.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    load_training_state,
    lock_run_dir,
    resolve_checkpoint,
    save_checkpoint,
)
from lightgen.train.data import run_split


def _bar(progress: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not progress,
    )


def _run_steps(label, progress, steps, checkpoint_every, stepper, step, info, save) -> None:
    """Run ``step()`` until ``stepper.step_count`` reaches ``steps`` with a progress bar,
    saving every ``checkpoint_every`` steps and at the end (also when nothing was left)."""
    with _bar(progress) as bar:
        task = bar.add_task(label, total=steps, completed=stepper.step_count, info="")
        while stepper.step_count < steps:
            out = step()
            bar.update(task, completed=stepper.step_count, info=info(out))
            if stepper.step_count % checkpoint_every == 0 or stepper.step_count == steps:
                save()
    if stepper.step_count == 0:
        save()


def _refuse_existing(run: Path, resume: bool) -> None:
    if has_checkpoint(run) and not resume:
        raise ValueError(
            f"{run} already holds a lab run; pass --resume to continue it or choose a new --out "
            "(nothing is overwritten)."
        )


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def _dataset_images(cfg, split: str, limit: int, data_root, seed: int) -> torch.Tensor:
    return run_split(cfg, split, limit, data_root=data_root, seed=seed).images


def calibrate_run(
    checkpoint: str | Path,
    out: str | Path,
    backend: str = "simulated",
    error_model: LabErrorModel | None = None,
    lab_folder: str | Path | None = None,
    timeout_s: float = 60.0,
    n_images: int = 256,
    n_latents: int = 256,
    steps: int = 300,
    lr: float = 0.05,
    batch: int = 32,
    families: Sequence[str] = FAMILIES,
    checkpoint_every: int = 50,
    resume: bool = False,
    data_root=None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Measure calibration frames (once; kept in the folder) and fit the twin's errors."""
    if backend not in BACKENDS:
        raise ValueError(f"--lab {backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")
    if backend == "folder" and lab_folder is None:
        raise ValueError("--lab folder needs --lab-folder, the folder the setup watches.")
    run = check_writable_dir(out, "--out")
    lock = lock_run_dir(run)
    try:
        _refuse_existing(run, resume)
        system, cfg = load_system(checkpoint)
        chip = system.model.optical_chip
        model = (error_model or LabErrorModel()).check_for(chip)
        design = str(resolve_checkpoint(checkpoint).resolve())
        info = {
            "kind": "calibration",
            "backend": backend,
            "folder": None if lab_folder is None else str(Path(lab_folder).resolve()),
            "timeout_s": timeout_s,
            "error_model": model.model_dump(mode="json"),
            "design_checkpoint": design,
            "fabricated_from": design,
            "preset": cfg.preset,
        }
        if resume and (run / "lab.json").is_file():
            old = read_lab_json(run)
            if old["preset"] != cfg.preset or old["design_checkpoint"] != design:
                raise ChipMismatchError(
                    f"{run} calibrates {old['design_checkpoint']} (preset {old['preset']!r}), not "
                    f"{design}; resume with that --checkpoint or choose a new --out."
                )
            info = {**old, "error_model": old["error_model"].model_dump(mode="json")}
            model = old["error_model"]
        write_lab_json(run, info)
        info["error_model"] = model
        lab = build_lab(info, system)
        frames_file = run / FRAMES_FILE
        s = cfg.chip_config().image_size
        c = chip.config
        if frames_file.is_file():
            data = CalibrationSet.load(frames_file, (c.n_wavelengths, s, s))
        else:
            imgs = _dataset_images(cfg, "train", n_images, data_root, seed)
            z = system.prior.sample(n_latents, generator=torch.Generator().manual_seed(seed + 7))
            data = measure(lab, chip, imgs, z)
            data.save(frames_file)
        twin = ChipErrors(chip, model)
        cal = Calibrator(chip, twin, data, families, lr=lr, batch=batch, seed=seed)
        resuming = has_checkpoint(run)
        rmse_before = None if resuming else cal.frame_rmse()
        if resuming:
            meta, tensors, ckdir = load_checkpoint(run)
            twin.load_state_dict(tensors)
            rng = load_training_state(ckdir, meta, cal.optimizer)
            cal.generator.set_state(rng["noise"])
            cal.step_count = int(meta["step"])
            rmse_before = meta.get("frame_rmse_before")

        def save():
            rng = rng_state({"noise": cal.generator.get_state()})
            extra = {"frame_rmse_before": rmse_before, "families": list(cal.families)}
            save_checkpoint(run, cal.step_count, twin, cal.optimizer, rng, info_json(info), extra)

        t0 = time.perf_counter()
        _run_steps(
            "calibrate",
            progress,
            steps,
            checkpoint_every,
            cal,
            cal.step,
            lambda loss: f"loss {loss:.4g}",
            save,
        )
        report = {
            "backend": backend,
            "steps": cal.step_count,
            "families": list(cal.families),
            "calibration_frames": data.n_frames,
            "frame_rmse_before": rmse_before,
            "frame_rmse_after": cal.frame_rmse(),
            "camera_noise_std": model.camera_noise_std,
            "seconds": round(time.perf_counter() - t0, 1),
            "recovered_errors": twin.as_dict(),
        }
        if isinstance(lab, SimulatedLab):
            hidden = lab.reveal_hidden_errors()
            report["hidden_errors"] = hidden.as_dict()
            report["recovery"] = recovery(twin, hidden)
        _write_json(run / "calibration.json", report)
        return report
    finally:
        lock.close()


def info_json(info: dict) -> dict:
    out = dict(info)
    if isinstance(out.get("error_model"), LabErrorModel):
        out["error_model"] = out["error_model"].model_dump(mode="json")
    return out


SLM_FILE = "slm-weights.safetensors"


def load_slm(run: str | Path | None, shape: tuple[int, int, int]) -> SlmWeights | None:
    """The SLM weights a lab run trained, or None."""
    if run is None or not (Path(run) / SLM_FILE).is_file():
        return None
    from safetensors.torch import load_file

    slm = SlmWeights(shape)
    try:
        t = load_file(str(Path(run) / SLM_FILE))
        slm.load_state_dict(t)
    except (RuntimeError, OSError, KeyError) as e:
        raise ValueError(
            f"{Path(run) / SLM_FILE} does not fit this chip's SLM {shape} ({e}); it belongs to "
            "another chip or was changed."
        ) from None
    return slm


def save_slm(run: Path, slm: SlmWeights) -> None:
    from safetensors.torch import save_file

    from lightgen._io import atomic_write

    tensors = {k: v.detach().contiguous() for k, v in slm.state_dict().items()}
    atomic_write(run / SLM_FILE, lambda t: save_file(tensors, str(t)))


def fabricated_chip(source: str, preset: str):
    """The chip whose heights the lab holds (also on a resumed re-design, whose own
    checkpoint already has new heights)."""
    return load_system(source, expect_preset=preset)[0].model.optical_chip


def train_run(
    calibration: str | Path,
    out: str | Path,
    mode: str = "in-place",
    init: str | Path | None = None,
    steps: int = 300,
    lr: float = 0.01,
    batch: int = 32,
    checkpoint_every: int = 50,
    resume: bool = False,
    data_root=None,
    seed: int = 0,
    progress: bool = True,
    slm_weights: bool = False,
    twin_from_hidden_errors: bool = False,
    robust_fabrication: bool = False,
    fabrication_seed: int | None = None,
) -> dict:
    """Train the in-place parts through the lab (physics-aware), or on the twin alone, or
    the heights for re-fabrication (:mod:`lightgen.lab.pat`); ``robust_fabrication``: the
    heights for the next chip this setup makes (chip errors drawn afresh each step).
    ``fabrication_seed`` (simulated lab): the lab holds the chip made again in the same
    setup (as ``lab eval --fabrication-seed``; default: ``--init``'s chip unless
    re-fabricating), and the twin's chip families are reset to the design (their
    calibrated values belong to the chip the frames were measured on)."""
    check_mode(mode, robust_fabrication)
    cal_info = read_lab_json(calibration)
    if cal_info.get("kind") != "calibration":
        raise ValueError(f"--calibration {calibration} is a {cal_info.get('kind')} folder.")
    start_info = cal_info if init is None else read_lab_json(init)
    start_ck = cal_info["design_checkpoint"] if init is None else str(Path(init).resolve())
    if start_info["preset"] != cal_info["preset"]:
        raise ChipMismatchError(
            f"--init {init} runs preset {start_info['preset']!r} but the calibration is of "
            f"{cal_info['preset']!r}; start from a run of the calibrated chip."
        )
    run = check_writable_dir(out, "--out")
    lock = lock_run_dir(run)
    try:
        _refuse_existing(run, resume)
        if has_checkpoint(run):
            start_ck = str(run)
        system, cfg = load_system(start_ck, expect_preset=cal_info["preset"])
        chip = system.model.optical_chip
        model = _lab_chip(cal_info, start_info, init, mode, fabrication_seed, robust_fabrication)
        twin = load_twin(calibration, chip, model)
        if model.fabrication_seed is not None:
            twin.reset(FABRICATION_FAMILIES)
        lab_info = {
            **info_json(cal_info),
            "kind": "train",
            "mode": mode,
            "calibration": str(Path(calibration).resolve()),
            "init": start_ck,
            "fabricated_from": start_info["fabricated_from"],
            "error_model": model.model_dump(mode="json"),
        }
        if model.fabrication_seed is not None:
            lab_info["twin"] = "calibrated setup families; chip families at the design (made again)"
        lab = build_lab({**lab_info, "error_model": model}, system)
        fab_source = lab_info["fabricated_from"]
        if twin_from_hidden_errors:  # a control: a perfect calibration (simulation only)
            if not isinstance(lab, SimulatedLab):
                raise ValueError(
                    "--twin-from-hidden-errors needs the simulated lab; a real setup has no "
                    "hidden errors to reveal."
                )
            twin.load_state_dict(lab.reveal_hidden_errors().state_dict())
            lab_info["twin"] = "hidden errors (perfect calibration control)"
        if mode == "refabricate":
            lab_info["fabricated_from"] = str(run.resolve())
        lab_info["robust_fabrication"] = robust_fabrication
        if resume and (run / "lab.json").is_file():
            old = read_lab_json(run)
            was = bool(old.get("robust_fabrication", False))
            if was != robust_fabrication:
                flag = "--robust-fabrication" if was else "no --robust-fabrication"
                raise ValueError(
                    f"{run} was trained with {flag}; resume it the same way or choose a new --out."
                )
            if old["error_model"].fabrication_seed != model.fabrication_seed:
                raise ValueError(
                    f"{run} was trained on the chip of fabrication seed "
                    f"{old['error_model'].fabrication_seed}, not {model.fabrication_seed}; "
                    "resume it with that --fabrication-seed or choose a new --out."
                )
        write_lab_json(run, lab_info)
        images = _dataset_images(cfg, "train", 60000, data_root, seed)
        c = cfg.chip_config()
        shape = (c.image_channels, c.image_size, c.image_size)
        slm = load_slm(run, shape) or load_slm(init, shape)
        if slm is None and slm_weights:
            slm = SlmWeights(shape)
        trainer = PhysicsAwareTrainer(
            system,
            twin,
            lab,
            images,
            mode,
            lr=lr,
            batch=batch,
            beta=cfg.beta,
            sigma_x=cfg.sigma_x,
            seed=seed,
            slm=slm,
            fabricated=fabricated_chip(fab_source, cfg.preset)
            if mode == "refabricate" and not robust_fabrication
            else None,
            robust_fabrication=robust_fabrication,
        )
        frames_before = 0
        if has_checkpoint(run):
            meta, _, ckdir = load_checkpoint(run)
            rng = load_training_state(ckdir, meta, trainer.optimizer)
            trainer.generator.set_state(rng["noise"])
            if "chip_draws" in rng:
                trainer.chip_generator.set_state(rng["chip_draws"])
            trainer.step_count = int(meta["step"])
            frames_before = int(meta.get("lab_frames", 0))

        def save():
            states = {"noise": trainer.generator.get_state()}
            states["chip_draws"] = trainer.chip_generator.get_state()
            rng = rng_state(states)
            extra = {"lightgen_checkpoint": 1, "lab_frames": frames_before + lab.frames_captured}
            extra["lab"] = {"mode": mode, "calibration": lab_info["calibration"]}
            extra["lab"]["robust_fabrication"] = robust_fabrication
            if slm is not None:
                save_slm(run, slm)
            save_checkpoint(
                run, trainer.step_count, system, trainer.optimizer, rng, cfg.model_dump(), extra
            )

        t0 = time.perf_counter()
        _run_steps(
            f"lab {mode}",
            progress,
            steps,
            checkpoint_every,
            trainer,
            trainer.step,
            lambda terms: f"mse {terms['mse']:.4f}",
            save,
        )
        report = {
            "mode": mode,
            "steps": trainer.step_count,
            "lab_frames": frames_before + lab.frames_captured,
            "updated_in_place": IN_PLACE_PARTS,
            "needs_refabrication": REFABRICATED_PARTS if mode == "refabricate" else None,
            "slm_weights": slm is not None,
            "robust_fabrication": robust_fabrication,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        _write_json(run / "train.json", report)
        return report
    finally:
        lock.close()


def _lab_chip(cal_info, start_info, init, mode, fabrication_seed, robust) -> LabErrorModel:
    """The error model of the chip a training run works on: the calibration's, made again
    with ``fabrication_seed`` (or ``--init``'s made-again chip when not re-fabricating)."""
    model: LabErrorModel = cal_info["error_model"]
    if fabrication_seed is None and init is not None and mode != "refabricate":
        fabrication_seed = start_info["error_model"].fabrication_seed
    if fabrication_seed is None:
        return model
    if cal_info["backend"] != "simulated":
        raise ValueError(
            "--fabrication-seed needs the simulated lab; a real setup holds the chip that was "
            "made (calibrate it and train on it)."
        )
    if robust:
        raise ValueError(
            "--robust-fabrication trains for chips not yet made and measures none; drop "
            "--fabrication-seed (evaluate the result with `lab eval --fabrication-seed`)."
        )
    return model.model_copy(update={"fabrication_seed": fabrication_seed})


def _eval_file_name(
    designed: bool, error_seed: int | None, fabrication_seed: int | None, augment: str
) -> str:
    """``lab-eval[-designed | -error-seed-N][-fabrication-seed-N][-judge-A].json``: one file
    per lab, chip and judge, so no evaluation replaces another's."""
    if designed:
        stem = "lab-eval-designed"
    else:
        stem = "lab-eval" if error_seed is None else f"lab-eval-error-seed-{error_seed}"
        if fabrication_seed is not None:
            stem += f"-fabrication-seed-{fabrication_seed}"
    return stem + ("" if augment == "none" else f"-judge-{augment}") + ".json"


def eval_run(
    run: str | Path,
    designed: bool = False,
    n: int = 500,
    n_fid: int = 0,
    data_root=None,
    seed: int = 0,
    error_seed: int | None = None,
    fabrication_seed: int | None = None,
    classifier_augment: str = "none",
) -> dict:
    """Quality in the lab of a calibration folder (the design as fabricated) or a training
    folder; ``designed``: in silico, without any error. ``error_seed``: a lab with other
    hidden errors of every family; ``fabrication_seed``: the same setup with the chip made
    again (new layer placement and etch-depth errors). ``classifier_augment``: the FID
    judge's training (``eval --classifier-augment``; ``colour`` is the shape judge)."""
    from lightgen.metrics.classifier import check_augment

    classifier_augment = check_augment(classifier_augment)
    info = read_lab_json(run)
    ck = info["design_checkpoint"] if info["kind"] == "calibration" else run
    system, cfg = load_system(ck, expect_preset=info["preset"])
    # --error-seed: a lab with other hidden errors; --fabrication-seed: the same setup with
    # the chip made again
    seeds = {"seed": error_seed, "fabrication_seed": fabrication_seed}
    update = {k: v for k, v in seeds.items() if v is not None}
    if update:
        if info["backend"] != "simulated":
            raise ValueError(
                "--error-seed and --fabrication-seed need the simulated lab; a real setup has "
                "one set of errors (make a new chip and calibrate it)."
            )
        info = {**info, "error_model": info["error_model"].model_copy(update=update)}
    if designed:
        lab = SimulatedLab(system.model.optical_chip, LabErrorModel.none())
    else:
        lab = build_lab(info, system)
    test = _dataset_images(cfg, "test", n, data_root, seed)
    c = cfg.chip_config()
    slm = load_slm(run, (c.image_channels, c.image_size, c.image_size))
    root = data_root or cfg.data_root
    name = _eval_file_name(designed, error_seed, fabrication_seed, classifier_augment)
    out = lab_quality(
        system,
        lab,
        test,
        cfg.dataset,
        n_fid,
        seed,
        root,
        slm=slm,
        dataset_options=cfg.dataset_options(),
        classifier_augment=classifier_augment,
        figure=Path(run) / name.replace(".json", ".png"),
    )
    out["slm_weights"] = slm is not None
    out.update({"run": str(run), "designed": designed, "kind": info["kind"]})
    out["error_seed"] = info["error_model"].seed
    out["fabrication_seed"] = info["error_model"].fabrication_seed
    if info["kind"] == "train":
        meta, _, _ = load_checkpoint(run)
        out["lab_frames_used_by_training"] = int(meta.get("lab_frames", 0))
        out["mode"] = info["mode"]
    _write_json(Path(run) / name, out)
    return out
