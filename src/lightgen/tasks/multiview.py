r"""3D multi-view generation: the view angle is injected into the optical latent space (OLS).

The chip is trained (BOGT, unsupervised) on 2D renders of procedural chairs
(:mod:`lightgen.data.multiview`) at the training azimuths only; every
``holdout_every``-th view is never shown. The last ``K = n_harmonics`` fibers are
condition fibers, driven by the injection port with phasors

.. math:: c_k(\theta) = a\, e^{i k \theta}, \qquad k = 1, \dots, K,

(``a`` = ``condition_amplitude`` in latent units, :math:`\theta` the azimuth); the
other, coupled fibers carry the chair's style. Why phasors: constant injected power (a
phase shifter per fiber, no amplitude modulator; brightness does not encode the angle),
periodic and continuous in :math:`\theta`, and -- linear optics plus intensity
detection -- a camera image that is a trigonometric polynomial of order ``K`` in
:math:`\theta` at every pixel (a test checks the order), so ``K`` is the angular
bandwidth the angle alone can express.

Objectives (``MultiviewSetup.objective``): ``"bogt"`` reconstructs the view the encoder
sees; ``"cross-view"`` encodes view ``A`` of a chair, injects :math:`c(\theta_B)` and
scores the camera against view ``B`` of the same chair (KL on the style fibers only),
so the style fibers carry identity and the angle fibers the view. Unseen views are
scored (PSNR, SSIM) against the held-out renders beside the nearest-training-view and
two-view-blend baselines. Only the all-optical chip (``model="chip"``) is accepted: the
only values set electronically are the condition fibers' phases and the SLM's source
view. Derivation, evaluation protocol and measured numbers: docs/multiview.md.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightgen._checks import require_finite, require_int_range, require_positive
from lightgen.data.multiview import downsample, make_multiview, render_style, view_azimuths_rad
from lightgen.metrics.image import psnr, ssim
from lightgen.tasks.animation import ffmpeg_unavailable_reason, render_frames, write_gif, write_mp4
from lightgen.tasks.common import write_json
from lightgen.tasks.generate import decode, encode
from lightgen.tasks.images import image_grid, save_png
from lightgen.tasks.video import frame_change_stats
from lightgen.train.config import TrainConfig, load_train_config
from lightgen.train.trainer import Trainer, load_trained

if TYPE_CHECKING:
    from lightgen.train.system import BOGTSystem

SETUP_FILE = "multiview_setup.json"
OBJECTIVES = ("bogt", "cross-view")
_CHUNK = 64  # images per encode/decode call
_TIE_RAD = 1e-9  # azimuths closer than this count as equal (float round-off)

PHYSICAL_HONESTY = (
    "All-optical light path (SLM -> diffractive encoder -> single-mode fibers -> "
    "diffractive generator -> camera). The view angle is injected electronically into "
    "the last n_harmonics fibers through the injection port as phasors "
    "condition_amplitude*exp(i*k*azimuth), k = 1..n_harmonics (phase shifters only). The "
    "style is the light the encoder couples into the other fibers from one training view "
    "shown on the SLM. With several generators (routing='view-angle') an optical switch, "
    "set from the same requested angle, selects the generator of that angle's sector. No "
    "digital processing of images anywhere in the light path."
)


# ------------------------------------------------------------------ conditioning
def view_conditions(azimuth_rad, n_harmonics: int = 4, amplitude: float = 1.0) -> torch.Tensor:
    """Injected values ``(N, K)`` complex64: ``amplitude * exp(i k azimuth)``, ``k = 1..K``."""
    n_harmonics = require_int_range(
        "n_harmonics", n_harmonics, 1, fix="Use e.g. 4 condition fibers."
    )
    amplitude = require_positive("amplitude", amplitude, "Use e.g. 1.0 (latent units).")
    az = torch.as_tensor(azimuth_rad, dtype=torch.float64).reshape(-1, 1)
    if not torch.isfinite(az).all():
        raise ValueError(f"azimuth_rad must be finite, got {az.flatten().tolist()[:8]}.")
    k = torch.arange(1, n_harmonics + 1, dtype=torch.float64)
    # reduce k*theta modulo 2 pi in float64 first: exact periodicity in complex64
    phase = torch.remainder(az * k, 2 * math.pi)
    return torch.polar(torch.full_like(phase, amplitude), phase).to(torch.complex64)


# ------------------------------------------------------------------ views
def split_views(
    n_views: int, holdout_every: int = 4, holdout_offset: int = 2
) -> tuple[list[int], list[int]]:
    """``(train_views, heldout_views)``: view ``k`` is held out iff
    ``k % holdout_every == holdout_offset``."""
    n_views = require_int_range("n_views", n_views, 2, fix="Use e.g. 24 views.")
    holdout_every = require_int_range(
        "holdout_every", holdout_every, 2, n_views, fix="Use e.g. 4 (every 4th view held out)."
    )
    holdout_offset = require_int_range(
        "holdout_offset", holdout_offset, 0, holdout_every - 1, fix="Use e.g. 2."
    )
    held = [k for k in range(n_views) if k % holdout_every == holdout_offset]
    return [k for k in range(n_views) if k not in held], held


def signed_angle_rad(to_rad, from_rad) -> torch.Tensor:
    """Signed circular difference ``to - from`` wrapped into ``[-pi, pi)`` (float64)."""
    d = torch.as_tensor(to_rad, dtype=torch.float64) - torch.as_tensor(
        from_rad, dtype=torch.float64
    )
    return torch.remainder(d + math.pi, 2 * math.pi) - math.pi


def nearest_training_view(azimuth_rad: float, train_azimuths_rad) -> int:
    """Index into ``train_azimuths_rad`` of the nearest azimuth on the circle; on a tie
    (within 1e-9 rad) the one at the smaller angle (reached by turning backwards)."""
    train = torch.as_tensor(train_azimuths_rad, dtype=torch.float64).reshape(-1)
    if train.numel() == 0:
        raise ValueError("train_azimuths_rad is empty; give at least one training azimuth.")
    d = signed_angle_rad(train, float(azimuth_rad))
    near = d.abs() <= d.abs().min() + _TIE_RAD
    # among the tied, the most negative signed difference: the backward neighbour
    return int(torch.where(near, d, torch.full_like(d, math.inf)).argmin())


def neighbour_views(azimuth_rad: float, train_azimuths_rad) -> tuple[int, int]:
    """Indices of the nearest training azimuth strictly behind and strictly ahead."""
    train = torch.as_tensor(train_azimuths_rad, dtype=torch.float64).reshape(-1)
    d = signed_angle_rad(train, float(azimuth_rad))
    inf = torch.full_like(d, math.inf)
    back = torch.where(d < -_TIE_RAD, -d, inf).argmin()
    ahead = torch.where(d > _TIE_RAD, d, inf).argmin()
    return int(back), int(ahead)


# ------------------------------------------------------------------ data
@dataclass(frozen=True)
class MultiviewSetup:
    """What the data and the conditioning are (saved as ``multiview_setup.json``)."""

    n_styles: int = 12
    n_views: int = 24
    render_size: int = 128
    image_size: int = 32
    holdout_every: int = 4
    holdout_offset: int = 2
    n_harmonics: int = 4
    condition_amplitude: float = 2.0
    elevation_deg: float = 20.0
    seed: int = 0
    objective: str = "bogt"  # "bogt" | "cross-view" (see the module doc)

    def __post_init__(self):
        require_int_range("n_styles", self.n_styles, 1, fix="Use e.g. 12 chairs.")
        split_views(self.n_views, self.holdout_every, self.holdout_offset)
        require_int_range("render_size", self.render_size, 8, fix="Use e.g. 128 px.")
        require_int_range(
            "image_size",
            self.image_size,
            11,
            self.render_size,
            fix="Use e.g. 32 px (>= 11 for SSIM, <= render_size).",
        )
        require_int_range("n_harmonics", self.n_harmonics, 1, fix="Use e.g. 4.")
        require_positive("condition_amplitude", self.condition_amplitude, "Use e.g. 2.0.")
        el = require_finite("elevation_deg", self.elevation_deg)
        if not -89 <= el <= 89:
            raise ValueError(f"elevation_deg must be in [-89, 89], got {el}. Use e.g. 20.")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective must be one of {OBJECTIVES}, got {self.objective!r}. Use 'bogt' "
                "(reconstruct the input view) or 'cross-view' (encode one view, reconstruct "
                "another view of the same chair at the injected angle)."
            )


@dataclass
class MultiviewData:
    """Renders ``(N, 1, R, R)``, chip-size images ``(N, 1, S, S)``, style/view ``(N,)``
    int64, azimuth ``(N,)`` float64 rad, ``train`` ``(N,)`` bool; style-major order."""

    setup: MultiviewSetup
    renders: torch.Tensor
    images: torch.Tensor
    style: torch.Tensor
    view: torch.Tensor
    azimuth_rad: torch.Tensor
    train: torch.Tensor

    def index(self, style: int, view: int) -> int:
        return style * self.setup.n_views + view


def make_multiview_data(setup: MultiviewSetup) -> MultiviewData:
    """Render every chair at every view; mark the training views (see :func:`split_views`)."""
    renders, style, az = make_multiview(
        setup.n_styles,
        setup.n_views,
        setup.render_size,
        setup.seed,
        math.radians(setup.elevation_deg),
    )
    view = torch.arange(setup.n_views).repeat(setup.n_styles)
    train_views, _ = split_views(setup.n_views, setup.holdout_every, setup.holdout_offset)
    train = torch.isin(view, torch.tensor(train_views))
    images = downsample(renders, setup.image_size)
    return MultiviewData(setup, renders, images, style, view, az, train)


def cross_view_pairs(data: MultiviewData) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample indices ``(source, target)``, each ``(n_styles * T**2,)`` int64 with ``T`` the
    number of training views: every ordered pair of training views of the same chair
    (source == target included), style-major, then source view, then target view.
    Held-out views never appear."""
    s = data.setup
    train_views, _ = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    src, tgt = [], []
    for st in range(s.n_styles):
        for a in train_views:
            for b in train_views:
                src.append(data.index(st, a))
                tgt.append(data.index(st, b))
    return torch.tensor(src, dtype=torch.int64), torch.tensor(tgt, dtype=torch.int64)


