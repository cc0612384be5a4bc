r"""Latent-walk videos: smooth paths through the optical latent space (OLS).

Two walks, each rendered as GIF (Pillow, via imageio) and MP4 (H.264 via
imageio-ffmpeg):

* **interpolation**: the injection port drives the fibers along straight lines
  between the encodings :math:`z_0, \dots, z_{K-1}` of ``K`` held-out images (and back
  to :math:`z_0` when ``loop``): frame ``j`` of ``T`` sits at :math:`u = jK/T`,
  :math:`z = (1 - f) z_{\lfloor u \rfloor} + f z_{\lfloor u \rfloor + 1}`, :math:`f = u - \lfloor u \rfloor`.
  Complex latents are interpolated linearly (amplitude and phase together), as
  :func:`lightgen.tasks.generate.interpolate` does.
* **edit walk**: the ports of chosen fibers ramp from no change to a
  :class:`~lightgen.tasks.edit.PortSetting` (``attenuation_db`` / ``phase_rad``; and
  back when ``loop``: ramp :math:`s_j = (1 - \cos 2\pi j/T)/2`; else
  :math:`s_j = j/(T - 1)`), see :mod:`lightgen.tasks.edit` for the port physics.

Smoothness statistics: with per-frame change
:math:`d_j = \langle |F_{j+1} - F_j| \rangle_{pixels}` (images in [0, 1]; for a loop
the wrap-around change :math:`F_{T-1} \to F_0` counts too, since the viewer sees it),
report mean and max of :math:`d_j` and its coefficient of variation
:math:`\mathrm{CV} = \mathrm{std}(d)/\mathrm{mean}(d)` (population std; 0 for a constant
video). The baseline is a sequence of ``T`` independent samples of P(Z): a video
with no continuity, whose mean change a smooth walk should be far below.

GIF caveat: Pillow stores consecutive *identical* frames once, with their durations
summed, so a GIF may decode to fewer frames than were written while playing for the
same total time; the report gives ``gif_frames_stored``. The MP4 keeps every frame.
If imageio-ffmpeg (the ``video`` extra) is missing, the MP4 is **skipped with a
warning** (``mp4_skipped_reason`` in the report); the GIFs are still written.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from lightgen._checks import require_int_range

# the GIF/MP4 writers' old home was here, so they stay importable from this module
from lightgen.tasks.animation import (  # noqa: F401
    MP4_MACRO_BLOCK,
    check_fps,
    count_gif_frames,
    ffmpeg_unavailable_reason,
    gif_frame_ms,
    render_frames,
    write_gif,
    write_mp4,
)
from lightgen.tasks.common import check_images, expected_image_shape, match_channels, write_json
from lightgen.tasks.edit import (
    FiberEdit,
    PortSetting,
    decode_edited,
    edit_mechanism,
    find_local_fibers,
)
from lightgen.tasks.generate import decode, encode, sample

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem


WALK_PORT = PortSetting(20.0)
"""Default end of the edit walk's ramp: 20 dB, no phase."""


# ------------------------------------------------------------------ statistics
def frame_changes(frames: torch.Tensor, loop: bool = False) -> torch.Tensor:
    """Per-transition mean absolute change ``(T - 1,)`` (``(T,)`` with ``loop``) of ``(T, ...)``."""
    if frames.ndim < 2 or frames.shape[0] < 2:
        raise ValueError(
            f"frames have shape {tuple(frames.shape)}; need (T, ...) with T >= 2 frames."
        )
    f = frames.detach().float().flatten(1)
    if loop:
        f = torch.cat([f, f[:1]])
    return (f[1:] - f[:-1]).abs().mean(1).cpu()


def frame_change_stats(frames: torch.Tensor, loop: bool = False) -> dict[str, float]:
    """``mean``/``max`` of :func:`frame_changes` and its coefficient of variation ``cv``."""
    d = frame_changes(frames, loop).double()
    mean = float(d.mean())
    std = float(d.std(unbiased=False))
    return {
        "transitions": int(d.numel()),
        "mean_abs_change": mean,
        "max_abs_change": float(d.max()),
        "cv": std / mean if mean > 0 else 0.0,
    }


