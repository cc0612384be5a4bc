import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lightgen.data.procedural import make_printed_digits
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.trainer import Trainer, load_trained

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images():
    return make_printed_digits(64, size=12, seed=0)[0]


def _cfg(**kw):
    base = dict(preset="tiny", steps=4, batch_size=8, checkpoint_every=2, log_every=1, lr=0.02)
    return TrainConfig(**{**base, **kw})


def _params(run: Path, step: int) -> dict:
    return load_file(run / "checkpoints" / f"step-{step:06d}" / "model.safetensors")


def test_training_lowers_the_bogt_loss(tmp_path, images):
    t = Trainer(_cfg(steps=25, lr=0.05), tmp_path, images, progress=False)
    t.run()
    rows = (tmp_path / "log.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[1]) for r in rows]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_resume_continues_exactly_as_an_uninterrupted_run(tmp_path, images):
    Trainer(_cfg(steps=4), tmp_path / "straight", images, progress=False).run()
    Trainer(_cfg(steps=2), tmp_path / "split", images, progress=False).run()
    Trainer(_cfg(steps=4), tmp_path / "split", images, resume=True, progress=False).run()
    a, b = _params(tmp_path / "straight", 4), _params(tmp_path / "split", 4)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_new_run_never_overwrites_existing_checkpoints(tmp_path, images):
    Trainer(_cfg(steps=2), tmp_path, images, progress=False).run()
    before = (tmp_path / "checkpoints" / "step-000002" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="--resume"):
        Trainer(_cfg(steps=2), tmp_path, images, progress=False)
    assert (tmp_path / "checkpoints" / "step-000002" / "model.safetensors").read_bytes() == before


def test_resume_with_another_config_is_refused(tmp_path, images):
    Trainer(_cfg(steps=2), tmp_path, images, progress=False).run()
    with pytest.raises(ValueError, match=r"different config.*only lr, beta, sigma_x may change"):
        Trainer(_cfg(steps=4, batch_size=4), tmp_path, images, resume=True, progress=False)


def test_resume_with_a_smaller_step_size_scales_the_next_adam_step_and_records_it(tmp_path, images):
    Trainer(_cfg(steps=2), tmp_path / "a", images, progress=False).run()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    Trainer(_cfg(steps=3), tmp_path / "a", images, resume=True, progress=False).run()
    with pytest.warns(UserWarning, match=r"step 2 with lr 0\.005 \(was 0\.02\)"):
        t = Trainer(_cfg(steps=3, lr=0.005), tmp_path / "b", images, resume=True, progress=False)
    assert [g["lr"] for g in t.optimizer.param_groups] == [0.005]  # not the saved 0.02
    t.run()
    # same parameters, batch, noise and moments at step 2: Adam's step is lr * m / (sqrt(v) + eps)
    p2, pa, pb = _params(tmp_path / "a", 2), _params(tmp_path / "a", 3), _params(tmp_path / "b", 3)
    moved = [k for k in p2 if not torch.equal(pa[k], p2[k])]
    assert moved
    for k in moved:
        torch.testing.assert_close(pb[k] - p2[k], 0.25 * (pa[k] - p2[k]), rtol=1e-4, atol=1e-6)
    state = json.loads((tmp_path / "b" / "checkpoints" / "step-000003" / "state.json").read_text())
    assert state["schedule"] == [{"step": 2, "lr": 0.005}]
    assert state["config"]["lr"] == 0.005
    assert "schedule" not in json.loads(
        (tmp_path / "a" / "checkpoints" / "step-000003" / "state.json").read_text()
    )
    with pytest.warns(UserWarning, match=r"beta 0\.5 \(was 1\.0\)"):
        Trainer(
            _cfg(steps=4, lr=0.005, beta=0.5), tmp_path / "b", images, resume=True, progress=False
        ).run()
    state = json.loads((tmp_path / "b" / "checkpoints" / "step-000004" / "state.json").read_text())
    assert state["schedule"] == [{"step": 2, "lr": 0.005}, {"step": 3, "beta": 0.5}]


def test_coarse_to_fine_resume_goes_on_with_the_same_chip_on_a_finer_grid(tmp_path, images):
    from lightgen.chip.fabrication import refined

    coarse = Trainer(_cfg(steps=2), tmp_path, images, progress=False)
    coarse.run()
    fine_cfg = _cfg(steps=3).refined(2)
    c, f = coarse.cfg.chip_config(), fine_cfg.chip_config()
    assert (f.grid_samples, f.layer_pixel_samples) == (2 * c.grid_samples, 2)
    assert f.layer_pixel_pitch_m == c.layer_pixel_pitch_m  # the same physical pixels
    with pytest.warns(UserWarning, match=r"a grid 2x finer \(layer_pixel_samples 1 -> 2\)"):
        t = Trainer(fine_cfg, tmp_path, images, resume=True, progress=False)
    # the resumed chip is the coarse run's chip simulated finer: the same images on either
    z = torch.randn(4, coarse.system.model.latent_dim, dtype=torch.complex64)
    with torch.no_grad():
        want = refined(coarse.system.model.chip, 2).eval().decode(z)
        torch.testing.assert_close(t.system.model.chip.eval().decode(z), want)
        assert not torch.allclose(coarse.system.model.chip.decode(z), want, atol=1e-3)
    t.run()
    state = json.loads((tmp_path / "checkpoints" / "step-000003" / "state.json").read_text())
    assert state["schedule"] == [{"step": 2, "refine": 2}]
    assert state["config"]["chip"]["layer_pixel_samples"] == 2
    with pytest.raises(ValueError, match=r"2x finer than the chip given now.*--refine 2"):
        Trainer(_cfg(steps=4), tmp_path, images, resume=True, progress=False)
    Trainer(_cfg(steps=4).refined(2), tmp_path, images, resume=True, progress=False).run()
    state = json.loads((tmp_path / "checkpoints" / "step-000004" / "state.json").read_text())
    assert state["schedule"] == [{"step": 2, "refine": 2}]  # the same grid: nothing new
    other = _cfg(steps=5, chip={"grid_samples": 64, "layer_pixel_samples": 2})  # not a refinement
    with pytest.raises(ValueError, match=r"different config.*'chip'"):
        Trainer(other.refined(2), tmp_path, images, resume=True, progress=False)


def test_refined_train_config_refuses_a_digital_model_and_a_bad_factor():
    assert _cfg().refined(1) == _cfg()
    with pytest.raises(ValueError, match=r"'vae' model is digital.*Drop --refine"):
        _cfg(model="vae").refined(2)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=r"whole number >= 1"):
            _cfg().refined(bad)
    with pytest.raises(ValueError, match=r"invalid training config"):
        _cfg().refined(10_000)  # a grid over ChipConfig's limit


