import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from lightgen.data.procedural import make_printed_digits
from lightgen.tasks import animation, video
from lightgen.tasks.animation import gif_frame_ms, render_frames, write_gif, write_mp4
from lightgen.tasks.edit import FiberEdit, PortSetting, decode_edited
from lightgen.tasks.generate import encode, reconstruct
from lightgen.tasks.video import (
    edit_walk_frames,
    frame_change_stats,
    frame_changes,
    interpolation_frames,
    interpolation_path,
    ramp,
    run_video,
)


@pytest.fixture(scope="module")
def digits():
    return make_printed_digits(4, size=12, seed=9)[0]


def _gif_frames_and_ms(path):
    with Image.open(path) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    return len(durations), sum(durations)


# ----------------------------------------------------------- statistics
@pytest.mark.parametrize("loop", [False, True])
def test_a_constant_video_has_zero_change_statistics(loop):
    stats = frame_change_stats(torch.full((6, 1, 5, 5), 0.3), loop)
    assert stats["mean_abs_change"] == stats["max_abs_change"] == stats["cv"] == 0.0
    assert stats["transitions"] == (6 if loop else 5)


def test_change_statistics_on_a_hand_made_video():
    frames = torch.tensor([0.0, 0.1, 0.3]).view(3, 1, 1, 1).expand(3, 1, 4, 4)
    s = frame_change_stats(frames)  # changes 0.1, 0.2
    assert s["mean_abs_change"] == pytest.approx(0.15)
    assert s["max_abs_change"] == pytest.approx(0.2)
    assert s["cv"] == pytest.approx(0.05 / 0.15)
    s = frame_change_stats(frames, loop=True)  # + wrap-around 0.3 -> 0
    assert s["mean_abs_change"] == pytest.approx(0.2)
    assert s["cv"] == pytest.approx(math.sqrt(2 / 3) * 0.1 / 0.2)
    torch.testing.assert_close(frame_changes(frames), torch.tensor([0.1, 0.2]))


def test_a_single_frame_has_no_transitions():
    with pytest.raises(ValueError, match="T >= 2"):
        frame_change_stats(torch.zeros(1, 1, 4, 4))


# ----------------------------------------------------------- paths
def test_loop_path_visits_every_keyframe_and_midpoints():
    z = torch.randn(4, 3, dtype=torch.complex64)
    p = interpolation_path(z, 8, loop=True)
    torch.testing.assert_close(p[0::2], z)
    torch.testing.assert_close(p[1], (z[0] + z[1]) / 2)
    torch.testing.assert_close(p[7], (z[3] + z[0]) / 2)  # closes the loop


def test_open_path_runs_from_the_first_to_the_last_keyframe():
    z = torch.randn(3, 5)
    p = interpolation_path(z, 5, loop=False)
    torch.testing.assert_close(p[0], z[0])
    torch.testing.assert_close(p[2], z[1])
    torch.testing.assert_close(p[-1], z[2])


def test_ramps_start_at_no_edit_and_reach_full_strength():
    r = ramp(8, loop=True)
    assert r[0] == 0 and r[4] == pytest.approx(1) and r[1] == pytest.approx(r[7])
    torch.testing.assert_close(ramp(5, loop=False), torch.linspace(0, 1, 5, dtype=torch.float64))


