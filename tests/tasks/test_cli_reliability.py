"""Bad input to any sub-command: exit code 2, one message naming the value and the fix, no
traceback, no file changed. Work in a run folder is never lost or mixed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.train.checkpoint import lock_run_dir

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
TINY = ["--preset", "tiny", "--batch-size", "8", "--train-limit", "64"]


def _text(res) -> str:
    return " ".join(res.output.split())


def _refused(res, *needles: str) -> None:
    """Exit code 2, every needle in the message, and no traceback."""
    text = _text(res)
    assert res.exit_code == 2, text
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in text, (needle, text)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


# ------------------------------------------------------------------ 1. lost or mixed work


@pytest.mark.parametrize("resume", [False, True], ids=["new-run", "resume"])
def test_train_into_a_run_folder_another_process_writes_exits_2_and_changes_nothing(
    run_copy, tmp_path, resume
):
    out = run_copy if resume else tmp_path / "fresh"
    before = _snapshot(out) if resume else {}
    holder = lock_run_dir(out)
    try:
        args = ["train", "--out", str(out), *TINY, "--steps", "5"]
        res = runner.invoke(app, [*args, "--resume"] if resume else args)
    finally:
        holder.close()
    _refused(res, "in use by another lightgen process", "choose another --out")
    assert _snapshot(out) == before


def test_train_resume_with_steps_below_the_checkpoint_exits_2_and_changes_nothing(run_copy):
    before = _snapshot(run_copy)
    res = runner.invoke(
        app, ["train", "--out", str(run_copy), "--resume", *TINY[:4], "--steps", "1"]
    )
    _refused(res, "already at step 3", "--steps 3 or more")
    assert _snapshot(run_copy) == before


def test_generate_never_overwrites_samples_png_without_overwrite(tiny_run, tmp_path):
    (tmp_path / "samples.png").write_bytes(b"mine")
    args = ["generate", "--checkpoint", str(tiny_run), "--n", "2", "--out", str(tmp_path)]
    _refused(runner.invoke(app, args), "samples.png exists", "--overwrite")
    assert (tmp_path / "samples.png").read_bytes() == b"mine"
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_generate_from_a_run_whose_latest_dangles_uses_the_newest_checkpoint_and_warns(
    run_copy, tmp_path
):
    ck = run_copy / "checkpoints"
    os.replace(ck / "step-000003", ck / ".old-step-000003")  # a save killed mid-swap
    res = runner.invoke(
        app, ["generate", "--checkpoint", str(run_copy), "--n", "2", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "newest complete checkpoint" in _text(res)


# ------------------------------------------------------------------ 2. config files


def _config(tmp_path: Path, kind: str) -> Path:
    if kind == "binary .toml":
        p = tmp_path / "c.toml"
        p.write_bytes(b"\x00\xff\xfe\x89PNG\x00")
    elif kind == "JSON list":
        p = tmp_path / "c.json"
        p.write_text("[1, 2]")
    elif kind == "unknown [chip] key":
        p = tmp_path / "c.toml"
        p.write_text('preset = "tiny"\n[chip]\nbogus_m = 1.0\n')
    elif kind == "a folder":
        p = tmp_path / "c.toml"
        p.mkdir()
    elif kind == ".yaml":
        p = tmp_path / "c.yaml"
        p.write_text("steps: 3\n")
    return p


CONFIG_ERRORS = {
    "binary .toml": ["is not a UTF-8 text file"],
    "JSON list": ["holds a JSON list", "training config keys", "sigma_x"],
    "unknown [chip] key": ["unknown key 'chip.bogus_m'", "under [chip]", "pixel_pitch_m"],
    "a folder": ["is a folder", ".json or .toml"],
    ".yaml": ["'.yaml' is not a config format", ".json or .toml"],
}


@pytest.mark.parametrize("kind", list(CONFIG_ERRORS))
def test_a_bad_config_file_is_named_with_the_valid_keys_or_formats(tmp_path, kind):
    cfg = _config(tmp_path, kind)
    res = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(tmp_path / "r")])
    _refused(res, *CONFIG_ERRORS[kind])
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ 3. values


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--sigma-x", "inf"], ["sigma_x: must be a finite number"]),
        (["--sigma-x", "1e-30"], ["sigma_x=1e-30 is outside", "e.g. 0.1"]),
        (["--lr", "nan"], ["lr: must be a finite number"]),
        (["--device", "gpu"], ["device='gpu'", "'cpu', 'cuda'"]),
        (["--seed", str(2**70)], ["seed", "4294967295"]),
    ],
    ids=["sigma-x-inf", "sigma-x-tiny", "lr-nan", "device-gpu", "seed-2**70"],
)
def test_train_refuses_a_non_finite_or_unphysical_value_before_any_work(tmp_path, args, needles):
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), *TINY, *args])
    _refused(res, *needles)
    assert not (tmp_path / "r").exists()


def test_train_refuses_an_infinite_input_power_in_the_chip_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('preset = "tiny"\n[chip]\ninput_power_w = inf\n')
    res = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(tmp_path / "r")])
    _refused(res, "chip.input_power_w: must be a finite number")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["generate", "--n", "0"], ["--n 0 is below 1", "e.g. --n 64"]),
        (["generate", "--n", "-4"], ["--n -4 is below 1"]),
        (["generate", "--component", "1"], ["single Gaussian", "--prior mixture"]),
        (["generate", "--seed", str(2**70)], ["--seed"]),
        (["eval", "--n", "0"], ["--n 0 is below 2"]),
        (["eval", "--seed", str(2**70)], ["--seed"]),
        (["eval", "--fab-levels", "1"], ["--fab-levels 1 is below 2", "--fab-levels 8"]),
        (["eval", "--fab-shift-std-m", "-1e-6"], ["--fab-shift-std-m"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] in ("generate", "eval") else "",
)
def test_generate_and_eval_refuse_bad_values_naming_the_flag(tiny_run, tmp_path, args, needles):
    out = tmp_path / ("g" if args[0] == "generate" else "e.json")
    res = runner.invoke(app, [*args, "--checkpoint", str(tiny_run), "--out", str(out)])
    _refused(res, *needles)
    assert not out.exists()


@pytest.fixture
def no_eval(monkeypatch):
    """Fail the test if the evaluation starts: output paths are checked before the work."""
    import lightgen.tasks.evaluate as ev

    def boom(*a, **k):
        raise AssertionError("the evaluation ran before the output path was checked")

    monkeypatch.setattr(ev, "evaluate", boom)


def test_output_paths_are_checked_before_the_work_starts(tiny_run, tmp_path, no_eval):
    a_file = tmp_path / "a-file"
    a_file.write_text("keep")
    cases = [
        (["train", "--out", str(a_file), *TINY], "is an existing file"),
        (["train", "--out", str(a_file / "run"), *TINY], "is a file"),
        (["generate", "--checkpoint", str(tiny_run), "--out", str(a_file)], "existing file"),
        (["eval", "--checkpoint", str(tiny_run), "--out", str(tmp_path)], "is a folder"),
        (["eval", "--checkpoint", str(tiny_run), "--out", str(a_file / "e.json")], "existing file"),
        (["denoise", "--checkpoint", str(tiny_run), "--out", str(a_file)], "existing file"),
        (["demo", "--preset", "tiny", "--out", str(a_file)], "existing file"),
    ]
    for args, needle in cases:
        _refused(runner.invoke(app, args), needle)
    assert a_file.read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_a_read_only_out_folder_is_refused_before_the_work(tiny_run, tmp_path, no_eval):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = runner.invoke(
            app, ["generate", "--checkpoint", str(tiny_run), "--out", str(ro / "g")]
        )
        _refused(res, "not writable")
    finally:
        ro.chmod(0o700)


def test_a_non_finite_loss_names_the_likely_parameter(tmp_path, monkeypatch):
    from dataclasses import replace

    import lightgen.train.system as system_module
    import lightgen.train.trainer as tr
    from lightgen.data.procedural import make_printed_digits
    from lightgen.train.config import TrainConfig

    real = system_module.bogt_loss

    def overflowing(*a, **k):  # what --sigma-x far below the camera noise does
        t = real(*a, **k)
        return replace(t, loss=t.loss * float("inf"), recon=t.recon * float("inf"))

    monkeypatch.setattr(system_module, "bogt_loss", overflowing)
    images = make_printed_digits(16, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=2, batch_size=8, sigma_x=1e-4)
    with pytest.raises(FloatingPointError, match=r"--sigma-x \(now 0\.0001\)"):
        tr.Trainer(cfg, tmp_path / "r", images, progress=False).run()
    assert not (tmp_path / "r" / "checkpoints").exists()


# ------------------------------------------------------------------ 4. first hour


def test_eval_uses_the_data_root_saved_in_the_checkpoint(run_copy, tmp_path, monkeypatch):
    import lightgen.tasks.evaluate as ev

    state = run_copy / "checkpoints" / "step-000003" / "state.json"
    meta = json.loads(state.read_text())
    meta["config"]["data_root"] = str(tmp_path / "my-data")
    state.write_text(json.dumps(meta))
    seen = {}

    def spy(system, cfg, options):
        seen["data_root"] = options.data_root
        return {"dataset": cfg.dataset}

    monkeypatch.setattr(ev, "evaluate", spy)
    out = tmp_path / "e.json"
    res = runner.invoke(app, ["eval", "--checkpoint", str(run_copy), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert seen["data_root"] == str(tmp_path / "my-data")


def test_version_flag_and_python_dash_m_lightgen_work(tmp_path):
    from lightgen import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and f"lightgen {__version__}" in res.output
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "lightgen", "--version"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0 and f"lightgen {__version__}" in proc.stdout, proc.stderr


def test_demo_into_a_used_folder_gives_advice_demo_can_follow(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    res = runner.invoke(app, ["demo", "--preset", "tiny", "--steps", "2", "--out", str(tmp_path)])
    _refused(res, "demo always trains anew", "Choose a new --out folder")
    assert "pass --resume to continue" not in _text(res)