def test_resume_from_a_moved_data_folder_checks_the_data_not_the_path(tmp_path, images):
    Trainer(_cfg(steps=2), tmp_path, images, progress=False).run()
    moved = _cfg(steps=3, data_root=str(tmp_path / "elsewhere"))
    Trainer(moved, tmp_path, images, resume=True, progress=False).run()
    assert (tmp_path / "checkpoints" / "step-000003").is_dir()
    with pytest.raises(ValueError, match="training images differ"):  # other data: refused
        Trainer(_cfg(steps=4), tmp_path, images[:32], resume=True, progress=False)


def test_resume_accepts_tuple_valued_chip_overrides_saved_as_json_lists(tmp_path, images):
    chip = {"wavelengths_m": (532e-9,)}  # a tuple from Python; JSON stores a list
    Trainer(_cfg(steps=2, chip=chip), tmp_path, images, progress=False).run()
    Trainer(_cfg(steps=3, chip=chip), tmp_path, images, resume=True, progress=False).run()
    assert (tmp_path / "checkpoints" / "step-000003").is_dir()


def test_truncated_checkpoint_gives_a_clear_error(tmp_path, images):
    Trainer(_cfg(steps=2), tmp_path, images, progress=False).run()
    f = tmp_path / "checkpoints" / "step-000002" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_trained(tmp_path)


