r"""Multi-view data lightgen renders itself: procedural chairs on a turntable.

Each *style* is one chair: a union of axis-aligned boxes and vertical (y-axis) cylinders
in one of :data:`CHAIR_FAMILIES` (four-leg, round-leg, stool, armchair, ladder-back,
pedestal), with proportions and grey albedo drawn from ``numpy.random.default_rng((seed,
style))`` -- so a style's shape depends on ``(style, seed)`` only, not on how many styles
are rendered. Chairs face +z (the camera at azimuth 0 sees the front), y is up, and every
chair shares one physical scale (metres are not implied; 1 unit ~ 1 m of chair).

Camera (ray casting, one ray per sample, vectorised in torch):

* orthographic projection; the camera sits at azimuth :math:`\varphi` (about +y, from +z
  towards +x) and elevation :math:`\varepsilon` above the horizon and looks at the origin.
  Turning the camera by :math:`\varphi` is the same picture as a turntable turning the
  object by :math:`-\varphi` under a fixed camera and light.
* The image spans ``[-half_extent, half_extent]`` object units on both axes; pixel
  ``(i, j)`` has its centre at ``u = ((j + 1/2) - S/2) p``, ``v = -((i + 1/2) - S/2) p``,
  ``p = 2 half_extent / S`` (so a left-right flip maps pixel centres onto each other).
* Ray-primitive intersections are analytic: boxes by the slab method (Kay & Kajiya
  1986, SIGGRAPH 20:269), cylinders by the quadratic for the lateral surface plus the
  two caps. The nearest hit along each ray wins.
* Lambertian shading (Lambert's cosine law) with a fixed light in the camera frame and
  an ambient term: :math:`I = \rho\,(a + (1 - a) \max(0, \hat n \cdot \hat l))`, albedo
  :math:`\rho`, ambient :math:`a`; background 0 (black). No shadows, no inter-reflection.
* Antialiasing: ``supersample`` x ``supersample`` rays per pixel, box-filtered (each
  pixel holds the mean of its samples, like a camera pixel integrating intensity).

Closed forms used by the tests: the orthographic silhouette of a convex body has area
:math:`\sum_f \tfrac12 A_f |\hat n_f \cdot \hat d|`, i.e. for a box of half-sides
``(a, b, c)`` :math:`4(bc|d_x| + ac|d_y| + ab|d_z|)`, and for a vertical cylinder of
radius ``r`` and height ``h`` :math:`2rh\cos\varepsilon + \pi r^2 \sin\varepsilon`.
Views from opposite directions are mirror images of each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lightgen._checks import require_finite, require_int_range, require_positive

CHAIR_FAMILIES: tuple[str, ...] = (
    "four-leg",
    "round-leg",
    "stool",
    "armchair",
    "ladder-back",
    "pedestal",
)

DEFAULT_ELEVATION_RAD = math.radians(20.0)
DEFAULT_HALF_EXTENT = 0.68  # object units; every chair (all azimuths, 20 deg elevation) fits
DEFAULT_LIGHT = (-0.45, 0.75, 0.5)  # camera frame (right, up, towards the camera)
DEFAULT_AMBIENT = 0.25
_EPS = 1e-9


@dataclass(frozen=True)
class Box:
    """Axis-aligned box ``lo <= (x, y, z) <= hi`` with grey albedo in (0, 1]."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    albedo: float = 1.0


@dataclass(frozen=True)
class Cylinder:
    """Vertical solid cylinder: axis through ``(x, z) = centre_xz``, ``y0 <= y <= y1``."""

    centre_xz: tuple[float, float]
    radius: float
    y0: float
    y1: float
    albedo: float = 1.0


Primitive = Box | Cylinder


def _bounding_sphere(prim: Primitive) -> tuple[tuple[float, float, float], float]:
    if isinstance(prim, Box):
        c = tuple((a + b) / 2 for a, b in zip(prim.lo, prim.hi, strict=True))
        return c, math.dist(prim.lo, prim.hi) / 2
    half_h = (prim.y1 - prim.y0) / 2
    c = (prim.centre_xz[0], prim.y0 + half_h, prim.centre_xz[1])
    return c, math.hypot(prim.radius, half_h)