def unseen_view_pairs(data: MultiviewData) -> dict[str, torch.Tensor]:
    """Sample indices ``(M,)`` for every held-out ``(style, view)``: ``target``,
    ``nearest`` (nearest training view, same style), ``fixed`` (the first training view),
    ``back`` / ``ahead`` (training neighbours either side)."""
    s = data.setup
    train_views, held = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    az = view_azimuths_rad(s.n_views)
    train_az = az[train_views]
    cols: dict[str, list[int]] = {k: [] for k in ("target", "nearest", "fixed", "back", "ahead")}
    for st in range(s.n_styles):
        for v in held:
            back, ahead = neighbour_views(float(az[v]), train_az)
            cols["target"].append(data.index(st, v))
            cols["nearest"].append(
                data.index(st, train_views[nearest_training_view(float(az[v]), train_az)])
            )
            cols["fixed"].append(data.index(st, train_views[0]))
            cols["back"].append(data.index(st, train_views[back]))
            cols["ahead"].append(data.index(st, train_views[ahead]))
    return {k: torch.tensor(v, dtype=torch.int64) for k, v in cols.items()}


def fourier_fit_views(data: MultiviewData, n_harmonics: int) -> torch.Tensor:
    r"""Digital reference ``(M, C, S, S)`` in :func:`unseen_view_pairs` order: per chair and
    pixel, the least-squares trigonometric polynomial of order ``K = n_harmonics`` in the
    azimuth, :math:`a_0 + \sum_{k \le K} a_k \cos k\theta + b_k \sin k\theta`, fitted to
    the training views and evaluated at the held-out ones (clipped to [0, 1]).

    The chip's camera image is an order-``K`` polynomial in the injected angle too (module
    doc), but its coefficients are tied: at pixel ``x`` the style enters only through one
    complex field value, :math:`I = |A_s(x) + \sum_k c_k(\theta) h_k(x)|^2`, whereas this
    fit has ``2K + 1`` free coefficients per pixel and chair. It shows what the angular
    bandwidth ``K`` alone would allow; it is not a chip method."""
    k = require_int_range("n_harmonics", n_harmonics, 1, fix="Use e.g. 4.")
    s = data.setup
    train_views, held = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    az = view_azimuths_rad(s.n_views).double()
    harm = torch.arange(1, k + 1, dtype=torch.float64)
    basis = torch.cat(
        [
            torch.ones(len(az), 1, dtype=torch.float64),
            torch.cos(az[:, None] * harm),
            torch.sin(az[:, None] * harm),
        ],
        1,
    )  # (V, 2K+1)
    x = data.images.double().reshape(s.n_styles, s.n_views, -1)
    # min-norm least squares (rank-deficient when 2K + 1 > number of training views)
    coef = torch.linalg.pinv(basis[train_views]) @ x[:, train_views]  # (styles, 2K+1, pixels)
    fit = (basis[held] @ coef).clamp(0, 1)
    return fit.reshape(-1, *data.images.shape[1:]).to(data.images.dtype)


