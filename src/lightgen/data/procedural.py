"""Data sets lightgen draws itself (no download), reproducible from a seed.

* ``shapes`` -- 4 classes (disk, square, triangle, cross), white on black, random
  position, size and rotation; a sanity-check set for classifiers and generators.
* ``printed-digits`` -- digits 0-9 in DejaVu Sans Bold (the font matplotlib ships),
  MNIST-like: bright glyph about 20 px tall centred in 28 x 28, with a small random
  affine jitter (rotation, scale, shear, shift). Used as MNIST stand-in when the real
  set is absent, and as "printed" targets for handwriting -> print transfer.

Antialiasing: each pixel holds (approximately) the fraction of its area the shape or
glyph covers, like a camera pixel integrating intensity -- shapes from a signed distance
field, digits from glyphs drawn at 4x resolution and box-filtered.

Determinism: every random parameter is drawn up front from
``numpy.random.default_rng(seed)`` (``seed`` an int or a sequence of ints), so the
images depend on ``(n, size, seed)`` only, not on chunking or thread count. Classes are
balanced: counts differ by at most one (``n`` not a multiple of the class count).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lightgen._checks import require_int_range

SHAPE_CLASSES: tuple[str, ...] = ("disk", "square", "triangle", "cross")
DIGIT_CLASSES: tuple[str, ...] = tuple("0123456789")

Seed = int | Sequence[int]
_CHUNK = 512  # images rendered at once: bounds peak memory
_GLYPH_SS = 4  # glyphs are drawn at 4x the output resolution


def balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, each class ``floor(n/K)`` or ``ceil(n/K)`` times, in random order."""
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


def _check(n: int, size: int, supersample: int) -> tuple[int, int, int]:
    n = require_int_range("n", n, 0, fix="Give the number of images, e.g. 10000.")
    size = require_int_range("size", size, 8, fix="Give the image side in pixels, e.g. 28.")
    ss = require_int_range("supersample", supersample, 1, 16, fix="Use e.g. 4.")
    return n, size, ss


def _pixel_coords(size: int) -> torch.Tensor:
    """Pixel centres in pixel units about the image centre."""
    return torch.arange(size, dtype=torch.float32) + 0.5 - size / 2


def _box_sdf(u: torch.Tensor, v: torch.Tensor, hu: torch.Tensor, hv: torch.Tensor) -> torch.Tensor:
    """Exact signed distance to an axis-aligned box of half-sides ``(hu, hv)``."""
    qu, qv = u.abs() - hu, v.abs() - hv
    outside = torch.hypot(qu.clamp(min=0), qv.clamp(min=0))
    return outside + torch.maximum(qu, qv).clamp(max=0)


def shape_sdf(label: int, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance (pixels, negative inside) to shape ``label`` in its own frame.

    ``r`` sets the size: disk radius, triangle circumradius, cross arm half-length;
    square half-side ``0.8 r`` (area close to the disk's); cross bar half-width ``0.28 r``.
    The triangle's is the max over its three edge half-planes, exact inside and near the
    edges (it underestimates only beyond the corners, where coverage is 0 anyway).
    """
    if label == 0:
        return torch.hypot(u, v) - r
    if label == 1:
        return _box_sdf(u, v, 0.8 * r, 0.8 * r)
    if label == 2:
        d = torch.full_like(u, -math.inf)
        for k in range(3):
            a = math.pi / 2 + 2 * math.pi * k / 3
            d = torch.maximum(d, u * math.cos(a) + v * math.sin(a) - r / 2)
        return d
    w = 0.28 * r
    return torch.minimum(_box_sdf(u, v, r, w), _box_sdf(u, v, w, r))


def make_shapes(
    n: int,
    size: int = 28,
    seed: Seed = 0,
    max_rotation_deg: float = 30.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` grey shape images, white shapes on black.

    Per image: size parameter ``r ~ U(0.22, 0.36) * size`` (see :func:`shape_sdf`),
    rotation ``~ U(-max_rotation_deg, max_rotation_deg)``, centre shifted by up to
    ``0.12 * size`` per axis but never so far that the shape leaves the frame.

    Antialiasing: pixel value = ``clamp(0.5 - sdf, 0, 1)`` with ``sdf`` the signed
    distance (pixels) from the pixel centre to the shape's edge -- the exact area fraction
    of a unit pixel cut by a straight edge parallel to a pixel side, and within a few
    percent for other edge angles (the standard distance-field antialiasing, Green 2007,
    SIGGRAPH course "Improved alpha-tested magnification").

    Returns:
        images float32 ``(n, 1, size, size)`` in ``[0, 1]``, labels int64 ``(n,)``
        indexing :data:`SHAPE_CLASSES`.
    """
    n, size, _ = _check(n, size, 1)
    rng = np.random.default_rng(seed)
    labels = balanced_labels(n, len(SHAPE_CLASSES), rng)
    r = rng.uniform(0.22, 0.36, n) * size
    theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, n))
    # 1.15 r bounds every shape's extent at any rotation (square: 0.8*sqrt(2) = 1.13);
    # the extra pixel keeps the outer pixel ring black (its centres lie 0.5 px inside).
    max_shift = np.clip(np.minimum(size / 2 - 1.15 * r - 1.0, 0.12 * size), 0, None)
    shift = rng.uniform(-1, 1, (n, 2)) * max_shift[:, None]
    images = draw_shapes(torch.from_numpy(labels), r, theta, shift, size)
    return images, torch.from_numpy(labels)


