"""Multi-view task: angle conditioning physics, view split, baselines, bookkeeping of a run."""

from __future__ import annotations

import json
import math

import imageio.v2 as iio2
import pytest
import torch

from lightgen.tasks import multiview as mv
from lightgen.tasks.animation import ffmpeg_unavailable_reason
from lightgen.tasks.multiview import (
    MultiviewData,
    MultiviewSetup,
    evaluate_unseen_views,
    make_multiview_data,
    nearest_training_view,
    neighbour_views,
    predict_views,
    run_multiview,
    score_unseen_views,
    split_views,
    unseen_view_pairs,
    view_conditions,
)
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import BOGTSystem

TINY = MultiviewSetup(
    n_styles=2, n_views=8, render_size=24, image_size=12, n_harmonics=2, condition_amplitude=1.5
)
DEG = math.pi / 180


# ------------------------------------------------------------------ conditioning physics
def test_injected_view_values_are_unit_phasors_of_the_harmonics_of_the_angle():
    az = torch.tensor([0.0, 0.4, 2.0, -1.0], dtype=torch.float64)
    c = view_conditions(az, n_harmonics=3, amplitude=2.0)
    assert c.shape == (4, 3) and c.dtype == torch.complex64
    assert torch.allclose(c.abs(), torch.full((4, 3), 2.0))
    k = torch.arange(1, 4, dtype=torch.float64)
    expected = torch.polar(torch.full((4, 3), 2.0, dtype=torch.float64), az[:, None] * k)
    assert torch.allclose(c.to(torch.complex128), expected, atol=1e-6)
    assert torch.allclose(view_conditions(az + 2 * math.pi, 3, 2.0), c, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_camera_image_is_a_fourier_series_of_order_k_in_the_injected_angle(k):
    # linear optics + |E|^2 detection: I(theta) = |A + sum_k c_k h_k|^2 has harmonics <= K
    torch.manual_seed(0)
    system = BOGTSystem(TrainConfig(preset="tiny", condition_fibers=k)).eval()
    m = 16
    az = 2 * math.pi * torch.arange(m, dtype=torch.float64) / m
    z_free = torch.randn(1, system.free_dim, dtype=torch.complex64).expand(m, -1)
    with torch.no_grad():
        z = system.with_conditions(z_free, view_conditions(az, k, 1.0))
        img = system.model.decode(z).double()  # raw camera, no clipping
    spec = torch.fft.rfft(img, dim=0).abs().flatten(1).sum(1)  # per harmonic, summed over pixels
    assert float(spec[k]) > 1e-3 * float(spec[0])  # the top harmonic is really there
    assert float(spec[k + 1 :].max()) < 1e-5 * float(spec[0])  # and nothing above it


# ------------------------------------------------------------------ views and baselines
def test_every_fourth_view_is_held_out_and_the_sets_partition_the_views():
    train, held = split_views(24, 4, 2)
    assert held == [2, 6, 10, 14, 18, 22]
    assert sorted(train + held) == list(range(24)) and not set(train) & set(held)


def test_nearest_training_view_wraps_around_and_breaks_ties_backwards():
    train = torch.tensor([0.0, 90.0, 180.0, 270.0]) * DEG
    assert nearest_training_view(100 * DEG, train) == 1
    assert nearest_training_view(350 * DEG, train) == 0  # across 360 -> 0
    assert nearest_training_view(45 * DEG, train) == 0  # tie 0/90: the one behind
    assert nearest_training_view(315 * DEG, train) == 3  # tie 270/360: the one behind
    assert nearest_training_view(-80 * DEG, train) == 3
    assert neighbour_views(45 * DEG, train) == (0, 1)
    assert neighbour_views(350 * DEG, train) == (3, 0)


def _hand_made_data() -> MultiviewData:
    """Constant images: value 0.1 + 0.05 view + 0.3 style (identifies every sample)."""
    s = TINY
    n = s.n_styles * s.n_views
    view = torch.arange(s.n_views).repeat(s.n_styles)
    style = torch.arange(s.n_styles).repeat_interleave(s.n_views)
    value = 0.1 + 0.05 * view + 0.3 * style
    images = value.view(n, 1, 1, 1).expand(n, 1, s.image_size, s.image_size).float().clone()
    train_views, _ = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    return MultiviewData(
        s,
        images,
        images,
        style,
        view,
        2 * math.pi * view.double() / s.n_views,
        torch.isin(view, torch.tensor(train_views)),
    )


def test_unseen_pairs_take_sources_from_training_views_of_the_same_chair():
    data = _hand_made_data()
    p = unseen_view_pairs(data)
    assert not data.train[p["target"]].any()
    for key in ("nearest", "fixed", "back", "ahead"):
        assert data.train[p[key]].all()
        assert torch.equal(data.style[p[key]], data.style[p["target"]])
    # 8 views, held out 2 and 6 (90, 270 deg): ties 45/135 and 225/315 -> 45 and 225
    assert data.view[p["nearest"]].tolist() == [1, 5, 1, 5]
    assert data.view[p["back"]].tolist() == [1, 5, 1, 5]
    assert data.view[p["ahead"]].tolist() == [3, 7, 3, 7]


def test_baseline_scores_are_computed_against_the_held_out_render():
    data = _hand_made_data()
    pairs = unseen_view_pairs(data)
    exact = data.images[pairs["target"]]
    rep = score_unseen_views(data, {"perfect": exact})
    assert rep["n_pairs"] == 4
    assert [r["azimuth_deg"] for r in rep["per_heldout_view"]] == [90.0, 270.0]
    assert [r["nearest_training_azimuth_deg"] for r in rep["per_heldout_view"]] == [45.0, 225.0]
    assert math.isinf(rep["mean"]["perfect"]["psnr_db"])
    # nearest training view differs by one view step: constant error 0.05
    assert rep["mean"]["baseline_nearest"]["psnr_db"] == pytest.approx(-20 * math.log10(0.05))
    # the two neighbours average to exactly the held-out value
    assert rep["mean"]["baseline_blend"]["psnr_db"] > 100


def test_chip_prediction_uses_the_nearest_view_latent_and_the_held_out_angle(monkeypatch):
    """A stub camera shows the injected angle (left half) and the free latent (right half)."""
    data = _hand_made_data()
    system = BOGTSystem(TrainConfig(preset="tiny", condition_fibers=2)).eval()
    k, s = 2, TINY.image_size

    def posterior(images):
        mu = torch.zeros(images.shape[0], system.model.latent_dim, dtype=torch.complex64)
        mu[:, 0] = images.mean((1, 2, 3))  # the source sample's identity
        return mu, torch.zeros_like(mu.real)

    def decode(z, generator=0):
        angle = torch.remainder(torch.angle(z[:, -k]).double(), 2 * math.pi) / (2 * math.pi)
        img = torch.zeros(z.shape[0], 1, s, s)
        img[..., : s // 2] = angle.float().view(-1, 1, 1, 1)
        img[..., s // 2 :] = z[:, 0].real.view(-1, 1, 1, 1)
        return img

    monkeypatch.setattr(system.model, "posterior", posterior)
    monkeypatch.setattr(system.model, "decode", decode)
    rep, imgs = evaluate_unseen_views(system, data)
    p = unseen_view_pairs(data)
    chip = imgs["chip"]
    assert torch.allclose(chip[:, 0, 0, 0], (data.view[p["target"]] / 8).float(), atol=1e-5)
    assert torch.allclose(chip[:, 0, 0, -1], data.images[p["nearest"], 0, 0, 0], atol=1e-6)
    assert rep["n_pairs"] == 4 and "chip_fixed_source" in rep["mean"]


# ------------------------------------------------------------------ a whole (tiny) run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, run_with_trainer_spy):
    out = tmp_path_factory.mktemp("mv")
    report, seen = run_with_trainer_spy(out, TINY, n_turntable=2)
    return out, report, seen


def test_run_writes_report_figures_turntable_and_checkpoint(tiny_run):
    out, report, _ = tiny_run
    for name in ("multiview.json", "dataset.png", "unseen_views.png", "turntable_strip.png"):
        assert (out / name).is_file(), name
    assert (out / "run" / "multiview_setup.json").is_file()
    assert json.loads((out / "multiview.json").read_text())["n_pairs"] == 4
    gif = iio2.mimread(out / "turntable.gif")
    assert len(gif) >= 2
    if ffmpeg_unavailable_reason() is None:
        with iio2.get_reader(out / "turntable.mp4") as r:
            assert r.count_frames() == 48
    assert report["turntable"]["n_frames"] == 48
    assert not list(out.rglob(".tmp-*"))  # nothing half-written left behind


def test_held_out_angles_are_never_shown_during_training(tiny_run):
    _, report, seen = tiny_run
    assert seen["cfg"].condition_fibers == TINY.n_harmonics
    angles_deg = torch.remainder(torch.angle(seen["conditions"][:, 0]).double(), 2 * math.pi) / DEG
    held = torch.tensor(report["train"]["heldout_azimuths_deg"], dtype=torch.float64)
    assert held.tolist() == [90.0, 270.0]
    assert float((angles_deg[:, None] - held[None]).abs().min()) > 1.0
    data = make_multiview_data(TINY)
    assert torch.equal(seen["images"], data.images[data.train])
    assert report["train"]["n_train_images"] == 12


def test_run_reports_chip_and_baselines_per_held_out_angle(tiny_run):
    _, report, _ = tiny_run
    rows = report["per_heldout_view"]
    assert [r["azimuth_deg"] for r in rows] == [90.0, 270.0]
    for r in rows:
        for method in ("chip", "chip_fixed_source", "baseline_nearest", "baseline_blend"):
            assert math.isfinite(r[method]["psnr_db"]) and -1 <= r[method]["ssim"] <= 1
    beats = report["chip_beats_nearest_baseline"]
    assert beats["psnr"] == (
        report["mean"]["chip"]["psnr_db"] > report["mean"]["baseline_nearest"]["psnr_db"]
    )
    assert "injection port" in report["physical_honesty"]


def test_a_trained_run_can_be_re_evaluated_from_its_checkpoint(tiny_run, tmp_path):
    out, report, _ = tiny_run
    again = run_multiview(tmp_path, checkpoint=out / "run", n_turntable=2, mp4=False)
    assert again["setup"] == report["setup"]
    assert again["mean"]["chip"]["psnr_db"] == pytest.approx(report["mean"]["chip"]["psnr_db"])
    assert again["turntable"]["mp4_skipped_reason"] == "mp4=False"


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: view_conditions([0.0], n_harmonics=0), "n_harmonics"),
        (lambda: view_conditions([0.0], amplitude=0.0), "amplitude"),
        (lambda: view_conditions([math.nan]), "azimuth_rad"),
        (lambda: split_views(24, 1), "holdout_every"),
        (lambda: split_views(24, 4, 4), "holdout_offset"),
        (lambda: nearest_training_view(0.0, []), "train_azimuths_rad"),
        (lambda: MultiviewSetup(image_size=8), "image_size"),
        (lambda: MultiviewSetup(elevation_deg=95), "elevation_deg"),
        (lambda: MultiviewSetup(n_styles=0), "n_styles"),
        (lambda: run_multiview("unused", n_frames=10), "n_frames"),
        (
            lambda: mv.train_multiview(
                "unused", _hand_made_data(), 1, "tiny", {}, {"model": "vae"}
            ),
            "model='chip'",
        ),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_checkpoint_errors_name_the_fix(tiny_run, tmp_path):
    out, _, _ = tiny_run
    with pytest.raises(ValueError, match="Pass only one"):
        run_multiview(tmp_path, setup=TINY, checkpoint=out / "run")
    with pytest.raises(ValueError, match=r"multiview_setup\.json"):
        run_multiview(tmp_path, checkpoint=tmp_path)


def test_predicting_views_needs_condition_fibers_and_one_angle_per_image():
    x = torch.zeros(2, 1, 12, 12)
    with pytest.raises(ValueError, match="condition_fibers=0"):
        predict_views(BOGTSystem(TrainConfig(preset="tiny")).eval(), x, [0.0, 1.0])
    system = BOGTSystem(TrainConfig(preset="tiny", condition_fibers=2)).eval()
    with pytest.raises(ValueError, match="one azimuth per image"):
        predict_views(system, x, [0.0, 1.0, 2.0])


def test_turntable_response_is_zero_when_the_camera_ignores_the_injected_angle(
    monkeypatch, tmp_path
):
    data = make_multiview_data(TINY)
    system = BOGTSystem(TrainConfig(preset="tiny", condition_fibers=2)).eval()
    s = TINY.image_size
    monkeypatch.setattr(system.model, "decode", lambda z, g=0: torch.full((len(z), 1, s, s), 0.3))
    rep = mv.write_turntable(system, data, tmp_path, n_turntable=2, mp4=False, upscale=1)
    assert rep["angle_response_ratio"] == 0.0
    assert rep["render_smoothness"]["mean_abs_change"] > 0  # the real chair does turn
    assert (tmp_path / "turntable.gif").is_file() and (tmp_path / "turntable_strip.png").is_file()


# ------------------------------------------------------------------ view-angle routing
def test_view_angle_routing_sends_each_azimuth_to_its_sector_generator():
    # 6 generators: generator g draws azimuths in [60 g, 60 (g + 1)) degrees
    cfg = TrainConfig(
        preset="tiny", chip={"n_generators": 6}, condition_fibers=2, routing="view-angle"
    )
    system = BOGTSystem(cfg)
    az_deg = torch.tensor([10.0, 90.0, 150.0, 210.0, 300.0, 359.0, 370.0, -30.0])
    cond = view_conditions(torch.deg2rad(az_deg), 2, amplitude=2.0)
    free = torch.zeros(len(az_deg), system.free_dim, dtype=torch.complex64)
    route = system.routing(system.with_conditions(free, cond))
    assert route.tolist() == [0, 1, 2, 3, 5, 5, 0, 5]


def test_view_angle_routing_trains_only_the_generator_of_the_shown_views(tmp_path):
    from lightgen.train.trainer import Trainer

    cfg = TrainConfig(
        preset="tiny",
        chip={"n_generators": 2},
        condition_fibers=1,
        routing="view-angle",
        steps=1,
        batch_size=4,
        checkpoint_every=1,
    )
    images = torch.rand(4, 1, 12, 12)
    cond = view_conditions(torch.deg2rad(torch.tensor([10.0, 40.0, 100.0, 170.0])), 1)
    t = Trainer(cfg, tmp_path, images, conditions=cond, progress=False)
    before = [[p.detach().clone() for p in g.parameters()] for g in t.system.model.chip.generators]
    t.run()
    after = [list(g.parameters()) for g in t.system.model.chip.generators]
    changed = [
        any(not torch.equal(a, b) for a, b in zip(x, y, strict=True))
        for x, y in zip(before, after, strict=True)
    ]
    assert changed == [True, False]  # every view is in [0, 180): generator 1 never lit


def test_view_angle_routing_needs_a_condition_fiber():
    with pytest.raises(ValueError, match="routing='view-angle'"):
        TrainConfig(routing="view-angle")