def chair_mean_views(data: MultiviewData) -> torch.Tensor:
    """Digital reference ``(M, C, S, S)`` in :func:`unseen_view_pairs` order: the pixel
    mean of all training views of the target's chair, whatever the requested angle."""
    s = data.setup
    train_views, held = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    x = data.images.reshape(s.n_styles, s.n_views, *data.images.shape[1:])
    mean = x[:, train_views].mean(1, keepdim=True)
    return mean.expand(-1, len(held), *mean.shape[2:]).reshape(-1, *data.images.shape[1:])


# ------------------------------------------------------------------ chip
@torch.no_grad()
def predict_views(
    system: BOGTSystem, source_images: torch.Tensor, azimuth_rad, amplitude: float = 1.0
) -> torch.Tensor:
    """Camera images ``(B, C, S, S)`` in [0, 1]: free fibers from the posterior mean of
    ``source_images`` ``(B, C, S, S)``, condition fibers driven for ``azimuth_rad`` ``(B,)``."""
    k = system.n_conditions
    if k < 1:
        raise ValueError(
            "this model has condition_fibers=0; train it with run_multiview (n_harmonics >= 1)."
        )
    dev = next(system.parameters()).device
    cond = view_conditions(azimuth_rad, k, amplitude).to(dev)
    if cond.shape[0] != source_images.shape[0]:
        raise ValueError(
            f"{source_images.shape[0]} source images but {cond.shape[0]} azimuths; give one "
            "azimuth per image."
        )
    out = []
    for i in range(0, cond.shape[0], _CHUNK):  # bounds the memory of the optical fields
        mu = encode(system, source_images[i : i + _CHUNK])
        out.append(decode(system, system.with_conditions(mu, cond[i : i + _CHUNK])).cpu())
    return torch.cat(out)


