r"""Procedural image styles and patch cutting for the style-transfer task.

Everything here is a pure, deterministic, vectorised torch function on intensities
``(N, C, H, W)`` in ``[0, 1]`` (``C`` = 1 grey or 3 RGB); it runs on the input's device
and dtype. The styles give the transfer task targets with a known ground truth, so
that a chip trained on styled images only can be scored against the styled version of
the very image it was shown.

* :func:`mosaic` -- square tiles of the cell's mean colour separated by dark grout:
  for cell :math:`c` of side ``cell_px`` (anchored at pixel (0, 0); edge cells are
  clipped), :math:`y(p) = \frac{1}{|c|}\sum_{q \in c} x(q)` for pixels off the grout and
  :math:`y(p) = g` (``grout_value``) on the last ``grout_px`` rows/columns of each cell.
* :func:`painterly` -- an oil-paint filter in three steps: (1) smear along the local
  brush direction, the edge tangent :math:`t` of the structure tensor
  :math:`J = K * (\nabla L\,\nabla L^\top)` of the luma :math:`L` (Kass & Witkin 1987),
  :math:`\theta = \tfrac12 \operatorname{atan2}(2J_{xy}, J_{xx} - J_{yy}) + \pi/2`, by
  averaging bilinear samples at :math:`p + s\,t,\ s = -S..S` (a line-integral
  convolution, Cabral & Leedom 1993); (2) a Kuwahara filter of radius :math:`r`
  (Kuwahara et al. 1976): each pixel takes the mean colour of whichever of its four
  :math:`(r+1)^2` corner windows has the least luma variance, which flattens regions
  into strokes while keeping edges; (3) optional quantisation to ``levels`` intensity
  levels per channel (paint has few mixed tones).
* :func:`halftone` -- a print screen of dots: in each square cell of side ``cell_px`` every
  channel draws one disc, centred in the cell, whose area is the cell's mean value of that
  channel, :math:`\pi r^2 = \bar x_c\,c^2` (so the mean intensity is kept where the
  disc fits, :math:`\bar x_c \le \pi/4`), with a one-pixel anti-aliased rim on black.
* :func:`stained_glass` -- Voronoi panes (one seed per ``cell_px`` square, jittered,
  fixed by ``seed``), each of the pane's mean colour
  :math:`y(p) = \frac{1}{|P|}\sum_{q \in P} x(q)`, joined by ``lead_px``-wide dark lead
  lines where neighbouring pixels belong to different panes.
* :func:`cartoon` -- cel shading / poster art, a family without a fixed pattern: (1) a
  Kuwahara filter of radius :math:`r` flattens regions, (2) each channel is quantised to
  ``levels`` levels (flat, saturated colour), (3) dark outlines follow the content: a pixel
  is line (``line_value``) where the central-difference gradient of the box-blurred
  (radius ``blur_px``) luma exceeds ``edge_threshold``,
  :math:`|\nabla (K_b * L)| > \tau` (intensity per pixel).
* :func:`cut_patches` / :func:`tile_patches` -- non-overlapping square patches of an
  image and back (row-major), for the patch-by-patch chip.

:func:`apply_style` applies a style by name with size-relative defaults
(:func:`style_defaults`); a cell style's pitch can be given in the name, ``halftone8``
(:func:`parse_style`). The data registry uses it for names like ``emoji-black+mosaic`` or
``emoji-black+halftone8``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightgen._checks import require_int_range

STYLE_NAMES: tuple[str, ...] = ("mosaic", "painterly", "halftone", "stained-glass", "cartoon")
PITCHED_STYLES: tuple[str, ...] = ("mosaic", "halftone", "stained-glass")  # take "<name><cell_px>"
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def check_style_images(images, name: str = "images") -> torch.Tensor:
    """Validate real, finite ``(N, C, H, W)`` images with ``C`` in {1, 3}."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(
            f"{name} must be a 4-D tensor (N, C, H, W), got {got}. Add the batch/channel axes "
            "with .unsqueeze()."
        )
    if images.shape[1] not in (1, 3) or images.shape[0] < 1:
        raise ValueError(
            f"{name} have shape {tuple(images.shape)}; styles take N >= 1 images with 1 (grey) "
            "or 3 (RGB) channels."
        )
    if images.is_complex() or not images.is_floating_point():
        raise ValueError(
            f"{name} have dtype {images.dtype}; give float intensities in [0, 1] "
            "(e.g. uint8 / 255)."
        )
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contain NaN or inf; give finite intensities in [0, 1].")
    return images