# ------------------------------------------------------------------ camera
def camera_frame(
    azimuths_rad: torch.Tensor, elevation_rad: float = DEFAULT_ELEVATION_RAD
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit vectors ``(V, 3)`` float64 in object space: ``back`` (towards the camera; rays
    travel along ``-back``), ``right`` and ``up`` (image axes), right-handed."""
    az = torch.as_tensor(azimuths_rad, dtype=torch.float64).reshape(-1)
    ce, se = math.cos(elevation_rad), math.sin(elevation_rad)
    zeros = torch.zeros_like(az)
    back = torch.stack([torch.sin(az) * ce, zeros + se, torch.cos(az) * ce], -1)
    right = torch.stack([torch.cos(az), zeros, -torch.sin(az)], -1)
    return back, right, torch.linalg.cross(back, right)


def pixel_centres(size: int, half_extent: float = DEFAULT_HALF_EXTENT) -> torch.Tensor:
    """Image-plane coordinates ``(size,)`` float64 of pixel centres: ``((k + 1/2) - S/2) p``."""
    return (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) * (2 * half_extent / size)


def _safe(d: torch.Tensor) -> torch.Tensor:
    # a ray parallel to a slab/cap gets a tiny non-zero component: t = +-huge, no NaN
    return torch.where(d.abs() < _EPS, torch.full_like(d, _EPS), d)


def intersect_box(o: torch.Tensor, d: torch.Tensor, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab method: entry distance ``t`` (``inf`` on a miss) ``(...)`` and normal ``(..., 3)``."""
    lo = torch.tensor(box.lo, dtype=o.dtype, device=o.device)
    hi = torch.tensor(box.hi, dtype=o.dtype, device=o.device)
    inv = 1.0 / _safe(d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    t_near, axis = torch.minimum(t1, t2).max(-1)
    t_far = torch.maximum(t1, t2).min(-1).values
    hit = (t_far >= t_near) & (t_near > 0)
    d_axis = torch.gather(d.expand_as(o), -1, axis.unsqueeze(-1)).squeeze(-1)
    normal = F.one_hot(axis, 3).to(o.dtype) * -torch.sign(_safe(d_axis)).unsqueeze(-1)
    return torch.where(hit, t_near, torch.full_like(t_near, math.inf)), normal


def intersect_cylinder(
    o: torch.Tensor, d: torch.Tensor, cyl: Cylinder
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertical cylinder: nearest of lateral surface (quadratic) and caps; as :func:`intersect_box`."""
    d = d.expand_as(o)
    px, oy, pz = o[..., 0] - cyl.centre_xz[0], o[..., 1], o[..., 2] - cyl.centre_xz[1]
    dx, dy, dz = d[..., 0], _safe(d[..., 1]), d[..., 2]
    r = cyl.radius
    a = (dx * dx + dz * dz).clamp(min=_EPS)
    b = 2 * (px * dx + pz * dz)
    c = px * px + pz * pz - r * r
    disc = b * b - 4 * a * c
    t_side = (-b - disc.clamp(min=0).sqrt()) / (2 * a)
    y_side = oy + t_side * dy
    ok_side = (disc >= 0) & (y_side >= cyl.y0) & (y_side <= cyl.y1) & (t_side > 0)
    inf = torch.full_like(t_side, math.inf)
    t = torch.where(ok_side, t_side, inf)
    zero = torch.zeros_like(t)
    normal = torch.stack([(px + t_side * dx) / r, zero, (pz + t_side * dz) / r], -1)
    for y_cap, ny in ((cyl.y1, 1.0), (cyl.y0, -1.0)):
        t_cap = (y_cap - oy) / dy
        qx, qz = px + t_cap * dx, pz + t_cap * dz
        ok = (qx * qx + qz * qz <= r * r) & (t_cap > 0) & (ny * dy < 0) & (t_cap < t)
        t = torch.where(ok, t_cap, t)
        cap_n = torch.stack([zero, zero + ny, zero], -1)
        normal = torch.where(ok.unsqueeze(-1), cap_n, normal)
    return t, normal


def render_primitives(
    primitives: list[Primitive],
    azimuths_rad,
    size: int,
    elevation_rad: float = DEFAULT_ELEVATION_RAD,
    half_extent: float = DEFAULT_HALF_EXTENT,
    supersample: int = 1,
    ambient: float = DEFAULT_AMBIENT,
    light=DEFAULT_LIGHT,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shaded images ``(V, 1, S, S)`` in [0, 1] and coverage ``(V, 1, S, S)`` in [0, 1]
    (fraction of each pixel's rays that hit the object) of ``V`` azimuths. Ray casting runs
    in ``dtype`` (float32 is ample: rays start ~7 units away, errors ~1e-6 units)."""
    size = require_int_range("size", size, 1, fix="Give the image side in pixels, e.g. 128.")
    ss = require_int_range("supersample", supersample, 1, 8, fix="Use e.g. 2.")
    half_extent = require_positive("half_extent", half_extent, "Use e.g. 0.68 object units.")
    elevation_rad = require_finite("elevation_rad", elevation_rad, "Use e.g. 0.35 rad (20 deg).")
    if not 0 <= ambient <= 1:
        raise ValueError(f"ambient must be in [0, 1], got {ambient!r}. Use e.g. 0.25.")
    if not primitives:
        raise ValueError("primitives is empty; give at least one Box or Cylinder.")
    az = torch.as_tensor(azimuths_rad, dtype=torch.float64).reshape(-1)
    back, right, up = camera_frame(az, elevation_rad)
    side = size * ss
    c = pixel_centres(side, half_extent)
    dist = 4.0 * (1.0 + half_extent)  # ray start, well outside every object
    n_views, per_view = len(az), side * side
    t_best = torch.full((n_views * per_view,), math.inf, dtype=dtype)
    n_best = torch.zeros(n_views * per_view, 3, dtype=dtype)
    rho = torch.zeros_like(t_best)
    for prim in primitives:
        if not isinstance(prim, Box | Cylinder):
            raise ValueError(f"unknown primitive {prim!r}; use Box or Cylinder.")
        # cull with the bounding sphere's square on the image plane: thin legs cover a few
        # % of the rays, so only those are traced
        centre, radius = _bounding_sphere(prim)
        cen = torch.tensor(centre, dtype=torch.float64)
        r = radius + 1e-3
        col_ok = (c[None] - (right @ cen)[:, None]).abs() <= r
        row_ok = (-c[None] - (up @ cen)[:, None]).abs() <= r  # row i sits at v = -c[i]
        idx = (row_ok[:, :, None] & col_ok[:, None, :]).flatten().nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        vi, i, j = idx // per_view, (idx % per_view) // side, idx % side
        o = c[j, None] * right[vi] - c[i, None] * up[vi] + dist * back[vi]
        hit_fn = intersect_box if isinstance(prim, Box) else intersect_cylinder
        t, n = hit_fn(o.to(dtype), -back[vi].to(dtype), prim)
        closer = t < t_best[idx]
        idx, t, n = idx[closer], t[closer], n[closer]
        t_best[idx] = t
        n_best[idx] = n
        rho[idx] = prim.albedo
    hit = torch.isfinite(t_best)
    lv = torch.tensor(light, dtype=torch.float64)
    lv = lv / lv.norm()
    light_obj = (lv[0] * right + lv[1] * up + lv[2] * back).to(dtype)  # fixed in camera frame
    lambert = (n_best.view(n_views, per_view, 3) * light_obj[:, None]).sum(-1).flatten()
    lambert = lambert.clamp(min=0)
    shade = torch.where(hit, rho * (ambient + (1 - ambient) * lambert), torch.zeros_like(rho))
    img = shade.view(-1, 1, side, side)
    cov = hit.to(dtype).view(-1, 1, side, side)
    if ss > 1:
        img, cov = F.avg_pool2d(img, ss), F.avg_pool2d(cov, ss)
    return img.float().clamp(0, 1), cov.float()


# ------------------------------------------------------------------ chairs
def _legs(
    xs: float, zs: float, y1: float, thick: float, round_: bool, albedo: float
) -> list[Primitive]:
    out: list[Primitive] = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * xs, sz * zs
            if round_:
                out.append(Cylinder((x, z), thick / 2, 0.0, y1, albedo))
            else:
                h = thick / 2
                out.append(Box((x - h, 0.0, z - h), (x + h, y1, z + h), albedo))
    return out


def chair_primitives(family: int, rng: np.random.Generator) -> list[Primitive]:
    """Primitives of one chair of ``CHAIR_FAMILIES[family]``, proportions drawn from ``rng``.

    Units: object units, floor at ``y = 0``, front towards +z, mirror-symmetric in x.
    """
    family = require_int_range("family", family, 0, len(CHAIR_FAMILIES) - 1)
    j = rng.uniform(0.85, 1.15, size=6)
    rho = float(rng.uniform(0.75, 1.0))
    w, dep = 0.25 * j[0], 0.25 * j[1]  # seat half-width, half-depth
    h = 0.42 * j[2]  # seat top height
    ts = 0.06  # seat thickness
    back_h = 0.42 * j[3]  # backrest height above the seat
    leg = 0.07 * j[4]  # leg thickness (diameter for round legs)
    bt = 0.06  # backrest thickness
    seat = Box((-w, h - ts, -dep), (w, h, dep), rho)
    inset = leg / 2 + 0.01
    name = CHAIR_FAMILIES[family]
    if name == "four-leg":
        back = Box((-w, h, -dep), (w, h + back_h, -dep + bt), rho)
        return [seat, back, *_legs(w - inset, dep - inset, h - ts, leg, False, rho)]
    if name == "round-leg":
        prims = [seat, *_legs(w - inset, dep - inset, h - ts, leg, True, rho)]
        for sx in (-1, 1):  # back posts continue the rear legs
            prims.append(Cylinder((sx * (w - inset), -dep + inset), leg / 2, h, h + back_h, rho))
        top = h + back_h
        prims.append(Box((-w, top - 0.12, -dep), (w, top, -dep + bt), rho))
        return prims
    if name == "stool":
        r_seat = 0.27 * j[0]
        h_stool = 0.65 * j[2]
        prims: list[Primitive] = [Cylinder((0.0, 0.0), r_seat, h_stool - ts, h_stool, rho)]
        for k in range(3):  # three legs at 120 deg, one at the front
            a = 2 * math.pi * k / 3
            rl = 0.7 * r_seat
            x, z = rl * math.sin(a), rl * math.cos(a)
            prims.append(Cylinder((x, z), leg / 2, 0.0, h_stool - ts, rho))
        ring_y = 0.35 * h_stool  # foot ring approximated by a thin disc of the leg circle
        prims.append(Cylinder((0.0, 0.0), 0.7 * r_seat + leg / 2, ring_y - 0.02, ring_y, rho))
        return prims
    if name == "armchair":
        arm_w = 0.07 * j[5]
        arm_h = h + 0.2 * j[3]
        base = Box((-w, 0.0, -dep), (w, h - ts, dep), 0.8 * rho)
        back = Box((-w - arm_w, 0.0, -dep - bt), (w + arm_w, h + back_h, -dep + bt / 2), rho)
        arms = [
            Box(
                (sx * w + (0 if sx > 0 else -arm_w), 0.0, -dep),
                (sx * w + (arm_w if sx > 0 else 0), arm_h, dep),
                rho,
            )
            for sx in (-1, 1)
        ]
        return [seat, base, back, *arms]
    if name == "ladder-back":
        prims = [seat, *_legs(w - inset, dep - inset, h - ts, leg, False, rho)]
        top = h + 1.4 * back_h
        for sx in (-1, 1):  # tall rear posts
            x = sx * (w - inset)
            prims.append(Box((x - leg / 2, h, -dep), (x + leg / 2, top, -dep + leg), rho))
        n_slats = 3
        for k in range(n_slats):
            y = h + (k + 1) * (top - h) / (n_slats + 0.5)
            prims.append(
                Box(
                    (-w + inset, y - 0.03, -dep + 0.01),
                    (w - inset, y + 0.03, -dep + leg - 0.01),
                    rho,
                )
            )
        return prims
    # pedestal: round seat on a central column and a round base, with a backrest panel
    r_seat = 0.25 * j[0]
    return [
        Cylinder((0.0, 0.0), r_seat, h - ts, h, rho),
        Cylinder((0.0, 0.0), 0.6 * leg, 0.03, h - ts, rho),
        Cylinder((0.0, 0.0), 0.6 * r_seat, 0.0, 0.03, rho),
        Box((-0.02, h, -r_seat + 0.02), (0.02, h + 0.5 * back_h, -r_seat + 0.06), rho),
        Box(
            (-0.8 * r_seat, h + 0.4 * back_h, -r_seat),
            (0.8 * r_seat, h + back_h, -r_seat + bt),
            rho,
        ),
    ]


def centre_vertically(primitives: list[Primitive]) -> list[Primitive]:
    """Shift so the object's height range is centred on ``y = 0`` (the camera's target)."""
    ys = [(p.lo[1], p.hi[1]) if isinstance(p, Box) else (p.y0, p.y1) for p in primitives]
    dy = -(min(y for y, _ in ys) + max(y for _, y in ys)) / 2
    out: list[Primitive] = []
    for p in primitives:
        if isinstance(p, Box):
            out.append(
                Box((p.lo[0], p.lo[1] + dy, p.lo[2]), (p.hi[0], p.hi[1] + dy, p.hi[2]), p.albedo)
            )
        else:
            out.append(Cylinder(p.centre_xz, p.radius, p.y0 + dy, p.y1 + dy, p.albedo))
    return out


def style_primitives(style: int, seed: int = 0) -> list[Primitive]:
    """Chair number ``style``: family ``style % 6``, proportions from ``rng((seed, style))``."""
    style = require_int_range("style", style, 0, fix="Styles are numbered 0, 1, 2, ...")
    rng = np.random.default_rng((int(seed), style))
    return centre_vertically(chair_primitives(style % len(CHAIR_FAMILIES), rng))


def render_style(
    style: int,
    azimuths_rad,
    size: int = 128,
    seed: int = 0,
    elevation_rad: float = DEFAULT_ELEVATION_RAD,
    supersample: int = 2,
) -> torch.Tensor:
    """Images ``(V, 1, size, size)`` of chair ``style`` at any azimuths (radians)."""
    return render_primitives(
        style_primitives(style, seed), azimuths_rad, size, elevation_rad, supersample=supersample
    )[0]


def view_azimuths_rad(n_views: int) -> torch.Tensor:
    """``n_views`` azimuths evenly around the turntable, ``2 pi k / n_views`` (float64)."""
    n_views = require_int_range("n_views", n_views, 2, fix="Use e.g. 24 views (15 deg apart).")
    return 2 * math.pi * torch.arange(n_views, dtype=torch.float64) / n_views


def make_multiview(
    n_styles: int,
    n_views: int = 24,
    size: int = 128,
    seed: int = 0,
    elevation_rad: float = DEFAULT_ELEVATION_RAD,
    supersample: int = 2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every style at every view: images ``(N, 1, size, size)`` float32 in [0, 1], style
    ``(N,)`` int64 and azimuth ``(N,)`` float64 radians, ``N = n_styles * n_views``,
    ordered style-major (sample ``s * n_views + k`` is style ``s`` at view ``k``)."""
    n_styles = require_int_range("n_styles", n_styles, 1, fix="Use e.g. 12 chairs.")
    az = view_azimuths_rad(n_views)
    size = require_int_range("size", size, 8, fix="Use e.g. 128 px.")
    images = torch.cat(
        [render_style(s, az, size, seed, elevation_rad, supersample) for s in range(n_styles)]
    )
    style = torch.arange(n_styles).repeat_interleave(len(az))
    return images, style, az.repeat(n_styles)


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased resize ``(N, C, H, H) -> (N, C, size, size)``: exact box average when
    ``H`` is a multiple of ``size`` (pixel integration), else antialiased bilinear."""
    size = require_int_range("size", size, 1, fix="Give the target side in pixels, e.g. 32.")
    h = images.shape[-1]
    if h == size:
        return images
    if h % size == 0:
        return F.avg_pool2d(images, h // size)
    return F.interpolate(images, (size, size), mode="bilinear", antialias=True, align_corners=False)