@torch.no_grad()
def turntable_frames(
    system: BOGTSystem, source_images: torch.Tensor, n_frames: int = 48, amplitude: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``(T, B, C, S, S)`` sweeping the injected angle over ``[0, 2 pi)`` in ``T``
    equal steps for each source image (free fibers fixed), and the angles ``(T,)``."""
    n_frames = require_int_range("n_frames", n_frames, 2, fix="Use e.g. 48 frames.")
    b = source_images.shape[0]
    az = 2 * math.pi * torch.arange(n_frames, dtype=torch.float64) / n_frames
    src = source_images.repeat(n_frames, 1, 1, 1)
    frames = predict_views(system, src, az.repeat_interleave(b), amplitude)
    return frames.view(n_frames, b, *frames.shape[1:]), az


def _scores(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return psnr(pred, target, reduction="none"), ssim(pred, target, reduction="none")


def _summary(p: torch.Tensor, s: torch.Tensor) -> dict[str, float]:
    return {"psnr_db": float(p.mean()), "ssim": float(s.mean())}


def score_unseen_views(data: MultiviewData, predictions: dict[str, torch.Tensor]) -> dict:
    """PSNR/SSIM of each method's images ``(M, C, S, S)`` (in :func:`unseen_view_pairs`
    order) against the held-out renders, per held-out view (mean over styles) and overall.
    The baselines ``baseline_nearest`` and ``baseline_blend`` are added here."""
    pairs = unseen_view_pairs(data)
    x = data.images
    target = x[pairs["target"]]
    methods = {
        **predictions,
        "baseline_nearest": x[pairs["nearest"]],
        "baseline_blend": 0.5 * (x[pairs["back"]] + x[pairs["ahead"]]),
    }
    views = data.view[pairs["target"]]
    scores = {m: _scores(img.float(), target) for m, img in methods.items()}
    per_view = []
    for v in torch.unique(views).tolist():
        sel = views == v
        row = {
            "view": v,
            "azimuth_deg": 360.0 * v / data.setup.n_views,
            "nearest_training_azimuth_deg": float(
                360.0 * data.view[pairs["nearest"][sel][0]] / data.setup.n_views
            ),
        }
        for m, (p, s) in scores.items():
            row[m] = _summary(p[sel], s[sel])
        per_view.append(row)
    return {
        "n_pairs": len(target),
        "per_heldout_view": per_view,
        "mean": {m: _summary(p, s) for m, (p, s) in scores.items()},
    }


@torch.no_grad()
def evaluate_unseen_views(
    system: BOGTSystem, data: MultiviewData, amplitude: float | None = None
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Chip predictions for every held-out view (see module doc), scored with
    :func:`score_unseen_views`; also the chip's reconstruction of the training views.
    Returns the report and the image sets ``(M, C, S, S)`` (target, chip, baseline)."""
    amp = data.setup.condition_amplitude if amplitude is None else amplitude
    pairs = unseen_view_pairs(data)
    x, az = data.images, data.azimuth_rad
    t = pairs["target"]
    preds = {
        "chip": predict_views(system, x[pairs["nearest"]], az[t], amp),
        "chip_fixed_source": predict_views(system, x[pairs["fixed"]], az[t], amp),
        # same angular bandwidth as the chip, free coefficients per pixel: a reference only
        "reference_fourier_fit": fourier_fit_views(data, system.n_conditions),
        # a view-agnostic picture of the right chair: what ignoring the angle can reach
        "reference_chair_mean": chair_mean_views(data),
    }
    report = score_unseen_views(data, preds)
    tr = data.train.nonzero().squeeze(1)
    rec = predict_views(system, x[tr], az[tr], amp)
    report["chip_train_reconstruction"] = _summary(*_scores(rec, x[tr]))
    m = report["mean"]
    report["chip_beats_nearest_baseline"] = {
        "psnr": m["chip"]["psnr_db"] > m["baseline_nearest"]["psnr_db"],
        "ssim": m["chip"]["ssim"] > m["baseline_nearest"]["ssim"],
    }
    images = {
        "target": x[t],
        "chip": preds["chip"],
        "baseline_nearest": x[pairs["nearest"]],
    }
    return report, images


