"""benchmarks/noise_aware.py: fine-tuning with the camera in the loop at a stated laser power."""

import json
import math

import pytest

from lightgen.chip.chip import LightGenChip
from lightgen.tasks.energy import camera_settings
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer, load_trained


def test_the_noise_aware_config_states_the_laser_power_and_freezes_the_gain(load_script):
    mod = load_script("noise_aware")
    cfg = TrainConfig(preset="tiny", steps=5)
    ncfg = mod.noise_aware_config(cfg, 1.5, 2e-10, camera_settings(), steps=7, lr=None)
    chip_cfg = ncfg.chip_config()
    assert chip_cfg.camera.model == "device" and ncfg.steps == 7 and ncfg.lr == cfg.lr
    assert chip_cfg.input_power_w == pytest.approx(2e-10 / math.exp(1.5))
    assert chip_cfg.generator_power_w == chip_cfg.input_power_w
    chip = LightGenChip(chip_cfg)
    chip.laser_log_power_gain.data.fill_(1.5)
    assert chip.laser_power_w == pytest.approx(2e-10)
    assert not chip.laser_log_power_gain.requires_grad


def test_noise_aware_fine_tune_keeps_the_laser_power_and_writes_both_curves(
    load_script, tmp_path, monkeypatch
):
    from lightgen.data.procedural import make_printed_digits

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=2, batch_size=8, checkpoint_every=2)
    Trainer(cfg, base, images, progress=False).run()
    out = tmp_path / "na"
    rc = load_script("noise_aware").main(
        [
            "--checkpoint", str(base), "--out", str(out), "--train-power-w", "1e-9",
            "--steps", "2", "--powers", "1e-10,1e-8", "--n", "16",
        ]
    )  # fmt: skip
    assert rc == 0
    r = json.loads((out / "noise-aware.json").read_text())
    assert len(r["noise_aware"]["curve"]) == 2
    assert r["noise_aware"]["operating_point"]["reference_psnr_db"] == pytest.approx(
        r["noise_free_trained"]["reference"]["reconstruction_psnr_db"]
    )
    before, _ = load_trained(base)
    after, _ = load_trained(out / "run")
    gain = after.model.chip.laser_log_power_gain.detach()
    assert float(gain) == float(before.model.chip.laser_log_power_gain.detach())
    assert (out / "noise-aware.png").stat().st_size > 1000