def luma(images: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)``: BT.601 weights for RGB, the channel itself for grey."""
    if images.shape[1] == 1:
        return images
    w = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * w).sum(1, keepdim=True)


def _cell_sums(x: torch.Tensor, cell_px: int) -> torch.Tensor:
    """Sums over ``cell_px`` cells ``(N, C, ceil(H/c), ceil(W/c))`` (edge cells clipped)."""
    h, w = x.shape[-2:]
    x = F.pad(x, (0, -w % cell_px, 0, -h % cell_px))
    n, c, hp, wp = x.shape
    return x.view(n, c, hp // cell_px, cell_px, wp // cell_px, cell_px).sum((3, 5))


def _cell_means(x: torch.Tensor, cell_px: int) -> torch.Tensor:
    """Means over ``cell_px`` cells ``(N, C, ceil(H/c), ceil(W/c))`` (edge cells clipped)."""
    ones = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    return _cell_sums(x, cell_px) / _cell_sums(ones, cell_px)


def _per_pixel(cells: torch.Tensor, cell_px: int, h: int, w: int) -> torch.Tensor:
    """Cell values spread back onto the ``h x w`` pixels of each cell."""
    return cells.repeat_interleave(cell_px, -2).repeat_interleave(cell_px, -1)[..., :h, :w]


def mosaic(
    images: torch.Tensor, cell_px: int = 4, grout_px: int = 1, grout_value: float = 0.0
) -> torch.Tensor:
    """Square mosaic tiles of the cell mean colour with grout lines (see module doc).

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        cell_px: tile pitch in pixels (tile + grout), >= 2.
        grout_px: grout width in pixels, 0 .. ``cell_px - 1`` (0: no grout).
        grout_value: grout intensity in [0, 1] (dark: near 0).

    Returns:
        ``(N, C, H, W)`` styled images, same dtype and device.
    """
    x = check_style_images(images)
    cell_px = require_int_range("cell_px", cell_px, 2, fix="Use e.g. cell_px=4.")
    grout_px = require_int_range(
        "grout_px", grout_px, 0, cell_px - 1, fix=f"Use 0 .. cell_px - 1 = {cell_px - 1}."
    )
    g = float(grout_value)
    if not (math.isfinite(g) and 0.0 <= g <= 1.0):
        raise ValueError(f"grout_value={grout_value!r} must be in [0, 1]; use e.g. 0.0 (black).")
    h, w = x.shape[-2:]
    tiles = _per_pixel(_cell_means(x, cell_px), cell_px, h, w)
    r = torch.arange(h, device=x.device) % cell_px >= cell_px - grout_px
    c = torch.arange(w, device=x.device) % cell_px >= cell_px - grout_px
    grout = r[:, None] | c[None, :]
    return torch.where(grout, torch.full_like(tiles, g), tiles)


def halftone(images: torch.Tensor, cell_px: int = 4) -> torch.Tensor:
    """Halftone dots: per cell and channel a disc of area = the cell's mean (module doc).

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        cell_px: dot pitch in pixels, >= 2.

    Returns:
        ``(N, C, H, W)`` styled images in [0, 1], same dtype and device.
    """
    x = check_style_images(images)
    cell_px = require_int_range("cell_px", cell_px, 2, fix="Use e.g. cell_px=4.")
    h, w = x.shape[-2:]
    radius = cell_px * torch.sqrt(_cell_means(x, cell_px).clamp(0, 1) / math.pi)
    radius = _per_pixel(radius, cell_px, h, w)
    # distance of each pixel centre from its cell's centre
    centre = (cell_px - 1) / 2
    dy = torch.arange(h, device=x.device, dtype=x.dtype) % cell_px - centre
    dx = torch.arange(w, device=x.device, dtype=x.dtype) % cell_px - centre
    dist = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    return (radius - dist + 0.5).clamp(0, 1)


def voronoi_seeds(
    rows: int, cols: int, cell_px: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed coordinates ``(y, x)``, each ``(rows, cols)`` float64 in pixels (pixel ``i``
    spans ``[i, i + 1)``): seed ``(i, j)`` lies in the central 80 % of grid square
    ``[i c, (i + 1) c) x [j c, (j + 1) c)``, ``c = cell_px``, at a point drawn by a
    ``torch.Generator`` seeded by ``seed``."""
    gen = torch.Generator().manual_seed(int(seed))
    jitter = 0.1 + 0.8 * torch.rand(2, rows, cols, generator=gen, dtype=torch.float64)
    sy = (torch.arange(rows, dtype=torch.float64)[:, None] + jitter[0]) * cell_px
    sx = (torch.arange(cols, dtype=torch.float64)[None, :] + jitter[1]) * cell_px
    return sy, sx