# ------------------------------------------------------------------ run
def _find_setup(checkpoint: Path) -> Path:
    for folder in (checkpoint, *list(checkpoint.parents)[:3]):
        if (folder / SETUP_FILE).is_file():
            return folder / SETUP_FILE
    raise ValueError(
        f"no {SETUP_FILE} found in {checkpoint} or its parents; --checkpoint must be a run "
        "made by run_multiview / `lightgen multiview` (its run/ folder or a step folder)."
    )


def write_turntable(
    system: BOGTSystem,
    data: MultiviewData,
    out: Path,
    n_frames: int = 48,
    n_turntable: int = 4,
    fps: float = 12.0,
    mp4: bool = True,
    upscale: int = 3,
) -> dict:
    """Sweep the injected angle over 360 deg for the first ``n_turntable`` chairs (style
    from their first training view) beside renders at the same angles; write
    ``turntable.gif`` / ``.mp4`` (top row chip, bottom row render) and
    ``turntable_strip.png`` (12 angles; per chair a chip row and a render row).
    Returns the turntable report (scores vs the renders, split by whether the frame's
    angle is a training azimuth, beside the same scores for the source view shown unchanged
    at every angle (at training azimuths other than the source's own); smoothness;
    ``angle_response_ratio`` = mean frame-to-frame
    change of the chip over that of the renders, 0 when the angle does nothing)."""
    s = data.setup
    n_frames = require_int_range("n_frames", n_frames, 48, fix="Use >= 48 frames (7.5 deg).")
    n_tt = min(require_int_range("n_turntable", n_turntable, 1, fix="Use e.g. 4."), s.n_styles)
    train_views, _ = split_views(s.n_views, s.holdout_every, s.holdout_offset)
    src = data.images[[data.index(st, train_views[0]) for st in range(n_tt)]]
    frames, frame_az = turntable_frames(system, src, n_frames, s.condition_amplitude)
    el = math.radians(s.elevation_deg)
    truth = torch.stack(
        [
            downsample(render_style(st, frame_az, s.render_size, s.seed, el), s.image_size)
            for st in range(n_tt)
        ],
        1,
    ).expand(-1, -1, frames.shape[2], -1, -1)  # (T, B, C, S, S)
    why = ffmpeg_unavailable_reason() if mp4 else "mp4=False"
    if mp4 and why is not None:
        warnings.warn(f"MP4 skipped, GIF only: {why}.", RuntimeWarning, stacklevel=3)
    movie = render_frames(torch.cat([frames, truth], 1), ncol=n_tt, upscale=upscale)
    video = {"gif": str(write_gif(out / "turntable.gif", movie, fps))}
    if why is None:
        video["mp4"] = str(write_mp4(out / "turntable.mp4", movie, fps))
    pick = torch.linspace(0, n_frames, 13)[:-1].round().long()
    strip = torch.cat([torch.cat([frames[pick, b], truth[pick, b]]) for b in range(n_tt)])
    video["strip"] = str(
        save_png(out / "turntable_strip.png", image_grid(strip, len(pick), upscale=upscale))
    )
    train_az = view_azimuths_rad(s.n_views)[train_views]
    seen = torch.tensor(
        [bool((signed_angle_rad(train_az, float(a)).abs() < 1e-6).any()) for a in frame_az]
    )
    p, q = _scores(frames.flatten(0, 1), truth.flatten(0, 1))
    p, q = p.view(n_frames, n_tt), q.view(n_frames, n_tt)
    # reference: the source view shown unchanged at every angle (a camera that ignores it)
    sp, sq = _scores(src.expand_as(truth).flatten(0, 1), truth.flatten(0, 1))
    sp, sq = sp.view(n_frames, n_tt), sq.view(n_frames, n_tt)
    other = seen & (signed_angle_rad(frame_az, train_az[0]).abs() > 1e-6)
    chip_change = frame_change_stats(frames.flatten(1), loop=True)
    render_change = frame_change_stats(truth.flatten(1), loop=True)
    return {
        "n_frames": n_frames,
        "fps": fps,
        "styles": list(range(n_tt)),
        "source_view_azimuth_deg": 360.0 * train_views[0] / s.n_views,
        "vs_render_at_training_azimuths": _summary(p[seen], q[seen]),
        "vs_render_at_unseen_azimuths": _summary(p[~seen], q[~seen]),
        # the source's own angle is left out here: there the static picture is exact (inf dB)
        "static_source_vs_render_at_other_training_azimuths": _summary(sp[other], sq[other]),
        "static_source_vs_render_at_unseen_azimuths": _summary(sp[~seen], sq[~seen]),
        "smoothness": chip_change,
        "render_smoothness": render_change,
        "angle_response_ratio": chip_change["mean_abs_change"]
        / max(render_change["mean_abs_change"], 1e-30),
        "mp4_skipped_reason": why,
        **video,
    }


