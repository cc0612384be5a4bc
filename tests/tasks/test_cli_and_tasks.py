import json

import pytest
import torch
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.generate import interpolate, reconstruct, sample
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer, load_trained

runner = CliRunner()


@pytest.fixture
def train_seen(monkeypatch) -> dict:
    """What ``lightgen train`` hands the trainer (``cfg``, ``resume``), caught before any
    training: the command then exits 2 with "stop here"."""
    import lightgen.train.trainer as trainer

    seen: dict = {}

    def fake_train(cfg, out, resume=False):
        seen.update(cfg=cfg, resume=resume)
        raise ValueError("stop here")

    monkeypatch.setattr(trainer, "train_from_config", fake_train)
    return seen


def _text(res) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(res.output.split())


def test_info_prints_the_paper_preset_neuron_count():
    res = runner.invoke(app, ["info", "--preset", "paper"])
    assert res.exit_code == 0
    assert "2,359,296" in _text(res) and "100" in res.output


def test_info_prints_connectivity_and_warns_on_an_under_connected_design():
    res = runner.invoke(app, ["info", "--preset", "emoji-512"])
    assert res.exit_code == 0
    text = _text(res)
    assert "reach / aperture" in text and "generator under-connected" in text
    assert "layer_pixel_samples = 2" in text  # the sampling note of a one-sample-per-pixel design