# ------------------------------------------------------------------ walks
def interpolation_path(z_keys: torch.Tensor, n_frames: int, loop: bool = True) -> torch.Tensor:
    """Piecewise-linear path ``(n_frames, D)`` through keyframes ``(K, D)`` (see module doc)."""
    k = z_keys.shape[0]
    if z_keys.ndim != 2 or k < 2:
        raise ValueError(
            f"z_keys have shape {tuple(z_keys.shape)}; need (K, D) with K >= 2 keyframes."
        )
    n_frames = require_int_range("n_frames", n_frames, 2, fix="Use e.g. 48 frames.")
    j = torch.arange(n_frames, dtype=torch.float64, device=z_keys.device)
    if loop:
        u = j * k / n_frames
        seg = u.floor().long()
        nxt = (seg + 1) % k
    else:
        u = j * (k - 1) / (n_frames - 1)
        seg = u.floor().long().clamp(max=k - 2)
        nxt = seg + 1
    f = (u - seg).to(z_keys.real.dtype).unsqueeze(1)
    return (1 - f) * z_keys[seg] + f * z_keys[nxt]


@torch.no_grad()
def interpolation_frames(
    system: BOGTSystem, images: torch.Tensor, n_frames: int, loop: bool = True
) -> torch.Tensor:
    """Camera frames ``(n_frames, C, S, S)`` of the walk through the encodings of ``images``."""
    x = check_images(system, images)
    z = interpolation_path(encode(system, x), n_frames, loop)
    return match_channels(decode(system, z), x.shape[1]).cpu()


def ramp(n_frames: int, loop: bool = True) -> torch.Tensor:
    """Edit strength ``s_j`` in [0, 1] per frame (see module doc)."""
    n_frames = require_int_range("n_frames", n_frames, 2, fix="Use e.g. 48 frames.")
    j = torch.arange(n_frames, dtype=torch.float64)
    if loop:
        return (1 - torch.cos(2 * math.pi * j / n_frames)) / 2
    return j / (n_frames - 1)


@torch.no_grad()
def edit_walk_frames(
    system: BOGTSystem, images: torch.Tensor, edit: FiberEdit, n_frames: int = 48, loop: bool = True
) -> torch.Tensor:
    """Frames ``(n_frames, B, C, S, S)``: ``images`` decoded while the ports of
    ``edit.fibers`` ramp to ``edit.port`` (finite attenuation); one port setting per frame."""
    end = edit.port.check_ramp()
    x = check_images(system, images)
    z = encode(system, x)
    route = system.routing(z)
    frames = [
        decode_edited(system, z, FiberEdit(edit.fibers, end.scaled(float(s))), route)
        for s in ramp(n_frames, loop)
    ]
    return (
        match_channels(torch.stack(frames).flatten(0, 1), x.shape[1])
        .view(n_frames, x.shape[0], x.shape[1], *x.shape[2:])
        .cpu()
    )


def _write_video(out: Path, stem: str, frames: np.ndarray, fps: float, mp4: bool) -> dict:
    gif = write_gif(out / f"{stem}.gif", frames, fps)
    files = {"gif": str(gif), "gif_frames_stored": count_gif_frames(gif)}
    if mp4:
        files["mp4"] = str(write_mp4(out / f"{stem}.mp4", frames, fps))
    return files