def _require_chip(cfg: TrainConfig) -> None:
    if cfg.model != "chip":
        raise ValueError(
            f"model={cfg.model!r}: multiview drives the fibers' injection port, which only the "
            "all-optical chip has; use model='chip'."
        )


def train_multiview(
    run_dir: str | Path,
    data: MultiviewData,
    steps: int,
    preset: str = "mnist",
    chip: dict | None = None,
    train_options: dict | None = None,
    progress: bool = True,
):
    """Train a chip with ``n_harmonics`` condition fibers on the training views only,
    with the objective of ``data.setup.objective`` (see the module doc)."""
    s = data.setup
    overrides = {"image_size": s.image_size, **(chip or {})}
    # validated with messages that name the bad key (and ChipConfig's fit checks)
    cfg = load_train_config(
        {
            "preset": preset,
            "chip": overrides,
            "dataset": "multiview-chairs",
            "steps": steps,
            "seed": s.seed,
            "checkpoint_every": steps,
            **(train_options or {}),
            "condition_fibers": s.n_harmonics,
        }
    )
    _require_chip(cfg)
    if s.objective == "cross-view":
        src, tgt = cross_view_pairs(data)
        extra = {"targets": data.images[tgt]}
    else:  # BOGT: every training view is its own target
        src = tgt = data.train.nonzero().squeeze(1)
        extra = {}
    run_dir = Path(run_dir)
    trainer = Trainer(
        cfg,
        run_dir,
        data.images[src],
        progress=progress,
        # the angle of the view the camera must draw
        conditions=view_conditions(data.azimuth_rad[tgt], s.n_harmonics, s.condition_amplitude),
        **extra,
    )
    write_json(run_dir / SETUP_FILE, asdict(s))
    result = trainer.run()
    return trainer.system.eval(), cfg, result