def test_interpolation_video_starts_at_the_first_reconstruction(tiny, digits):
    system, _ = tiny
    frames = interpolation_frames(system, digits[:3], 6)
    assert frames.shape == (6, 1, 12, 12)
    torch.testing.assert_close(frames[0], reconstruct(system, digits[:1])[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[2], reconstruct(system, digits[1:2])[0], atol=1e-5, rtol=0)


def test_edit_walk_goes_from_unedited_to_the_full_port_setting(tiny, digits):
    system, _ = tiny
    edit = FiberEdit([1, 5], PortSetting(20.0, 1.0))
    frames = edit_walk_frames(system, digits, edit, n_frames=6)
    assert frames.shape == (6, 4, 1, 12, 12)
    torch.testing.assert_close(frames[0], reconstruct(system, digits), atol=1e-6, rtol=0)
    full = decode_edited(system, encode(system, digits), edit)
    torch.testing.assert_close(frames[3], full, atol=1e-6, rtol=1e-5)
    chip = system.model.chip
    assert not chip.port_attenuation_db.any() and not chip.port_phase_rad.any()


# ----------------------------------------------------------- files
def test_gif_decodes_to_the_frames_written(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (7, 16, 24), dtype=np.uint8)
    path = write_gif(tmp_path / "a.gif", frames, fps=10)
    back = iio.imread(path, index=None)
    assert back.shape[0] == 7 and np.array_equal(back[3][..., 0], frames[3])
    assert _gif_frames_and_ms(path) == (7, 700)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_gif_stores_repeated_frames_once_but_keeps_the_total_duration(tmp_path):
    frames = np.zeros((6, 8, 8), np.uint8)
    frames[3:] = 200  # two runs of identical frames
    n_stored, total_ms = _gif_frames_and_ms(write_gif(tmp_path / "r.gif", frames, fps=12))
    assert n_stored == 2 and total_ms == 6 * gif_frame_ms(12) == 6 * 80


def test_mp4_decodes_to_every_frame_padded_to_16_pixels(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    frames = render_frames(torch.rand(9, 1, 12, 12), upscale=3)  # 36 x 36
    path = write_mp4(tmp_path / "a.mp4", frames, fps=12)
    back = iio.imread(path, index=None, plugin="FFMPEG")
    assert back.shape == (9, 48, 48, 3)


def test_run_video_writes_gif_mp4_and_report(tiny, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    system, cfg = tiny
    rep = run_video(system, cfg, tmp_path, n_frames=6, n_keyframes=3, n_edit_images=2, n_scan=4)
    saved = json.loads((tmp_path / "video.json").read_text())
    for key in ("interpolation", "edit_walk"):
        assert saved[key]["transitions"] == 6 and len(saved[key]["frame_changes"]) == 6
        n_mp4 = iio.imread(tmp_path / f"{key}.mp4", index=None, plugin="FFMPEG").shape[0]
        n_gif, ms = _gif_frames_and_ms(tmp_path / f"{key}.gif")
        assert n_mp4 == 6 and n_gif == saved[key]["gif_frames_stored"] <= 6 and ms == 6 * 80
    assert saved["random_baseline"]["transitions"] == 5
    assert saved["mp4_skipped_reason"] is None and len(rep["edit_walk"]["fibers"]) == 3
    assert rep["edit_walk"]["region"] in ("top-left", "top-right", "bottom-left", "bottom-right")
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_without_ffmpeg_the_mp4_is_skipped_with_a_warning(tiny, tmp_path, monkeypatch):
    for module in (video, animation):  # the task asks, and so does the writer
        monkeypatch.setattr(module, "ffmpeg_unavailable_reason", lambda: "no ffmpeg here (test)")
    with pytest.warns(RuntimeWarning, match="MP4 skipped"):
        rep = run_video(*tiny, tmp_path, n_frames=4, n_keyframes=2, n_edit_images=1, fibers=[0])
    assert rep["mp4_skipped_reason"] == "no ffmpeg here (test)"
    assert (tmp_path / "interpolation.gif").is_file() and not list(tmp_path.glob("*.mp4"))
    with pytest.raises(RuntimeError, match="no ffmpeg here"):
        write_mp4(tmp_path / "x.mp4", np.zeros((2, 16, 16), np.uint8))


# ----------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_frames=1), "n_frames must be >= 2, got 1"),
        (dict(n_keyframes=1), "n_keyframes must be >= 2, got 1"),
        (dict(fps=0), "fps must be a positive"),
        (dict(fps=250), "fps=250.*<= 100"),
        (dict(port=PortSetting(math.inf)), "attenuation_db=inf.*finite"),
        (dict(port=PortSetting(math.inf), fibers=[0]), "attenuation_db=inf.*finite"),
        (dict(fibers=[99]), "fibers contains 99"),
    ],
)
def test_bad_video_settings_are_refused(tiny, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_video(*tiny, tmp_path, **(dict(n_frames=4, n_keyframes=2, n_edit_images=1) | kwargs))


def test_wrong_image_size_is_refused(tiny):
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\).*size=12"):
        interpolation_frames(tiny[0], torch.zeros(2, 1, 8, 8), 4)