def run_video(
    system: BOGTSystem,
    cfg: TrainConfig,
    out_dir: str | Path,
    n_frames: int = 48,
    n_keyframes: int = 4,
    fibers=None,
    k: int = 3,
    port: PortSetting = WALK_PORT,
    n_edit_images: int = 4,
    n_scan: int = 16,
    fps: float = 12.0,
    loop: bool = True,
    mp4: bool = True,
    seed: int = 0,
    dataset: str | None = None,
    data_root: str | None = None,
) -> dict:
    """Write ``interpolation.{gif,mp4}``, ``edit_walk.{gif,mp4}`` and ``video.json``.

    ``fibers``: latent indices for the edit walk; ``None`` finds ``k`` local fibers
    (region ``auto``) on ``n_scan`` other held-out images. The walk ramps their ports to
    ``port``. MP4s are skipped with a warning when ffmpeg is unavailable (see module doc).
    """
    from lightgen.train.data import run_split

    n_frames = require_int_range("n_frames", n_frames, 2, fix="Use e.g. 48 frames.")
    n_keyframes = require_int_range("n_keyframes", n_keyframes, 2, fix="Use e.g. 4 images.")
    n_edit_images = require_int_range("n_edit_images", n_edit_images, 1)
    n_scan = require_int_range("n_scan", n_scan, 1)
    check_fps(fps)
    port.check_ramp()
    if fibers is not None:
        fibers = FiberEdit(fibers, port).checked(system).fibers
    c, s, _ = expected_image_shape(system)
    name = dataset or cfg.dataset
    need = n_keyframes + n_edit_images + (n_scan if fibers is None else 0)
    ds = run_split(cfg, "test", need, dataset=name, data_root=data_root, seed=seed, channels=c)
    x = ds.images
    if x.shape[0] < need:
        raise ValueError(
            f"the {name!r} test split holds {x.shape[0]} images but n_keyframes + n_edit_images"
            f" (+ n_scan) = {need} are needed; lower them."
        )
    keys, edit_x = x[:n_keyframes], x[n_keyframes : n_keyframes + n_edit_images]
    region = None
    if fibers is None:
        found = find_local_fibers(system, x[n_keyframes + n_edit_images :], "auto", k, port=port)
        fibers, region = found.fibers, found.region
    interp = interpolation_frames(system, keys, n_frames, loop)
    walk = edit_walk_frames(system, edit_x, FiberEdit(fibers, port), n_frames, loop)
    base, _ = sample(system, n_frames, seed=seed)
    base = match_channels(base.cpu(), c)
    out = Path(out_dir)
    why = ffmpeg_unavailable_reason() if mp4 else "mp4=False"
    if mp4 and why is not None:
        warnings.warn(f"MP4 skipped, GIF only: {why}.", RuntimeWarning, stacklevel=2)
    up = max(1, math.ceil(128 / s))
    files = {
        "interpolation": _write_video(
            out, "interpolation", render_frames(interp, upscale=up), fps, why is None
        ),
        "edit_walk": _write_video(
            out, "edit_walk", render_frames(walk, upscale=up), fps, why is None
        ),
    }
    base_stats = frame_change_stats(base)
    reports = {}
    for key, frames in (("interpolation", interp), ("edit_walk", walk)):
        st = frame_change_stats(frames, loop)
        reports[key] = {
            **st,
            "mean_change_vs_random_baseline": st["mean_abs_change"]
            / max(base_stats["mean_abs_change"], 1e-30),
            "frame_changes": frame_changes(frames, loop).tolist(),
            **files[key],
        }
    reports["edit_walk"].update(
        {
            "fibers": [int(f) for f in fibers],
            "region": list(region) if isinstance(region, tuple) else region,
            "attenuation_db": port.attenuation_db,
            "phase_rad": port.phase_rad,
            "mechanism": edit_mechanism(system),
        }
    )
    report = {
        "model": cfg.model,
        "preset": cfg.preset,
        "dataset": name,
        "n_frames": n_frames,
        "fps": fps,
        "gif_frame_ms": gif_frame_ms(fps),
        "loop": loop,
        "n_keyframes": n_keyframes,
        **reports,
        "random_baseline": {**base_stats, "what": f"{n_frames} independent samples of P(Z)"},
        "mp4_skipped_reason": why,
    }
    write_json(out / "video.json", report)
    return report