def run_multiview(
    out_dir: str | Path,
    steps: int = 600,
    setup: MultiviewSetup | None = None,
    preset: str = "mnist",
    chip: dict | None = None,
    train_options: dict | None = None,
    checkpoint: str | Path | None = None,
    n_frames: int = 48,
    n_turntable: int = 4,
    fps: float = 12.0,
    mp4: bool = True,
    progress: bool = True,
) -> dict:
    """Render the data, train (or load ``checkpoint``), score unseen views, write a turntable.

    Writes into ``out_dir``: ``run/`` (checkpoints, logs, ``multiview_setup.json``),
    ``multiview.json``, ``dataset.png``, ``unseen_views.png``, ``turntable.gif`` /
    ``.mp4`` and ``turntable_strip.png``. With ``checkpoint`` the data settings come
    from that run's ``multiview_setup.json`` (``setup`` must then be ``None``). The
    training objective is ``setup.objective`` (``"bogt"`` or ``"cross-view"``).
    """
    out = Path(out_dir)
    # fail before minutes of training, not after
    n_frames = require_int_range("n_frames", n_frames, 48, fix="Use >= 48 frames (7.5 deg).")
    n_turntable = require_int_range("n_turntable", n_turntable, 1, fix="Use e.g. 4 chairs.")
    if checkpoint is not None:
        if setup is not None:
            raise ValueError(
                "setup given together with checkpoint; the data settings of a trained run come "
                f"from its {SETUP_FILE}. Pass only one of them."
            )
        setup = MultiviewSetup(**json.loads(_find_setup(Path(checkpoint)).read_text()))
    setup = setup or MultiviewSetup()
    t0 = time.perf_counter()
    data = make_multiview_data(setup)
    render_s = time.perf_counter() - t0
    if checkpoint is not None:
        system, cfg = load_trained(checkpoint)
        _require_chip(cfg)
        if cfg.condition_fibers != setup.n_harmonics:
            raise ValueError(
                f"checkpoint {checkpoint} has condition_fibers={cfg.condition_fibers} but its "
                f"setup says n_harmonics={setup.n_harmonics}; the run folder is inconsistent."
            )
        train_info = {"checkpoint": str(checkpoint), "trained_here": False}
    else:
        system, cfg, res = train_multiview(
            out / "run", data, steps, preset, chip, train_options, progress
        )
        train_info = {
            "trained_here": True,
            "steps": res.steps,
            "seconds": round(res.seconds, 1),
            "final_loss": res.final_loss,
            "checkpoint": str(res.checkpoint),
        }
    train_views, held = split_views(setup.n_views, setup.holdout_every, setup.holdout_offset)
    step_deg = 360.0 / setup.n_views
    train_info.update(
        {
            "objective": setup.objective,
            "n_train_images": int(data.train.sum()),
            # (encoder input, camera target) examples the trainer draws batches from
            "n_train_examples": len(cross_view_pairs(data)[0])
            if setup.objective == "cross-view"
            else int(data.train.sum()),
            "train_azimuths_deg": [v * step_deg for v in train_views],
            "heldout_azimuths_deg": [v * step_deg for v in held],
        }
    )
    report, imgs = evaluate_unseen_views(system, data)

    # figures: unseen views (per style: target / chip / nearest-view rows)
    n_show = min(setup.n_styles, 6)
    m = len(held)
    rows = []
    for st in range(n_show):
        sl = slice(st * m, (st + 1) * m)
        rows += [imgs["target"][sl], imgs["chip"][sl], imgs["baseline_nearest"][sl]]
    up = max(1, math.ceil(96 / setup.image_size))
    files = {
        "unseen_views": save_png(
            out / "unseen_views.png", image_grid(torch.cat(rows), m, upscale=up)
        ),
        "dataset": save_png(
            out / "dataset.png",
            image_grid(data.images[: n_show * setup.n_views], setup.n_views, upscale=2),
        ),
    }

    turntable = write_turntable(system, data, out, n_frames, n_turntable, fps, mp4, up)
    files["turntable_strip"] = Path(turntable.pop("strip"))
    full = {
        "task": "multiview",
        "setup": asdict(setup),
        "preset": cfg.preset,
        "chip_overrides": cfg.chip,
        "latent_complex_values": cfg.chip_config().latent_dim,
        "condition_fibers": cfg.condition_fibers,
        "render_seconds": round(render_s, 1),
        "train": train_info,
        **report,
        "turntable": turntable,
        "files": {k: str(v) for k, v in files.items()},
        "physical_honesty": PHYSICAL_HONESTY,
        "note": (
            f"renders at {setup.render_size} px, box-downsampled to the chip's "
            f"{setup.image_size} px; all scores at {setup.image_size} px"
        ),
    }
    write_json(out / "multiview.json", full)
    return full