def test_checkpoint_from_another_preset_is_named(tmp_path, images):
    Trainer(_cfg(steps=1), tmp_path, images, progress=False).run()
    with pytest.raises(ValueError, match="preset 'tiny', not 'mnist'"):
        load_trained(tmp_path, expect_preset="mnist")


def test_non_finite_loss_stops_with_a_message_and_saves_nothing(tmp_path, images):
    bad = images.clone()
    bad[:] = float("nan")
    with pytest.raises(FloatingPointError, match="images hold NaN or inf"):
        Trainer(_cfg(steps=3), tmp_path, bad, progress=False).run()
    assert not (tmp_path / "checkpoints").exists()


def test_config_errors_name_the_key_and_the_fix():
    with pytest.raises(ValueError, match="unknown key 'stpes'"):
        load_train_config({"stpes": 3})
    with pytest.raises(ValueError, match="lr"):
        load_train_config({"lr": -1})
    with pytest.raises(ValueError, match="unknown preset"):
        load_train_config({"preset": "huge"})


def test_checkpoint_holds_the_resolved_config_as_json(tmp_path, images):
    Trainer(_cfg(steps=1), tmp_path, images, progress=False).run()
    meta = json.loads((tmp_path / "checkpoints" / "step-000001" / "state.json").read_text())
    assert meta["config"]["preset"] == "tiny" and meta["step"] == 1


@pytest.mark.slow
def test_two_process_data_parallel_matches_one_process(tmp_path, images):
    """DDP over 2 CPU processes (gloo) averages gradients of two half batches = the full batch."""
    script = tmp_path / "ddp.py"
    script.write_text(
        "import sys, torch\n"
        "from lightgen.data.procedural import make_printed_digits\n"
        "from lightgen.train.config import TrainConfig\n"
        "from lightgen.train.trainer import Trainer\n"
        "imgs = make_printed_digits(64, size=12, seed=0)[0]\n"
        "cfg = TrainConfig(preset='tiny', steps=3, batch_size=8, checkpoint_every=3, lr=0.02)\n"
        "Trainer(cfg, sys.argv[1], imgs, progress=False).run()\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # a free port, so parallel or repeated runs never collide
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            port,
            str(script),
            str(tmp_path / "ddp"),
        ],
        check=False,
        env=env,
        cwd=ROOT,
        timeout=300,
        capture_output=True,
        text=True,
    )
    # every rank must exit cleanly (a rank leaving before the others once died in gloo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    Trainer(_cfg(steps=3, checkpoint_every=3), tmp_path / "single", images, progress=False).run()
    a, b = _params(tmp_path / "ddp", 3), _params(tmp_path / "single", 3)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4), k


def test_pyfftw_backend_gives_the_same_training_as_torch(tmp_path, images):
    pytest.importorskip("pyfftw")
    from lightgen.optics.fft import set_fft_backend

    try:
        Trainer(_cfg(steps=2, checkpoint_every=2), tmp_path / "t", images, progress=False).run()
        Trainer(
            _cfg(steps=2, checkpoint_every=2, fft_backend="pyfftw"),
            tmp_path / "f",
            images,
            progress=False,
        ).run()
    finally:
        set_fft_backend("torch")
    a, b = _params(tmp_path / "t", 2), _params(tmp_path / "f", 2)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4), k


def test_train_from_config_is_what_the_cli_trains(tmp_path):
    from typer.testing import CliRunner

    from lightgen.cli import app
    from lightgen.train.trainer import train_from_config

    cfg = TrainConfig(
        preset="tiny",
        dataset="printed-digits",
        steps=2,
        batch_size=8,
        train_limit=32,
        condition_on="labels",
    )
    res = train_from_config(cfg, tmp_path / "lib", progress=False)
    assert res.steps == 2
    (tmp_path / "c.json").write_text(cfg.model_dump_json())
    cli = CliRunner().invoke(
        app, ["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "cli")]
    )
    assert cli.exit_code == 0, cli.output
    step = "checkpoints/step-000002/model.safetensors"
    ours, theirs = load_file(tmp_path / "lib" / step), load_file(tmp_path / "cli" / step)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    system, saved = load_trained(tmp_path / "lib")
    assert saved.condition_fibers == 10 and system.n_conditions == 10  # one per digit class
