"""Multi-view task, cross-view objective: encode view A, inject angle B, reconstruct view B."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lightgen.tasks import multiview as mv
from lightgen.tasks.multiview import (
    MultiviewData,
    MultiviewSetup,
    chair_mean_views,
    cross_view_pairs,
    fourier_fit_views,
    make_multiview_data,
    run_multiview,
    split_views,
    unseen_view_pairs,
    view_conditions,
)

TINY = MultiviewSetup(
    n_styles=2,
    n_views=8,
    render_size=24,
    image_size=12,
    n_harmonics=2,
    condition_amplitude=1.5,
    objective="cross-view",
)


def test_cross_view_pairs_are_every_ordered_pair_of_training_views_of_one_chair():
    data = make_multiview_data(TINY)
    src, tgt = cross_view_pairs(data)
    train_views, _ = split_views(8, 4, 2)
    assert len(src) == len(tgt) == 2 * len(train_views) ** 2 == 72
    assert torch.equal(data.style[src], data.style[tgt])  # same chair
    assert data.train[src].all() and data.train[tgt].all()  # never a held-out view
    pairs = {(int(a), int(b)) for a, b in zip(data.view[src], data.view[tgt], strict=True)}
    assert pairs == {(a, b) for a in train_views for b in train_views}
    assert (src != tgt).sum() == 2 * (len(train_views) ** 2 - len(train_views))


@pytest.fixture(scope="module")
def cross_run(tmp_path_factory, run_with_trainer_spy):
    out = tmp_path_factory.mktemp("mvx")
    report, seen = run_with_trainer_spy(out, TINY, n_turntable=1, mp4=False)
    return out, report, seen


def test_trainer_gets_source_views_as_inputs_and_other_views_as_targets(cross_run):
    _, report, seen = cross_run
    data = make_multiview_data(TINY)
    src, tgt = cross_view_pairs(data)
    assert torch.equal(seen["images"], data.images[src])
    assert torch.equal(seen["targets"], data.images[tgt])
    # the injected angle is the target's, not the source's
    want = view_conditions(data.azimuth_rad[tgt], TINY.n_harmonics, TINY.condition_amplitude)
    assert torch.equal(seen["conditions"], want)
    assert not torch.equal(
        seen["conditions"],
        view_conditions(data.azimuth_rad[src], TINY.n_harmonics, TINY.condition_amplitude),
    )
    assert report["train"]["objective"] == "cross-view"
    assert report["train"]["n_train_examples"] == 72
    assert report["train"]["n_train_images"] == 12


def test_cross_view_training_never_sees_a_held_out_angle(cross_run):
    _, report, seen = cross_run
    phase = torch.remainder(torch.angle(seen["conditions"][:, 0]).double(), 2 * math.pi)
    held = torch.tensor(report["train"]["heldout_azimuths_deg"], dtype=torch.float64)
    assert float((phase[:, None] * 180 / math.pi - held[None]).abs().min()) > 1.0


def test_re_evaluation_keeps_the_objective_of_the_run(cross_run, tmp_path):
    out, report, _ = cross_run
    saved = json.loads((out / "run" / "multiview_setup.json").read_text())
    assert saved["objective"] == "cross-view"
    again = run_multiview(tmp_path, checkpoint=out / "run", n_turntable=1, mp4=False)
    assert again["setup"] == report["setup"]
    assert again["mean"]["chip"]["psnr_db"] == pytest.approx(report["mean"]["chip"]["psnr_db"])


def test_old_setup_files_without_an_objective_mean_plain_bogt():
    assert MultiviewSetup().objective == "bogt"


def test_unknown_objective_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"objective must be one of .*'cross-view'"):
        MultiviewSetup(objective="crossview")


def test_cli_trains_with_the_cross_view_objective(tmp_path):
    from typer.testing import CliRunner

    from lightgen.cli import app

    args = ["multiview", "--out", str(tmp_path), "--steps", "1", "--preset", "tiny"]
    args += ["--n-styles", "2", "--n-views", "8", "--render-size", "24", "--image-size", "12"]
    args += ["--n-harmonics", "2", "--batch-size", "8", "--turntable-styles", "1", "--no-mp4"]
    res = CliRunner().invoke(app, [*args, "--objective", "cross-view"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "multiview.json").read_text())
    assert report["setup"]["objective"] == "cross-view"
    assert report["train"]["n_train_examples"] == 72
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--objective", "x"])
    assert bad.exit_code == 2 and "objective" in bad.output


def _order_two_data() -> MultiviewData:
    """Pixel values 0.4 + 0.1 style + 0.2 cos(theta + style) + 0.1 cos(2 theta): order 2."""
    s = TINY
    view = torch.arange(s.n_views).repeat(s.n_styles)
    style = torch.arange(s.n_styles).repeat_interleave(s.n_views)
    az = 2 * math.pi * view.double() / s.n_views
    ramp = torch.linspace(0.5, 1.0, s.image_size, dtype=torch.float64)  # varies over pixels
    value = 0.4 + 0.1 * style + 0.2 * torch.cos(az + style) + 0.1 * torch.cos(2 * az)
    images = (value[:, None, None, None] * ramp).expand(-1, 1, s.image_size, -1).float()
    train_views, _ = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    train = torch.isin(view, torch.tensor(train_views))
    return MultiviewData(s, images, images, style, view, az, train)


def test_fourier_fit_recovers_held_out_views_of_a_signal_within_its_angular_bandwidth():
    data = _order_two_data()
    target = data.images[unseen_view_pairs(data)["target"]]
    assert torch.allclose(fourier_fit_views(data, 2), target, atol=1e-5)
    # order 1 cannot draw the cos(2 theta) term (-0.1 at the held-out 90 and 270 deg)
    assert (fourier_fit_views(data, 1) - target).abs().max() > 0.05


def test_chair_mean_reference_is_the_mean_of_the_training_views_of_the_target_chair():
    data = _order_two_data()
    p = unseen_view_pairs(data)
    got = chair_mean_views(data)
    for i in range(len(p["target"])):
        st = int(data.style[p["target"][i]])
        want = data.images[(data.style == st) & data.train].mean(0)
        assert torch.allclose(got[i], want, atol=1e-6)
    assert not torch.allclose(got[0], got[-1])  # two chairs, two pictures


def test_run_reports_the_digital_references_beside_the_chip(cross_run):
    _, report, _ = cross_run
    for name in ("reference_fourier_fit", "reference_chair_mean"):
        assert math.isfinite(report["mean"][name]["psnr_db"]), name


def test_turntable_static_reference_scores_like_a_chip_that_repeats_the_source_view(
    monkeypatch, tmp_path
):
    from lightgen.train.config import TrainConfig
    from lightgen.train.trainer import BOGTSystem

    data = make_multiview_data(TINY)
    system = BOGTSystem(TrainConfig(preset="tiny", condition_fibers=2)).eval()

    def repeat_source(system, src, n_frames, amplitude):
        az = 2 * math.pi * torch.arange(n_frames, dtype=torch.float64) / n_frames
        return src.expand(n_frames, *src.shape).clone(), az

    monkeypatch.setattr(mv, "turntable_frames", repeat_source)
    rep = mv.write_turntable(system, data, tmp_path, n_turntable=2, mp4=False, upscale=1)
    static = rep["static_source_vs_render_at_unseen_azimuths"]
    assert static == pytest.approx(rep["vs_render_at_unseen_azimuths"])
    assert math.isfinite(static["psnr_db"])
    # at the source's own angle the picture is exact: left out so the mean stays finite
    assert math.isinf(rep["vs_render_at_training_azimuths"]["psnr_db"])
    other = rep["static_source_vs_render_at_other_training_azimuths"]
    assert math.isfinite(other["psnr_db"]) and other["ssim"] < 1
    assert rep["angle_response_ratio"] == 0.0