def test_info_prints_the_chip_a_training_config_builds(tmp_path):
    cfg = tmp_path / "h12.toml"
    cfg.write_text(
        'preset = "mnist-16f"\n[chip]\nlayer_spacing_m = 0.012\nfiber_to_generator_m = 0.012\n'
    )
    res = runner.invoke(app, ["info", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    text = _text(res)
    # reach = d * lambda / (2 * pitch) over the aperture: 12 mm * 33.25 mrad / 0.896 mm
    assert "preset 'mnist-16f' with its overrides" in text and "12.00 │ 0.45" in text
    assert "6.00 │ 0.22" in text  # the hops left at 6 mm
    res = runner.invoke(app, ["info", "--config", str(cfg), "--preset", "paper"])
    assert res.exit_code == 2 and "not both" in _text(res)
    cfg.write_text('preset = "mnist-16f"\n[chip]\nlayer_spacing_m = -1.0\n')
    res = runner.invoke(app, ["info", "--config", str(cfg)])
    assert res.exit_code == 2 and "layer_spacing_m" in _text(res)


def test_unknown_preset_is_a_clear_cli_error():
    res = runner.invoke(app, ["info", "--preset", "huge"])
    assert res.exit_code == 2 and "unknown preset" in _text(res)


def test_train_refine_trains_the_same_chip_on_a_finer_grid(tmp_path, train_seen):
    seen = train_seen
    args = ["train", "--preset", "tiny", "--out", str(tmp_path / "r"), "--resume"]
    res = runner.invoke(app, [*args, "--refine", "2"])
    assert res.exit_code == 2 and "stop here" in _text(res), res.output
    coarse = TrainConfig(preset="tiny").chip_config()
    fine = seen["cfg"].chip_config()
    assert seen["resume"] is True and fine.layer_pixel_samples == 2 * coarse.layer_pixel_samples
    assert fine.grid_samples == 2 * coarse.grid_samples
    res = runner.invoke(app, [*args, "--model", "vae", "--refine", "2"])
    assert res.exit_code == 2 and "Drop --refine" in _text(res)
    res = runner.invoke(app, [*args, "--refine", "0"])
    assert res.exit_code == 2 and "--refine" in _text(res)


def test_train_rejects_an_unknown_config_key(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"stepz": 3}))
    res = runner.invoke(app, ["train", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown key 'stepz'" in _text(res)


def test_demo_writes_every_promised_file(tmp_path):
    res = runner.invoke(app, ["demo", "--preset", "tiny", "--steps", "4", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for name in (
        "samples.png",
        "reconstructions.png",
        "interpolation.png",
        "ols.png",
        "height_maps.png",
        "report.md",
        "report.json",
        "report.html",
    ):
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.glob(".tmp-*"))


def test_generation_is_seeded_and_in_range(tiny_run):
    system, _ = load_trained(tiny_run)
    a, za = sample(system, 4, seed=5)
    b, zb = sample(system, 4, seed=5)
    assert torch.equal(a, b) and torch.equal(za, zb)
    assert a.shape == (4, 1, 12, 12) and a.min() >= 0 and a.max() <= 1


def test_interpolation_starts_and_ends_at_the_reconstructions(tiny_run):
    system, _ = load_trained(tiny_run)
    x = make_printed_digits(2, size=12, seed=3)[0]
    path = interpolate(system, x[0], x[1], steps=5)
    rec = reconstruct(system, x)
    assert torch.allclose(path[0], rec[0], atol=1e-5) and torch.allclose(
        path[-1], rec[1], atol=1e-5
    )


def test_generate_command_writes_a_grid(tiny_run, tmp_path):
    res = runner.invoke(
        app, ["generate", "--checkpoint", str(tiny_run), "--n", "8", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "samples.png").is_file()


def test_generate_from_a_folder_that_is_no_checkpoint_is_refused(tmp_path):
    res = runner.invoke(app, ["generate", "--checkpoint", str(tmp_path)])
    assert res.exit_code == 2 and "not a lightgen checkpoint" in _text(res)


def test_eval_reports_fid_kid_and_optical_efficiencies(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "eval.json"
    res = runner.invoke(
        app, ["eval", "--checkpoint", str(tiny_run), "--n", "64", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["fid"] >= 0 and "SmallCNN" in r["features"]
    assert (
        0 < r["fiber_coupling_efficiency"] <= 1 and 0 < r["generator_diffraction_efficiency"] <= 1
    )


def test_eval_refine_rescores_the_same_chip_on_a_finer_grid(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    outs = {}
    for r in (1, 2):
        outs[r] = tmp_path / f"eval{r}.json"
        args = ["eval", "--checkpoint", str(tiny_run), "--n", "16", "--out", str(outs[r])]
        res = runner.invoke(app, [*args, "--refine", str(r)])
        assert res.exit_code == 0, res.output
    one, two = (json.loads(outs[r].read_text()) for r in (1, 2))
    assert two["refine"] == 2 and "refine" not in one
    assert (
        two["reconstruction_psnr_db"] != one["reconstruction_psnr_db"]
    )  # the same masks, other physics
    assert abs(two["reconstruction_psnr_db"] - one["reconstruction_psnr_db"]) < 10
    res = runner.invoke(app, ["eval", "--generated", str(tmp_path), "--refine", "2"])
    assert res.exit_code == 2 and "--refine" in _text(res)


def test_eval_refine_rescores_a_hybrid_and_refuses_a_digital_vae(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    images = make_printed_digits(64, size=12, seed=0)[0]
    for model in ("hybrid", "vae"):
        cfg = TrainConfig(model=model, preset="tiny", steps=2, batch_size=8, checkpoint_every=2)
        Trainer(cfg, tmp_path / model, images, progress=False).run()
    out = tmp_path / "hybrid.json"
    args = ["eval", "--checkpoint", str(tmp_path / "hybrid"), "--n", "16", "--out", str(out)]
    res = runner.invoke(app, [*args, "--refine", "2"])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["refine"] == 2
    res = runner.invoke(app, ["eval", "--checkpoint", str(tmp_path / "vae"), "--refine", "2"])
    assert res.exit_code == 2 and "'vae' model" in _text(res) and "Drop --refine" in _text(res)


def test_perf_reproduces_the_papers_measured_throughput():
    res = runner.invoke(app, ["perf", "--preset", "paper"])
    assert res.exit_code == 0, res.output
    assert "3.57e+04 TOPS" in res.output and "664 TOPS/W" in res.output


def test_perf_of_a_trained_chip_uses_its_design(tiny_run):
    res = runner.invoke(app, ["perf", "--checkpoint", str(tiny_run)])
    assert res.exit_code == 0, res.output
    assert "Design 'tiny'" in res.output


def test_export_writes_height_maps_gds_and_a_design_sheet(tiny_run, tmp_path):
    out = tmp_path / "export"
    res = runner.invoke(app, ["export", "--checkpoint", str(tiny_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    names = {p.suffix for p in out.rglob("*") if p.is_file()}
    assert {".png", ".npy", ".gds", ".json", ".md", ".csv"} <= names
    again = runner.invoke(app, ["export", "--checkpoint", str(tiny_run), "--out", str(out)])
    assert again.exit_code == 2  # never overwrites without --overwrite


def test_denoise_edit_and_video_commands_write_their_reports(tiny_run, tmp_path):
    for cmd, extra, report in (
        ("denoise", ["--n", "16", "--dataset", "printed-digits"], "denoise.json"),
        ("edit", ["--n", "16", "--k", "2", "--dataset", "printed-digits"], "edit.json"),
        (
            "video",
            ["--n-frames", "6", "--keyframes", "2", "--no-mp4", "--dataset", "printed-digits"],
            "video.json",
        ),
    ):
        out = tmp_path / cmd
        res = runner.invoke(app, [cmd, "--checkpoint", str(tiny_run), "--out", str(out), *extra])
        assert res.exit_code == 0, (cmd, res.output)
        assert (out / report).is_file(), cmd


def test_every_train_option_overrides_its_train_config_field(tmp_path, train_seen):
    seen = train_seen
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"steps": 3, "lr": 0.5}))
    args = ["train", "--config", str(cfg), "--out", str(tmp_path / "r"), "--preset", "tiny"]
    args += ["--dataset", "emoji-svg", "--emoji-families", "noto, twemoji", "--seed", "7"]
    args += ["--steps", "9", "--beta", "0.5", "--device", "cpu", "--sigma-x", "0.1"]
    args += ["--emoji-groups", "animals-nature", "--emoji-background", "white"]
    args += ["--condition-last-dims"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "stop here" in _text(res), res.output
    c = seen["cfg"]
    assert (c.preset, c.dataset, c.seed, c.steps, c.lr, c.beta) == (
        "tiny",
        "emoji-svg",
        7,
        9,
        0.5,
        0.5,
    )
    assert (c.device, c.sigma_x, c.emoji_background) == ("cpu", 0.1, "white")
    assert list(c.emoji_families) == ["noto", "twemoji"]
    assert list(c.emoji_groups) == ["animals-nature"]
    assert c.condition_all_wavelengths is False and seen["resume"] is False


def test_check_grid_reports_psnr_on_the_own_and_finer_grids_with_the_verdict(
    tiny_run, tmp_path, monkeypatch
):
    from lightgen.data.registry import load_dataset
    from lightgen.metrics.image import psnr

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "check.json"
    args = ["check-grid", "--checkpoint", str(tiny_run), "--n", "8", "--out", str(out)]
    res = runner.invoke(app, [*args, "--refine", "4", "--refine", "2"])
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    rows = rep["rows"]
    assert [r["refine"] for r in rows] == [1, 2, 4]
    base = load_trained(tiny_run)[1].chip_config().layer_pixel_samples
    assert [r["layer_pixel_samples"] for r in rows] == [base, 2 * base, 4 * base]
    # the own-grid row is the run's plain reconstruction PSNR
    system, cfg = load_trained(tiny_run)
    x = load_dataset(cfg.dataset, split="test", size=cfg.chip_config().image_size).images[:8]
    with torch.no_grad():
        own = psnr(reconstruct(system, x), x).item()
    assert rows[0]["psnr_db"] == pytest.approx(own, abs=1e-3)
    assert rows[1]["psnr_db"] != rows[0]["psnr_db"]  # the same masks, other physics
    assert rows[1]["change_db"] == pytest.approx(rows[1]["psnr_db"] - rows[0]["psnr_db"])
    assert rep["resolved"] == (abs(rows[1]["change_db"]) < 0.3)
    assert ("NOT resolved" in res.output) == (not rep["resolved"])
    res = runner.invoke(app, [*args, "--refine", "1"])
    assert res.exit_code == 2 and "refine factors [1]" in _text(res)


def test_check_grid_verdict_follows_the_0_3_db_rule(tiny_run, monkeypatch):
    import lightgen.tasks.grid_check as gc

    for values, want in (([20.0, 19.75, 18.0], True), ([20.0, 19.65, 19.6], False)):
        it = iter(values)
        monkeypatch.setattr(gc, "psnr", lambda a, b, it=it: torch.tensor(next(it)))
        rep = gc.grid_check(tiny_run, [2, 4], n=4)
        assert rep["resolved"] is want
    it = iter([20.0, 10.0])
    monkeypatch.setattr(gc, "psnr", lambda a, b: torch.tensor(next(it)))
    assert gc.grid_check(tiny_run, [4], n=4)["resolved"] is None  # no 2x row, no verdict


def test_check_grid_refuses_a_digital_vae(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(model="vae", preset="tiny", steps=2, batch_size=8, checkpoint_every=2)
    Trainer(cfg, tmp_path / "vae", images, progress=False).run()
    res = runner.invoke(app, ["check-grid", "--checkpoint", str(tmp_path / "vae")])
    assert res.exit_code == 2 and "'vae' model" in _text(res)
    assert not (tmp_path / "vae" / "grid-check.json").exists()
