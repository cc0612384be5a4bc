"""Run folders survive concurrent writers, crashes and damaged or foreign files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lightgen.data.procedural import make_printed_digits
from lightgen.train import checkpoint as ckmod
from lightgen.train.checkpoint import RunLockedError, lock_run_dir
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer, load_trained

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def images():
    return make_printed_digits(64, size=12, seed=0)[0]


def _cfg(**kw):
    base = dict(preset="tiny", steps=2, batch_size=8, checkpoint_every=2, log_every=1)
    return TrainConfig(**{**base, **kw})


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def done_run(tmp_path_factory, images):
    """A finished 2-step run, copied by tests that damage it."""
    run = tmp_path_factory.mktemp("done") / "run"
    Trainer(_cfg(), run, images, progress=False).run()
    return run


def _copy(run: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run, dest)
    return dest


# ------------------------------------------------------------------ lost or mixed work


@pytest.mark.parametrize("resume", [False, True], ids=["new-run", "resume"])
def test_a_second_writer_of_a_locked_run_folder_is_refused_and_writes_nothing(
    tmp_path, done_run, images, resume
):
    run = _copy(done_run, tmp_path / "run") if resume else tmp_path / "run"
    before = _snapshot(run) if resume else {}
    holder = lock_run_dir(run)
    try:
        with pytest.raises(RunLockedError, match="in use by another lightgen process"):
            Trainer(_cfg(steps=4), run, images, resume=resume, progress=False)
    finally:
        holder.close()
    assert _snapshot(run) == before


def test_the_run_lock_is_released_by_the_os_when_its_process_dies(tmp_path, images):
    run = tmp_path / "run"
    code = (
        "import sys, time\n"
        "from lightgen.train.checkpoint import lock_run_dir\n"
        "f = lock_run_dir(sys.argv[1])\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            lock_run_dir(run)
    finally:
        proc.kill()  # a crash: no chance to clean up
        proc.wait()
    Trainer(_cfg(), run, images, progress=False).run()  # no stale lock
    assert (run / "checkpoints" / "step-000002").is_dir()


def test_a_save_interrupted_after_moving_the_old_step_aside_loses_no_checkpoint(
    tmp_path, done_run, images
):
    run = _copy(done_run, tmp_path / "run")
    ck = run / "checkpoints"
    want = load_file(ck / "step-000002" / "model.safetensors")
    # the state a kill leaves between "move step-2 aside" and "rename the new step-2 in"
    os.replace(ck / "step-000002", ck / ".old-step-000002")
    with pytest.warns(UserWarning, match="newest complete checkpoint '.old-step-000002'"):
        system, _ = load_trained(run)
    for k, v in want.items():
        assert torch.equal(system.state_dict()[k], v), k
    with pytest.warns(UserWarning, match="newest complete"):
        Trainer(_cfg(steps=3), run, images, resume=True, progress=False).run()
    assert (ck / "latest").read_text().strip() == "step-000003"


def test_a_dangling_latest_falls_back_to_the_newest_complete_checkpoint(tmp_path, images):
    run = tmp_path / "run"
    Trainer(_cfg(steps=4), run, images, progress=False).run()
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-000004")
    with pytest.warns(UserWarning, match="'step-000004', which is missing"):
        _, cfg = load_trained(run)
    assert cfg.steps == 4
    with pytest.warns(UserWarning, match="newest complete checkpoint 'step-000002'"):
        Trainer(_cfg(steps=4), run, images, resume=True, progress=False).run()
    assert (run / "checkpoints" / "step-000004" / "model.safetensors").is_file()


def test_a_failed_rename_of_a_resaved_step_puts_the_old_one_back(tmp_path, done_run, monkeypatch):
    run = _copy(done_run, tmp_path / "run")
    before = _snapshot(run / "checkpoints" / "step-000002")
    system, cfg = load_trained(run)
    real = os.replace

    def failing(src, dst):
        if Path(src).name.startswith(".tmp-step"):
            raise KeyboardInterrupt  # killed mid-save
        return real(src, dst)

    monkeypatch.setattr(ckmod.os, "replace", failing)
    opt = torch.optim.Adam(system.parameters())
    rng = {"noise": torch.Generator().get_state(), "torch": torch.get_rng_state()}
    with pytest.raises(KeyboardInterrupt):
        ckmod.save_checkpoint(run, 2, system, opt, rng, cfg.model_dump())
    assert _snapshot(run / "checkpoints" / "step-000002") == before


def test_resuming_a_finished_run_does_not_rewrite_its_last_checkpoint(tmp_path, done_run, images):
    run = _copy(done_run, tmp_path / "run")
    model = run / "checkpoints" / "step-000002" / "model.safetensors"
    inode = model.stat().st_ino
    res = Trainer(_cfg(), run, images, resume=True, progress=False).run()
    assert model.stat().st_ino == inode and res.checkpoint.name == "step-000002"


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused_and_writes_nothing(
    tmp_path, done_run, images
):
    run = _copy(done_run, tmp_path / "run")
    before = _snapshot(run)
    with pytest.raises(ValueError, match=r"already at step 2\. Pass --steps 2 or more"):
        Trainer(_cfg(steps=1), run, images, resume=True, progress=False)
    assert _snapshot(run) == before


def test_the_log_after_a_resume_holds_each_step_once(tmp_path, done_run, images):
    run = _copy(done_run, tmp_path / "run")
    with open(run / "log.csv", "a") as f:  # a run killed after logging steps 3-4 and half of 5
        f.write("3,1,1,1,1,0.1\r\n4,1,1,1,1,0.2\r\n5,0.9")
    Trainer(_cfg(steps=5), run, images, resume=True, progress=False).run()
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and [int(r.split(",")[0]) for r in rows[1:]] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert all(r.split(",")[1] != "1" for r in rows[3:])  # steps 3-5 are the resumed run's


# ------------------------------------------------------------------ damaged or foreign files


def _retype_first_tensor(file: Path, old: str, new: str) -> None:
    raw = bytearray(file.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = raw[8 : 8 + n].decode()
    assert f'"dtype":"{old}"' in header
    raw[8 : 8 + n] = header.replace(f'"dtype":"{old}"', f'"dtype":"{new}"', 1).encode()
    file.write_bytes(bytes(raw))


def _reshape_first_tensor(file: Path) -> None:
    tensors = load_file(file)
    name = sorted(tensors)[0]
    tensors[name] = torch.cat([tensors[name].reshape(-1), tensors[name].reshape(-1)])
    save_file(tensors, file)


def _damage(run: Path, how: str) -> None:
    ck = run / "checkpoints" / "step-000002"
    if how == "dtype F32 -> I32":
        _retype_first_tensor(ck / "model.safetensors", "F32", "I32")
    elif how == "changed shape":
        _reshape_first_tensor(ck / "model.safetensors")
    elif how == "state.json a list":
        (ck / "state.json").write_text("[1, 2]")
    elif how == "state.json without config":
        meta = json.loads((ck / "state.json").read_text())
        del meta["config"]
        (ck / "state.json").write_text(json.dumps(meta))
    elif how == "state.json not text":
        (ck / "state.json").write_bytes(b"\xff\xfe\x00garbage")


DAMAGE = {
    "dtype F32 -> I32": "int32",
    "changed shape": "needs float32",
    "state.json a list": "holds a JSON list",
    "state.json without config": "no 'config' object",
    "state.json not text": "is corrupt",
}


@pytest.mark.parametrize("how", list(DAMAGE))
@pytest.mark.parametrize("reader", ["load_trained", "resume"])
def test_a_damaged_or_foreign_checkpoint_is_named_not_loaded(
    tmp_path, done_run, images, how, reader
):
    run = _copy(done_run, tmp_path / "run")
    _damage(run, how)
    with pytest.raises(ValueError, match=DAMAGE[how]):
        if reader == "load_trained":
            load_trained(run)
        else:
            Trainer(_cfg(steps=3), run, images, resume=True, progress=False)


@pytest.mark.parametrize("name", ["optimizer.safetensors", "rng.safetensors"])
def test_a_truncated_optimizer_or_rng_file_is_named_on_resume(tmp_path, done_run, images, name):
    run = _copy(done_run, tmp_path / "run")
    f = run / "checkpoints" / "step-000002" / name
    f.write_bytes(f.read_bytes()[:50])
    before = _snapshot(run)
    with pytest.raises(ValueError, match=f"{name} is truncated or corrupt"):
        Trainer(_cfg(steps=3), run, images, resume=True, progress=False)
    assert _snapshot(run) == before


def test_an_optimizer_file_of_another_shape_is_named_on_resume(tmp_path, done_run, images):
    run = _copy(done_run, tmp_path / "run")
    _reshape_first_tensor(run / "checkpoints" / "step-000002" / "optimizer.safetensors")
    with pytest.raises(ValueError, match="does not fit this model's optimizer"):
        Trainer(_cfg(steps=3), run, images, resume=True, progress=False)