def draw_shapes(
    labels: torch.Tensor,
    radius_px: np.ndarray | torch.Tensor,
    rotation_rad: np.ndarray | torch.Tensor,
    shift_px: np.ndarray | torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Draw given shapes: the deterministic half of :func:`make_shapes`.

    Args:
        labels: ``(n,)`` class indices into :data:`SHAPE_CLASSES`.
        radius_px: ``(n,)`` size parameter ``r`` in pixels (see :func:`shape_sdf`).
        rotation_rad: ``(n,)`` rotation, radians.
        shift_px: ``(n, 2)`` centre offset ``(dx, dy)`` in pixels from the image centre.
        size: image side in pixels.

    Returns:
        float32 ``(n, 1, size, size)``, pixel value ``clamp(0.5 - sdf, 0, 1)``.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    n = labels.shape[0]
    cols = [
        np.asarray(radius_px, np.float32).reshape(n, 1),
        np.asarray(rotation_rad, np.float32).reshape(n, 1),
        np.asarray(shift_px, np.float32).reshape(n, 2),
    ]
    params = torch.from_numpy(np.concatenate(cols, 1))
    c = _pixel_coords(size)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    out = torch.zeros(n, 1, size, size)
    for k in range(len(SHAPE_CLASSES)):
        idx = torch.nonzero(labels == k).flatten()
        for start in range(0, idx.numel(), 4 * _CHUNK):
            sel = idx[start : start + 4 * _CHUNK]
            p = params[sel, :, None, None]
            dx, dy = xx - p[:, 2], yy - p[:, 3]
            cos, sin = torch.cos(p[:, 1]), torch.sin(p[:, 1])
            u, v = cos * dx + sin * dy, -sin * dx + cos * dy
            out[sel, 0] = (0.5 - shape_sdf(k, u, v, p[:, 0])).clamp(0.0, 1.0)
    return out


def _font_path() -> str:
    from matplotlib import font_manager

    props = font_manager.FontProperties(family="DejaVu Sans", weight="bold")
    try:
        return font_manager.findfont(props, fallback_to_default=False)
    except ValueError:
        raise RuntimeError(
            "DejaVu Sans Bold was not found; it ships with matplotlib. Reinstall matplotlib "
            "(pip install --force-reinstall matplotlib)."
        ) from None


@functools.lru_cache(maxsize=8)
def _digit_templates(canvas: int) -> np.ndarray:
    """Glyphs 0-9 as float32 ``(10, canvas, canvas)``: bbox centred, 20/28 of the height."""
    from PIL import Image, ImageDraw, ImageFont

    target_h = canvas * 20 / 28
    probe = ImageFont.truetype(_font_path(), 100)
    # One font size for all digits (from the tallest glyph) so they keep their
    # relative proportions, as print does.
    tallest = max(probe.getbbox(d)[3] - probe.getbbox(d)[1] for d in DIGIT_CLASSES)
    font = ImageFont.truetype(_font_path(), max(1, round(100 * target_h / tallest)))
    out = np.zeros((10, canvas, canvas), dtype=np.float32)
    for i, d in enumerate(DIGIT_CLASSES):
        im = Image.new("L", (canvas, canvas), 0)
        x0, y0, x1, y1 = font.getbbox(d)
        xy = (canvas / 2 - (x0 + x1) / 2, canvas / 2 - (y0 + y1) / 2)
        ImageDraw.Draw(im).text(xy, d, fill=255, font=font)
        out[i] = np.asarray(im, dtype=np.float32) / 255.0
    return out


def _box_prefiltered(canvas_templates: np.ndarray, ss: int) -> torch.Tensor:
    """Templates convolved with a box one output pixel (``ss`` fine pixels) wide.

    The trapezoid weights ``[1/2, 1, ..., 1, 1/2] / ss`` integrate the bilinear
    interpolant of the template exactly over the box (trapezoid rule is exact for
    piecewise-linear functions), so point-sampling the result at an output pixel centre
    gives that pixel's area average: supersampled quality at output-resolution cost.
    """
    k = torch.ones(ss + 1, dtype=torch.float32)
    k[0] = k[-1] = 0.5
    k /= ss
    t = torch.from_numpy(canvas_templates)[:, None]
    pad = ss // 2
    t = F.conv2d(F.pad(t, (pad, pad, 0, 0)), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(t, (0, 0, pad, pad)), k.view(1, 1, -1, 1))


def render_digits(size: int = 28) -> torch.Tensor:
    """Clean printed digits 0-9, no jitter: float32 ``(10, 1, size, size)`` in ``[0, 1]``.

    Each pixel is the exact area average of the glyph drawn at ``4 x`` resolution.
    """
    _, size, _ = _check(0, size, _GLYPH_SS)
    t = torch.from_numpy(_digit_templates(size * _GLYPH_SS))[:, None]
    return F.avg_pool2d(t, _GLYPH_SS)


def make_printed_digits(
    n: int,
    size: int = 28,
    seed: Seed = 0,
    max_rotation_deg: float = 10.0,
    scale_range: tuple[float, float] = (0.85, 1.05),
    max_shear: float = 0.15,
    max_shift_px: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` printed digits with a random affine jitter each.

    The forward map of the glyph about the image centre is
    ``x' = R(theta) Sh(k) s x + d`` with ``theta ~ U(+-max_rotation_deg)``,
    ``s ~ U(scale_range)``, horizontal shear ``k ~ U(+-max_shear)`` and shift
    ``d ~ U(+-max_shift_px)`` per axis. Each output pixel samples (bilinearly) the
    glyph drawn at 4x resolution and box-prefiltered to one output pixel (see
    :func:`_box_prefiltered`); the box is not rotated with the glyph, a negligible
    error at these small angles and scales near 1.

    Returns:
        images float32 ``(n, 1, size, size)`` in ``[0, 1]``, labels int64 ``(n,)`` (the digit).
    """
    n, size, _ = _check(n, size, _GLYPH_SS)
    rng = np.random.default_rng(seed)
    labels = balanced_labels(n, len(DIGIT_CLASSES), rng)
    theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, n))
    s = rng.uniform(scale_range[0], scale_range[1], n)
    k = rng.uniform(-max_shear, max_shear, n)
    d = rng.uniform(-max_shift_px, max_shift_px, (n, 2)) * 2 / size  # normalised coords
    # Forward matrices M = R Sh s, then affine_grid's output->input map: M^-1 (x - d).
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear = np.zeros((n, 2, 2))
    shear[:, 0, 0] = shear[:, 1, 1] = 1.0
    shear[:, 0, 1] = k
    m_inv = np.linalg.inv(rot @ shear * s[:, None, None])
    theta_mat = np.concatenate([m_inv, -(m_inv @ d[:, :, None])], axis=2)

    templates = _box_prefiltered(_digit_templates(size * _GLYPH_SS), _GLYPH_SS)
    theta_t = torch.from_numpy(theta_mat).float()
    lab_t = torch.from_numpy(labels)
    out = torch.empty(n, 1, size, size)
    chunk = 8 * _CHUNK
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        b = sl.stop - sl.start
        grid = F.affine_grid(theta_t[sl], [b, 1, size, size], align_corners=False)
        out[sl] = F.grid_sample(
            templates[lab_t[sl]], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    return out.clamp_(0.0, 1.0), lab_t