def voronoi_labels(
    h: int, w: int, cell_px: int, seed: int = 0, device=None
) -> tuple[torch.Tensor, int]:
    """Voronoi cell index ``(h, w)`` (int64) of every pixel, and the number of cells.

    The seeds form a jittered grid: one per ``cell_px`` square, at a uniformly random point
    of its central 80 % (``torch.Generator`` seeded by ``seed``, so the pattern is the same
    on every call, device and image). Because every seed lies in its own grid square, a
    pixel's nearest seed is always one of the 3 x 3 squares around its own, so only those
    9 candidates are compared (exact, O(h w)).
    """
    cell_px = require_int_range("cell_px", cell_px, 2, fix="Use e.g. cell_px=8.")
    rows, cols = -(-h // cell_px), -(-w // cell_px)
    sy, sx = voronoi_seeds(rows, cols, cell_px, seed)
    py = torch.arange(h, dtype=torch.float64) + 0.5
    px = torch.arange(w, dtype=torch.float64) + 0.5
    gy, gx = (py // cell_px).long(), (px // cell_px).long()
    best = torch.full((h, w), math.inf, dtype=torch.float64)
    label = torch.zeros(h, w, dtype=torch.int64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            ci = (gy + di).clamp(0, rows - 1)[:, None].expand(h, w)
            cj = (gx + dj).clamp(0, cols - 1)[None, :].expand(h, w)
            d = (sy[ci, cj] - py[:, None]) ** 2 + (sx[ci, cj] - px[None, :]) ** 2
            closer = d < best
            best = torch.where(closer, d, best)
            label = torch.where(closer, ci * cols + cj, label)
    return label.to(device), rows * cols


def stained_glass(
    images: torch.Tensor,
    cell_px: int = 8,
    lead_px: int = 1,
    lead_value: float = 0.0,
    seed: int = 0,
) -> torch.Tensor:
    """Stained glass: Voronoi panes of the pane's mean colour, joined by dark lead lines.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        cell_px: mean pane pitch in pixels (one Voronoi seed per ``cell_px`` square), >= 2.
        lead_px: lead-line width in pixels, 1 .. ``cell_px // 2``: a pixel is lead where
            a pane boundary lies within ``lead_px - 1`` pixels of it, i.e. where its pane
            differs from its right or lower neighbour's, dilated by ``lead_px - 1``.
        lead_value: lead intensity in [0, 1].
        seed: the Voronoi pattern (:func:`voronoi_labels`); the same for every image.

    Returns:
        ``(N, C, H, W)`` styled images, same dtype and device.
    """
    x = check_style_images(images)
    cell_px = require_int_range("cell_px", cell_px, 2, fix="Use e.g. cell_px=8.")
    lead_px = require_int_range(
        "lead_px",
        lead_px,
        1,
        max(1, cell_px // 2),
        fix=f"Use 1 .. cell_px // 2 = {max(1, cell_px // 2)}.",
    )
    v = float(lead_value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"lead_value={lead_value!r} must be in [0, 1]; use e.g. 0.0 (black).")
    n, c, h, w = x.shape
    label, k = voronoi_labels(h, w, cell_px, seed, device=x.device)
    flat = label.flatten()
    sums = torch.zeros(n, c, k, dtype=x.dtype, device=x.device).index_add_(2, flat, x.flatten(2))
    counts = torch.bincount(flat, minlength=k).clamp_min(1).to(x.dtype)
    panes = (sums / counts)[..., flat].view(n, c, h, w)
    edge = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    edge[:, :-1] |= label[:, :-1] != label[:, 1:]
    edge[:-1, :] |= label[:-1, :] != label[1:, :]
    if lead_px > 1:
        k2 = 2 * (lead_px - 1) + 1
        edge = F.max_pool2d(edge[None, None].float(), k2, stride=1, padding=lead_px - 1)[0, 0] > 0
    return torch.where(edge, torch.full_like(panes, v), panes)


def _box_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    if radius == 0:
        return x
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), k, stride=1)


def _central_gradient(lum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central-difference gradient ``(gx, gy)`` per pixel, replicate-padded at the border."""
    p = F.pad(lum, (1, 1, 1, 1), mode="replicate")
    return 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]), 0.5 * (
        p[..., 2:, 1:-1] - p[..., :-2, 1:-1]
    )


def brush_tangent(lum: torch.Tensor, radius_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit edge tangent ``(tx, ty)``, each ``(N, 1, H, W)``, from the smoothed structure tensor.

    Flat regions (``J = 0``) get ``theta = pi/2``, i.e. a vertical tangent ``(0, 1)``.
    """
    gx, gy = _central_gradient(lum)
    jxx, jxy, jyy = (_box_blur(v, radius_px) for v in (gx * gx, gx * gy, gy * gy))
    theta = 0.5 * torch.atan2(2 * jxy, jxx - jyy) + math.pi / 2
    return torch.cos(theta), torch.sin(theta)


def smear(images: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, stroke_px: int) -> torch.Tensor:
    """Mean of bilinear samples at ``p + s (tx, ty)``, ``s = -stroke_px .. stroke_px`` pixels."""
    h, w = images.shape[-2:]
    dev, dt = images.device, images.dtype
    ys = (torch.arange(h, device=dev, dtype=dt) + 0.5) * 2 / h - 1
    xs = (torch.arange(w, device=dev, dtype=dt) + 0.5) * 2 / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    acc = torch.zeros_like(images)
    for s in range(-stroke_px, stroke_px + 1):
        grid = torch.stack(
            [gx + s * tx[:, 0] * 2 / w, gy + s * ty[:, 0] * 2 / h], dim=-1
        )  # (N, H, W, 2) in grid_sample's normalised (x, y)
        acc = acc + F.grid_sample(
            images, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
    return acc / (2 * stroke_px + 1)


def kuwahara(images: torch.Tensor, radius_px: int) -> torch.Tensor:
    """Kuwahara filter: mean colour of the least-luma-variance of 4 ``(r+1)^2`` corner windows."""
    r = radius_px
    h, w = images.shape[-2:]
    k = r + 1

    def pool(v: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(v, (r,) * 4, mode="replicate"), k, stride=1)

    lum = luma(images)
    m, m2, mean = pool(lum), pool(lum * lum), pool(images)
    var = m2 - m * m
    # window with corner at the pixel: top-left, top-right, bottom-left, bottom-right
    offsets = ((0, 0), (0, r), (r, 0), (r, r))
    v = torch.stack([var[..., i : i + h, j : j + w] for i, j in offsets])
    mu = torch.stack([mean[..., i : i + h, j : j + w] for i, j in offsets])
    best = v.argmin(0, keepdim=True).expand(1, *mu.shape[1:])
    return mu.gather(0, best)[0]


def painterly(
    images: torch.Tensor, radius_px: int = 2, stroke_px: int = 2, levels: int | None = 8
) -> torch.Tensor:
    """Oil-paint look: brush-direction smear, Kuwahara filter, colour quantisation.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        radius_px: Kuwahara window radius (and structure-tensor smoothing), >= 1 pixel.
        stroke_px: half-length of the brush smear along the edge tangent, >= 0 pixels.
        levels: intensity levels per channel after painting (>= 2), or ``None`` to keep
            continuous tones.

    Returns:
        ``(N, C, H, W)`` in [0, 1], same dtype and device. A constant image stays
        constant (exactly so with ``levels=None`` or a constant on a level).
    """
    x = check_style_images(images)
    radius_px = require_int_range("radius_px", radius_px, 1, fix="Use e.g. radius_px=2.")
    stroke_px = require_int_range("stroke_px", stroke_px, 0, fix="Use e.g. stroke_px=2.")
    if levels is not None:
        levels = require_int_range("levels", levels, 2, 256, fix="Use e.g. 8, or None.")
    if stroke_px:
        tx, ty = brush_tangent(luma(x), radius_px)
        x = smear(x, tx, ty, stroke_px)
    x = kuwahara(x, radius_px).clamp(0, 1)
    if levels is not None:
        x = torch.round(x * (levels - 1)) / (levels - 1)
    return x


def cartoon(
    images: torch.Tensor,
    radius_px: int = 2,
    levels: int = 3,
    edge_threshold: float = 0.08,
    blur_px: int = 1,
    line_value: float = 0.0,
) -> torch.Tensor:
    """Cel-shaded / poster look: flat regions, few colour levels, content-following outlines.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        radius_px: Kuwahara window radius, >= 1 pixel.
        levels: intensity levels per channel (>= 2).
        edge_threshold: outline where the luma gradient exceeds this (intensity per pixel,
            > 0).
        blur_px: radius of the box blur of the luma before its gradient, >= 0 pixels.
        line_value: the outline's intensity in [0, 1].

    Returns:
        ``(N, C, H, W)`` in [0, 1], same dtype and device. A constant image has no
        outline and stays constant where the constant lies on a level.
    """
    x = check_style_images(images)
    radius_px = require_int_range("radius_px", radius_px, 1, fix="Use e.g. radius_px=2.")
    levels = require_int_range("levels", levels, 2, 256, fix="Use e.g. levels=3.")
    blur_px = require_int_range("blur_px", blur_px, 0, fix="Use e.g. blur_px=1.")
    if not (math.isfinite(float(edge_threshold)) and float(edge_threshold) > 0):
        raise ValueError(
            f"edge_threshold={edge_threshold!r} must be a positive intensity per pixel; use "
            "e.g. 0.08 at 64 px."
        )
    if not 0.0 <= float(line_value) <= 1.0:
        raise ValueError(f"line_value={line_value!r} is outside [0, 1]; use e.g. 0.0 (black).")
    flat = kuwahara(x, radius_px).clamp(0, 1)
    flat = torch.round(flat * (levels - 1)) / (levels - 1)
    gx, gy = _central_gradient(_box_blur(luma(x), blur_px))
    line = (gx * gx + gy * gy) > float(edge_threshold) ** 2
    return torch.where(line, torch.full_like(flat, float(line_value)), flat)


def style_defaults(name: str, size: int) -> dict:
    """Parameters of style ``name`` for ``size``-pixel images (features scale with size).

    ``mosaic``: ``cell_px = max(3, round(size / 16))``, 1 px black grout (16 x 16 tiles at
    64 px); ``painterly``: ``radius_px = stroke_px = max(1, round(3 size / 64))`` (3 at
    64 px), 6 levels; ``halftone``: ``cell_px = max(3, round(size / 16))`` (16 x 16 dots
    at 64 px); ``stained-glass``: ``cell_px = max(4, round(size / 8))`` (about 8 x 8 panes),
    ``lead_px = max(1, round(size / 64))``, black lead, Voronoi seed 0; ``cartoon``:
    ``radius_px = max(1, round(2 size / 64))``, 3 levels, ``blur_px = max(1, round(size /
    64))``, ``edge_threshold = 0.08 * 64 / size`` (an edge blurred over more pixels has a
    smaller gradient per pixel), black lines.
    """
    if name == "mosaic":
        return {"cell_px": max(3, round(size / 16)), "grout_px": 1, "grout_value": 0.0}
    if name == "painterly":
        s = max(1, round(3 * size / 64))
        return {"radius_px": s, "stroke_px": s, "levels": 6}
    if name == "halftone":
        return {"cell_px": max(3, round(size / 16))}
    if name == "stained-glass":
        return {
            "cell_px": max(4, round(size / 8)),
            "lead_px": max(1, round(size / 64)),
            "lead_value": 0.0,
            "seed": 0,
        }
    if name == "cartoon":
        return {
            "radius_px": max(1, round(2 * size / 64)),
            "levels": 3,
            "edge_threshold": 0.08 * 64 / size,
            "blur_px": max(1, round(size / 64)),
            "line_value": 0.0,
        }
    raise ValueError(f"style={name!r} is not a lightgen style. Use one of {STYLE_NAMES}.")


def parse_style(spec: str) -> tuple[str, dict]:
    """A style spec -> ``(name, params)``: ``"halftone"`` -> ``("halftone", {})``;
    a cell style with a pitch in pixels appended, ``"halftone8"`` -> ``("halftone",
    {"cell_px": 8})`` (``mosaic``, ``halftone`` and ``stained-glass`` take one)."""
    key = str(spec).lower()
    if key in STYLE_NAMES:
        return key, {}
    name = key.rstrip("0123456789")
    digits = key[len(name) :]
    if name in PITCHED_STYLES and digits and int(digits) >= 2:
        return name, {"cell_px": int(digits)}
    raise ValueError(
        f"style={spec!r} is not a lightgen style. Use one of {STYLE_NAMES}, or one of "
        f"{PITCHED_STYLES} with its cell pitch in pixels (>= 2) appended, e.g. 'halftone8'."
    )


def is_style_spec(spec: str) -> bool:
    """Whether ``spec`` names a style (:func:`parse_style` accepts it)."""
    try:
        parse_style(spec)
    except ValueError:
        return False
    return True


def style_params(spec: str, size: int) -> dict:
    """The parameters ``spec`` (see :func:`parse_style`) uses on ``size``-pixel images."""
    name, pitch = parse_style(spec)
    return {**style_defaults(name, size), **pitch}


def apply_style(name: str, images: torch.Tensor, **params) -> torch.Tensor:
    """Style ``images`` by spec (:func:`parse_style`); ``params`` override
    :func:`style_params`."""
    images = check_style_images(images)
    key, pitch = parse_style(name)
    kwargs = {**style_defaults(key, images.shape[-1]), **pitch, **params}
    styles = {
        "mosaic": mosaic,
        "painterly": painterly,
        "halftone": halftone,
        "stained-glass": stained_glass,
        "cartoon": cartoon,
    }
    return styles[key](images, **kwargs)


def cut_patches(images: torch.Tensor, patch_px: int) -> torch.Tensor:
    """Non-overlapping ``patch_px`` patches ``(N * R * Q, C, p, p)``, row-major per image.

    ``R = H / p``, ``Q = W / p``; ``H`` and ``W`` must be multiples of ``p``.
    """
    x = check_style_images(images)
    p = require_int_range("patch_px", patch_px, 1, fix="Use e.g. patch_px=7.")
    n, c, h, w = x.shape
    if h % p or w % p:
        raise ValueError(
            f"patch_px={p} does not divide the {h} x {w} images; use a divisor of both sides "
            "(e.g. 7 for 28 x 28)."
        )
    x = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c, p, p)


def tile_patches(patches: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of :func:`cut_patches`: ``(N * rows * cols, C, p, p)`` -> ``(N, C, rows p, cols p)``."""
    rows = require_int_range("rows", rows, 1, fix="Give the patch rows per image, e.g. 4.")
    cols = require_int_range("cols", cols, 1, fix="Give the patch columns per image, e.g. 4.")
    if not isinstance(patches, torch.Tensor) or patches.ndim != 4:
        raise ValueError("patches must be a 4-D tensor (N*rows*cols, C, p, p).")
    m, c, p, q = patches.shape
    if m % (rows * cols) or p != q:
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not tile into {rows} x {cols} squares; "
            f"give a multiple of rows*cols = {rows * cols} square patches."
        )
    x = patches.reshape(m // (rows * cols), rows, cols, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(-1, c, rows * p, cols * p)
