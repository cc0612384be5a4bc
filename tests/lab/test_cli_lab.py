"""`lightgen lab calibrate|train|eval`: the whole path on a tiny chip, resume, and bad input
(exit 2, one message, nothing lost)."""

import json
import shutil

import imageio.v3 as iio
import pytest
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer

runner = CliRunner()
QUICK = ["--n-images", "8", "--n-latents", "8", "--batch", "4"]


def _ok(res):
    assert res.exit_code == 0, res.output
    return res


def _refused(res, *needles):
    text = " ".join(res.output.split())
    assert res.exit_code == 2, text
    assert "Traceback" not in res.output
    for n in needles:
        assert n in text, (n, text)


def _files(folder):
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def calibrated(tiny_lab_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "cal"
    args = ["lab", "calibrate", "--checkpoint", str(tiny_lab_run), "--out", str(out)]
    _ok(runner.invoke(app, [*args, *QUICK, "--steps", "2"]))
    return out


def test_calibrate_train_eval_run_end_to_end_and_report_the_lab_frames(calibrated, tmp_path):
    rep = json.loads((calibrated / "calibration.json").read_text())
    assert rep["calibration_frames"] == 16 and rep["steps"] == 2
    assert set(rep["recovery"]) == set(rep["hidden_errors"])  # the simulated lab reveals them
    train = tmp_path / "pat"
    _ok(
        runner.invoke(
            app,
            [
                "lab",
                "train",
                "--calibration",
                str(calibrated),
                "--out",
                str(train),
                "--steps",
                "2",
                "--batch",
                "4",
            ],
        )
    )
    assert json.loads((train / "train.json").read_text())["lab_frames"] == 8
    # in place with the SLM's per-pixel transmission: saved beside the checkpoint, used by eval
    slm = tmp_path / "slm"
    args = ["lab", "train", "--calibration", str(calibrated), "--out", str(slm), "--steps", "2"]
    _ok(runner.invoke(app, [*args, "--batch", "4", "--slm-weights", "--lr", "0.5"]))
    assert (slm / "slm-weights.safetensors").is_file()
    _ok(runner.invoke(app, ["lab", "eval", "--run", str(slm), "--n", "6"]))
    assert json.loads((slm / "lab-eval.json").read_text())["slm_weights"] is True
    # the perfect-calibration control takes the simulated lab's hidden errors as the twin
    oracle = tmp_path / "oracle"
    args = ["lab", "train", "--calibration", str(calibrated), "--out", str(oracle), "--steps", "1"]
    _ok(runner.invoke(app, [*args, "--batch", "4", "--twin-from-hidden-errors"]))
    assert "hidden errors" in json.loads((oracle / "lab.json").read_text())["twin"]
    res = _ok(runner.invoke(app, ["lab", "eval", "--run", str(train), "--n", "6"]))
    assert "reconstruction_psnr_db" in res.output
    out = json.loads((train / "lab-eval.json").read_text())
    assert out["lab_frames_used_by_training"] == 8 and out["frames_used_by_eval"] == 6
    _ok(runner.invoke(app, ["lab", "eval", "--run", str(calibrated), "--n", "6", "--designed"]))
    # the FID judge's training is chosen as in `eval`; its file does not replace the default's
    args = ["lab", "eval", "--run", str(train), "--n", "6", "--fid-n", "4"]
    _ok(runner.invoke(app, [*args, "--classifier-augment", "colour"]))
    shape = json.loads((train / "lab-eval-judge-colour.json").read_text())
    assert shape["classifier_augment"] == "colour" and shape["n_fid"] == 4
    picture = iio.imread(train / "lab-eval-judge-colour.png")  # 6 held-out, 6 rec, 4 samples
    assert picture.shape[0] > 2 * picture.shape[1] / 6 and (train / "lab-eval.png").is_file()
    assert json.loads((train / "lab-eval.json").read_text()) == out
    _refused(runner.invoke(app, [*args, "--classifier-augment", "hue"]), "hue")
    # the same chip in a lab with other hidden errors (a new fabrication)
    _ok(runner.invoke(app, ["lab", "eval", "--run", str(train), "--n", "6", "--error-seed", "3"]))
    other = json.loads((train / "lab-eval-error-seed-3.json").read_text())
    assert other["error_seed"] == 3
    assert other["reconstruction_psnr_db"] != out["reconstruction_psnr_db"]
    # the same setup with the chip made again (new placement and etch-depth errors)
    args = ["lab", "eval", "--run", str(train), "--n", "6", "--fabrication-seed", "4"]
    _ok(runner.invoke(app, args))
    refab_same_setup = json.loads((train / "lab-eval-fabrication-seed-4.json").read_text())
    assert refab_same_setup["fabrication_seed"] == 4 and refab_same_setup["error_seed"] == 0
    assert refab_same_setup["reconstruction_psnr_db"] != out["reconstruction_psnr_db"]
    # a refabricated chip is evaluated with its own heights in the lab
    refab = tmp_path / "refab"
    _ok(
        runner.invoke(
            app,
            [
                "lab",
                "train",
                "--calibration",
                str(calibrated),
                "--out",
                str(refab),
                "--mode",
                "refabricate",
                "--steps",
                "1",
                "--batch",
                "4",
            ],
        )
    )
    info = json.loads((refab / "lab.json").read_text())
    assert info["fabricated_from"] == str(refab.resolve())


def test_resume_continues_from_the_last_checkpoint(calibrated, tmp_path):
    cal = tmp_path / "cal"
    shutil.copytree(calibrated, cal)
    frames = (cal / "calibration-frames.safetensors").read_bytes()
    _ok(
        runner.invoke(
            app,
            [
                "lab",
                "calibrate",
                "--checkpoint",
                str(json.loads((cal / "lab.json").read_text())["design_checkpoint"]),
                "--out",
                str(cal),
                *QUICK,
                "--steps",
                "4",
                "--resume",
            ],
        )
    )
    assert json.loads((cal / "calibration.json").read_text())["steps"] == 4
    assert (cal / "calibration-frames.safetensors").read_bytes() == frames  # measured once
    assert (cal / "checkpoints" / "step-000004").is_dir()


def test_a_used_folder_without_resume_is_refused_and_unchanged(calibrated, tiny_lab_run):
    before = _files(calibrated)
    res = runner.invoke(
        app,
        [
            "lab",
            "calibrate",
            "--checkpoint",
            str(tiny_lab_run),
            "--out",
            str(calibrated),
            *QUICK,
            "--steps",
            "2",
        ],
    )
    _refused(res, "--resume")
    assert _files(calibrated) == before


def test_an_out_of_range_error_model_is_named(tiny_lab_run, tmp_path):
    bad = tmp_path / "errors.toml"
    calibrate = ["lab", "calibrate", "--checkpoint", str(tiny_lab_run), "--out"]
    calibrate += [str(tmp_path / "c"), *QUICK]
    bad.write_text("[fabrication]\nshift_std_m = 1e-3\n")
    res = runner.invoke(app, [*calibrate, "--errors", str(bad)])
    _refused(res, "shift_std_m", "out of range")
    bad.write_text("camera_noise_std = -1\n")
    res = runner.invoke(app, [*calibrate, "--errors", str(bad)])
    _refused(res, "camera_noise_std", "out of range")
    res = runner.invoke(app, [*calibrate, "--families", "tilt"])
    _refused(res, "tilt", "layer_shift")


def test_a_checkpoint_of_another_chip_is_refused(calibrated, tmp_path):
    other = tmp_path / "other"
    images = make_printed_digits(16, size=28, seed=0)[0]
    cfg = TrainConfig(preset="mnist-16f", steps=1, batch_size=2, checkpoint_every=1)
    Trainer(cfg, other, images, progress=False).run()
    (other / "lab.json").write_text(
        json.dumps(
            {
                **json.loads((calibrated / "lab.json").read_text()),
                "preset": "mnist-16f",
                "kind": "train",
            }
        )
    )
    res = runner.invoke(
        app,
        [
            "lab",
            "train",
            "--calibration",
            str(calibrated),
            "--init",
            str(other),
            "--out",
            str(tmp_path / "t"),
            "--steps",
            "1",
        ],
    )
    _refused(res, "mnist-16f", "tiny")
    assert not (tmp_path / "t" / "checkpoints").exists()


def test_missing_frames_from_a_folder_lab_are_named_and_nothing_is_lost(tiny_lab_run, tmp_path):
    out = tmp_path / "c"
    res = runner.invoke(
        app,
        [
            "lab",
            "calibrate",
            "--checkpoint",
            str(tiny_lab_run),
            "--out",
            str(out),
            "--lab",
            "folder",
            "--lab-folder",
            str(tmp_path / "rig"),
            "--timeout-s",
            "0.2",
            *QUICK,
        ],
    )
    _refused(res, "no frames arrived", "000001")
    assert (tmp_path / "rig" / "requests" / "000001" / "slm.npy").is_file()
    assert not (out / "checkpoints").exists()
    _refused(runner.invoke(app, ["lab", "eval", "--run", str(tmp_path)]), "not a lab run folder")


def test_error_messages_never_fold_a_long_path(tmp_path, monkeypatch):
    # rich folds long words at the console width; an error naming a path must keep it whole
    import typer

    from lightgen import cli

    monkeypatch.setattr(cli.console, "width", 40)
    long = "/tmp/" + "x" * 80 + "/frames/000001.npy"
    with cli.console.capture() as cap, pytest.raises(typer.Exit):
        cli._fail(f"no frames arrived at {long!r}")
    assert long in cap.get()


def test_robust_redesign_runs_resumes_and_refuses_a_mismatch(calibrated, tmp_path):
    out = tmp_path / "robust"
    args = ["lab", "train", "--calibration", str(calibrated), "--out", str(out), "--batch", "4"]
    robust = [*args, "--mode", "refabricate", "--robust-fabrication"]
    _ok(runner.invoke(app, [*robust, "--steps", "1"]))
    rep = json.loads((out / "train.json").read_text())
    assert rep["robust_fabrication"] is True and rep["lab_frames"] == 0
    assert json.loads((out / "lab.json").read_text())["robust_fabrication"] is True
    kept = _files(out)
    _refused(
        runner.invoke(app, [*args, "--mode", "refabricate", "--steps", "2", "--resume"]),
        "--robust-fabrication",
        "resume it the same way",
    )
    assert _files(out) == kept  # nothing lost
    _ok(runner.invoke(app, [*robust, "--steps", "2", "--resume"]))
    assert json.loads((out / "train.json").read_text())["steps"] == 2
    _refused(
        runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--robust-fabrication"]),
        "--robust-fabrication",
        "--mode refabricate",
    )


def test_in_place_training_on_a_chip_made_again(calibrated, tmp_path):
    """`lab train --fabrication-seed S`: the lab holds the chip made again in the same setup,
    the same chip `lab eval --fabrication-seed S` measures (0 steps: the same numbers), the
    twin's chip families start at the design; resumed on another chip: refused."""
    redesign = tmp_path / "redesign"
    base = ["lab", "train", "--calibration", str(calibrated), "--batch", "4"]
    _ok(
        runner.invoke(app, [*base, "--out", str(redesign), "--mode", "refabricate", "--steps", "1"])
    )
    args = ["lab", "eval", "--run", str(redesign), "--n", "6", "--fabrication-seed", "4"]
    _ok(runner.invoke(app, args))
    made_again = json.loads((redesign / "lab-eval-fabrication-seed-4.json").read_text())
    on_it = tmp_path / "on-chip-4"
    start = [*base, "--out", str(on_it), "--init", str(redesign), "--fabrication-seed", "4"]
    _ok(runner.invoke(app, [*start, "--steps", "0"]))
    info = json.loads((on_it / "lab.json").read_text())
    assert info["error_model"]["fabrication_seed"] == 4 and "made again" in info["twin"]
    _ok(runner.invoke(app, ["lab", "eval", "--run", str(on_it), "--n", "6"]))
    ev = json.loads((on_it / "lab-eval.json").read_text())
    assert ev["fabrication_seed"] == 4
    assert ev["reconstruction_psnr_db"] == made_again["reconstruction_psnr_db"]
    # in place on it: lab frames through that chip; continuing from it keeps the chip
    _ok(runner.invoke(app, [*start, "--steps", "1", "--resume"]))
    assert json.loads((on_it / "train.json").read_text())["lab_frames"] == 4
    more = tmp_path / "more"
    _ok(runner.invoke(app, [*base, "--out", str(more), "--init", str(on_it), "--steps", "0"]))
    assert json.loads((more / "lab.json").read_text())["error_model"]["fabrication_seed"] == 4
    kept = _files(on_it)
    _refused(
        runner.invoke(app, [*base, "--out", str(on_it), "--init", str(redesign), "--resume"]),
        "fabrication seed 4",
        "--fabrication-seed",
    )
    assert _files(on_it) == kept  # nothing lost
    robust = [*base, "--out", str(tmp_path / "r"), "--mode", "refabricate", "--robust-fabrication"]
    _refused(runner.invoke(app, [*robust, "--fabrication-seed", "4"]), "--fabrication-seed")
