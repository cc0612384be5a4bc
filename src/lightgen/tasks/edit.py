r"""Semantic editing in the optical latent space (OLS): find fibers that control one
image region, without labels, and change only those.

Physics of an edit. Each latent dimension ``d`` is one port channel: fiber
``d % n_fibers`` at wavelength ``d // n_fibers`` (for a one-wavelength chip, ``d`` *is*
the fiber). Its manipulation port (a variable optical attenuator followed by a phase
shifter) multiplies the fiber's complex amplitude by

.. math:: t_d = 10^{-A_d/20}\, e^{i\varphi_d},

``A_d`` in dB (``attenuation_db``, power transmission :math:`10^{-A/10}`), ``\varphi_d`` in
radians (``phase_rad``); see :meth:`lightgen.chip.chip.LightGenChip.ports`. Ports are
passive, so ``attenuation_db >= 0`` (``inf`` blocks the fiber). One setting is a
:class:`PortSetting` (its range checks live there); an edit, that setting on chosen
fibers, is a :class:`FiberEdit`.

* All-optical chip (``--model chip``): edits go through the chip's ports
  (:meth:`~lightgen.chip.chip.LightGenChip.port_settings`, restored afterwards). The fiber scan of
  :func:`fiber_effect_maps` instead drives the injection port with ``t_d z`` -- the
  same field in the fibers, one decode batch for every fiber (``chip.ports`` is a
  per-fiber product, so the two are identical; a test checks it).
* ``hybrid`` and ``vae`` models have no fiber path into their (digital) decoder: the
  latent value is multiplied by ``t_d`` digitally, and the report says so. The ``vae``
  latent is real, so only ``phase_rad = 0`` is accepted there.

Finding local fibers. For fiber ``d`` the effect map is
:math:`E_d(x, y) = \langle |I(t_d z) - I(z)| \rangle_{batch, channels}` (camera images
in [0, 1]). A fiber's locality for a region ``R`` is the area-normalised ratio
:math:`\bar E_d|_R / \bar E_d|_{\bar R}` (mean inside over mean outside, so 1 means
"no preference" whatever the region's size); the ``k`` most local fibers that change
the image at all (mean effect >= ``min_effect_fraction`` x the strongest fiber's) are
picked. The edit is then scored on *other* images by the same ratio of mean
:math:`|\Delta|` inside / outside, per image, averaged, against ``k`` random fibers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lightgen._checks import require_int_range

# shared task helpers; their old home was here, so they stay importable from this module
from lightgen.tasks.common import (  # noqa: F401
    check_images,
    expected_image_shape,
    json_safe,
    match_channels,
    write_json,
)
from lightgen.tasks.generate import encode
from lightgen.tasks.images import image_grid, save_png

if TYPE_CHECKING:
    from lightgen.train.config import TrainConfig
    from lightgen.train.system import BOGTSystem

#: Named regions (masks built by :func:`region_mask`); ``auto`` picks the best quadrant.
REGION_NAMES: tuple[str, ...] = (
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "center",
    "auto",
)
QUADRANTS: tuple[str, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")

Region = str | tuple[int, int, int, int]


def port_transmission(attenuation_db: float, phase_rad: float) -> complex:
    """Amplitude transmission ``10**(-A/20) * exp(i*phi)`` of one port setting."""
    return 10 ** (-attenuation_db / 20) * complex(math.cos(phase_rad), math.sin(phase_rad))


@dataclass(frozen=True)
class PortSetting:
    """One setting of the manipulation ports: ``attenuation_db`` (``>= 0``: the ports are
    passive; ``inf`` blocks the fiber) and ``phase_rad`` (finite), both stored as floats.

    The range checks live here (on construction); :meth:`check_model` adds the one that
    needs the model (a phase needs a complex latent).
    """

    attenuation_db: float = 10.0
    phase_rad: float = 0.0

    def __post_init__(self) -> None:
        try:
            a, p = float(self.attenuation_db), float(self.phase_rad)
        except (TypeError, ValueError):
            raise ValueError(
                f"attenuation_db={self.attenuation_db!r} and phase_rad={self.phase_rad!r} "
                "must be numbers."
            ) from None
        if math.isnan(a) or a < 0:
            raise ValueError(
                f"attenuation_db={self.attenuation_db!r}: fiber attenuators are passive, so use "
                "a value >= 0 dB (inf blocks the fiber); to brighten a feature, attenuate the others."
            )
        if not math.isfinite(p):
            raise ValueError(f"phase_rad={self.phase_rad!r} must be finite, e.g. math.pi.")
        object.__setattr__(self, "attenuation_db", a)
        object.__setattr__(self, "phase_rad", p)

    @property
    def transmission(self) -> complex:
        """:func:`port_transmission` of this setting."""
        return port_transmission(self.attenuation_db, self.phase_rad)

    def scaled(self, strength: float) -> PortSetting:
        """``strength`` times this setting (dB and radians), e.g. one frame of a ramp."""
        return PortSetting(strength * self.attenuation_db, strength * self.phase_rad)

    def check_ramp(self) -> PortSetting:
        """This setting, or ``ValueError`` when it cannot end a ramp (infinite attenuation)."""
        if not math.isfinite(self.attenuation_db):
            raise ValueError(
                f"attenuation_db={self.attenuation_db!r}: a ramp needs a finite end value, "
                "e.g. 20 dB."
            )
        return self

    def check_model(self, system: BOGTSystem) -> PortSetting:
        """This setting, or ``ValueError`` when ``system``'s latent cannot take its phase."""
        if self.phase_rad != 0 and not system.model.complex_latent:
            raise ValueError(
                f"phase_rad={self.phase_rad!r} but this model ({type(system.model).__name__}) "
                "has a real latent; phase shifts need the complex optical latent space. "
                "Use phase_rad=0."
            )
        return self


@dataclass(frozen=True)
class FiberEdit:
    """An edit in the OLS: the ports of ``fibers`` (latent indices) set to ``port``.

    ``fibers`` becomes a tuple of distinct indices ``>= 0`` on construction;
    :meth:`checked` adds the checks that need the model (indices below its latent size,
    a phase only on a complex latent).
    """

    fibers: tuple[int, ...]
    port: PortSetting = PortSetting()

    def __post_init__(self) -> None:
        if not isinstance(self.fibers, Iterable) or isinstance(self.fibers, str):
            raise ValueError(
                f"fibers={self.fibers!r} must be a list of latent indices, e.g. [3, 17]."
            )
        given = list(self.fibers)
        for f in given:
            try:
                ok = not isinstance(f, bool) and int(f) == f and int(f) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(
                    f"fibers contains {f!r}; latent indices are integers >= 0 (one per OLS "
                    "dimension). Use find_local_fibers to pick them."
                )
        out = [int(f) for f in given]
        if not out or len(set(out)) != len(out):
            raise ValueError(f"fibers={given!r} must be a non-empty list of distinct indices.")
        object.__setattr__(self, "fibers", tuple(out))

    def checked(self, system: BOGTSystem) -> FiberEdit:
        """This edit, or ``ValueError`` naming what ``system`` cannot take."""
        d = system.model.latent_dim
        for f in self.fibers:
            if f >= d:
                raise ValueError(
                    f"fibers contains {f!r}; latent indices run 0..{d - 1} ({d} OLS dimensions). "
                    "Use find_local_fibers to pick them."
                )
        self.port.check_model(system)
        return self


def edit_mechanism(system: BOGTSystem) -> str:
    """How an edit reaches the light (or not), in words, for reports."""
    if system.model.optical_chip is not None:
        return "chip ports: port_attenuation_db / port_phase_rad on the chosen fibers (all-optical)"
    kind = type(system.model).__name__
    return (
        f"digital: latent values multiplied by the port transmission before the decoder "
        f"({kind} has no fiber path into its decoder)"
    )


def _decode(system: BOGTSystem, z: torch.Tensor, route) -> torch.Tensor:
    return system.model.decode(system.with_reference(z), route).clamp(0, 1)


@torch.no_grad()
def decode_edited(system: BOGTSystem, z: torch.Tensor, edit: FiberEdit, route=None) -> torch.Tensor:
    """Camera images ``(B, C, S, S)`` of latents ``z`` ``(B, D)`` with the ports of
    ``edit.fibers`` set to ``edit.port`` (added to the ports' current settings).

    On the chip the port buffers are changed and restored (``try/finally``), so nothing
    digital touches the light; other models scale ``z`` (see :func:`edit_mechanism`).
    ``route`` is the generator routing (default: decided by the unedited latent, i.e.
    the optical switch follows the input, not the edit).
    """
    edit = edit.checked(system)
    idx, port = list(edit.fibers), edit.port
    route = system.routing(z) if route is None else route
    chip = system.model.optical_chip
    if chip is not None:
        with chip.port_settings(idx, port.attenuation_db, port.phase_rad):
            return _decode(system, z, route)
    t = torch.ones(z.shape[1], dtype=z.dtype, device=z.device)
    tr = port.transmission
    t[idx] = tr if z.is_complex() else tr.real
    return _decode(system, z * t, route)


# ------------------------------------------------------------------ regions
def parse_region(text: str) -> Region:
    """CLI form: a name of :data:`REGION_NAMES` or a pixel box ``"r0,r1,c0,c1"``."""
    t = str(text).strip().lower()
    if t in REGION_NAMES:
        return t
    parts = t.split(",")
    try:
        box = tuple(int(v) for v in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise ValueError(
            f"region={text!r} is neither a region name {REGION_NAMES} nor a box "
            "'row_start,row_stop,col_start,col_stop' in pixels (e.g. '0,6,0,12')."
        )
    return box


def region_mask(region: Region, size: int) -> torch.Tensor:
    """Boolean mask ``(size, size)``, True inside the region.

    Halves and quadrants split at ``size // 2`` (for odd sizes the middle row/column
    belongs to neither "top" nor "bottom"); ``center`` is the central half-side box;
    a box ``(r0, r1, c0, c1)`` is half-open in pixels (rows ``r0 <= r < r1``).
    """
    s, h = size, size // 2
    m = torch.zeros(s, s, dtype=torch.bool)
    if isinstance(region, tuple | list):
        if len(region) != 4 or not all(isinstance(v, int) for v in region):
            raise ValueError(f"region box {region!r} must be 4 integers (r0, r1, c0, c1).")
        r0, r1, c0, c1 = region
        if not (0 <= r0 < r1 <= s and 0 <= c0 < c1 <= s):
            raise ValueError(
                f"region box {tuple(region)} must satisfy 0 <= r0 < r1 <= {s} and "
                f"0 <= c0 < c1 <= {s} for {s}x{s} images."
            )
        m[r0:r1, c0:c1] = True
        if m.all():
            raise ValueError(
                f"region box {tuple(region)} covers the whole {s}x{s} image; nothing is "
                "left outside to compare with. Use a smaller box."
            )
        return m
    name = str(region).lower()
    rows = {"top": slice(0, h), "bottom": slice(s - h, s)}
    cols = {"left": slice(0, h), "right": slice(s - h, s)}
    if name in rows:
        m[rows[name], :] = True
    elif name in cols:
        m[:, cols[name]] = True
    elif name in QUADRANTS:
        v, u = name.split("-")
        m[rows[v], cols[u]] = True
    elif name == "center":
        q = s // 4
        m[q : s - q, q : s - q] = True
    else:
        raise ValueError(
            f"region={region!r} is unknown; use one of {REGION_NAMES[:-1]} (or 'auto' in "
            "find_local_fibers), or a pixel box (r0, r1, c0, c1)."
        )
    return m


def locality_ratio(change: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``change`` inside ``mask`` over its mean outside: ``(..., H, W) -> (...)``.

    ``change`` is a non-negative map (e.g. ``|after - before|`` averaged over channels).
    ``inf`` if only the inside changed, ``nan`` if nothing changed.
    """
    mask = mask.to(change.device)
    inside = change[..., mask].mean(-1)
    outside = change[..., ~mask].mean(-1)
    return inside / outside  # IEEE: x/0 = inf, 0/0 = nan, as documented


# ------------------------------------------------------------------ fiber scan
@torch.no_grad()
def fiber_effect_maps(
    system: BOGTSystem,
    images: torch.Tensor,
    port: PortSetting = PortSetting(),
    max_batch: int = 256,
) -> torch.Tensor:
    """Effect map ``E_d`` ``(D, S, S)`` of each OLS dimension (see the module doc) for the
    port setting ``port``.

    One decode per (image, fiber) pair, ``max_batch`` at a time, injecting ``t_d z``.
    """
    port.check_model(system)
    x = check_images(system, images)
    z = encode(system, x)
    route = system.routing(z)
    base = _decode(system, z, route)
    b, d = z.shape
    tr = port.transmission
    t = tr if z.is_complex() else tr.real
    per = max(1, max_batch // b)
    maps = []
    for start in range(0, d, per):
        dims = torch.arange(start, min(start + per, d), device=z.device)
        zz = z.unsqueeze(0).repeat(len(dims), 1, 1)  # (nd, B, D)
        zz[torch.arange(len(dims), device=z.device), :, dims] *= t
        rr = route if isinstance(route, int) else route.repeat(len(dims))
        out = _decode(system, zz.flatten(0, 1), rr).view(len(dims), b, *base.shape[1:])
        maps.append((out - base).abs().mean(dim=(1, 2)))
    return torch.cat(maps).cpu()


@dataclass
class LocalFibers:
    """Result of :func:`find_local_fibers`.

    ``fibers``: chosen latent indices, most local first; ``locality``: their ratios;
    ``region``: the region used (the chosen quadrant for ``auto``); ``mask`` ``(S, S)``;
    ``effect_maps`` ``(D, S, S)``; ``all_locality`` ``(D,)``; ``strength`` ``(D,)`` mean effect.
    """

    fibers: list[int]
    locality: list[float]
    region: Region
    mask: torch.Tensor
    effect_maps: torch.Tensor = field(repr=False)
    all_locality: torch.Tensor = field(repr=False)
    strength: torch.Tensor = field(repr=False)


def _top_local(maps, mask, k, min_effect_fraction):
    loc = locality_ratio(maps, mask).nan_to_num(nan=0.0)
    strength = maps.mean(dim=(1, 2))
    weak = strength < min_effect_fraction * strength.max()
    # weak fibers go last: a ratio of two near-zero means is noise, not locality
    order = sorted(range(len(loc)), key=lambda i: (bool(weak[i]), -float(loc[i])))
    return order[:k], loc, strength


def find_local_fibers(
    system: BOGTSystem,
    images: torch.Tensor,
    region: Region = "auto",
    k: int = 3,
    *,
    port: PortSetting = PortSetting(),
    min_effect_fraction: float = 0.1,
) -> LocalFibers:
    """The ``k`` fibers whose port edit (``port``) changes ``region`` most and the rest least.

    No labels: only the model and unlabelled ``images`` ``(B, C, S, S)``. ``region``:
    a name of :data:`REGION_NAMES`, a pixel box ``(r0, r1, c0, c1)``, or ``"auto"``
    (the quadrant whose top-``k`` fibers are most local on average).
    """
    d = system.model.latent_dim
    k = require_int_range(
        "k", k, 1, d, f"This model's OLS has {d} dimensions (fibers x wavelengths)."
    )
    if not 0 <= float(min_effect_fraction) < 1:
        raise ValueError(f"min_effect_fraction={min_effect_fraction!r} must be in [0, 1).")
    s = expected_image_shape(system)[1]
    if not (isinstance(region, str) and region.lower() == "auto"):
        mask = region_mask(region, s)  # validate before the (slower) scan
    maps = fiber_effect_maps(system, images, port)
    if isinstance(region, str) and region.lower() == "auto":
        best = None
        for q in QUADRANTS:
            m = region_mask(q, s)
            top, loc, strength = _top_local(maps, m, k, min_effect_fraction)
            score = float(loc[top].clamp(max=1e6).mean())
            if best is None or score > best[0]:
                best = (score, q, m, top, loc, strength)
        _, region, mask, top, loc, strength = best
    else:
        top, loc, strength = _top_local(maps, mask, k, min_effect_fraction)
    return LocalFibers(
        fibers=top,
        locality=[float(loc[i]) for i in top],
        region=region,
        mask=mask,
        effect_maps=maps,
        all_locality=loc,
        strength=strength,
    )


# ------------------------------------------------------------------ editing
@dataclass
class EditResult:
    """``before``/``after`` camera images ``(B, C, S, S)`` in [0, 1] (CPU) and the mechanism."""

    before: torch.Tensor
    after: torch.Tensor
    mechanism: str


@torch.no_grad()
def edit_images(system: BOGTSystem, images: torch.Tensor, edit: FiberEdit) -> EditResult:
    """Encode ``images``, decode them unedited (``before``) and with ``edit`` (``after``)."""
    x = check_images(system, images)
    z = encode(system, x)
    route = system.routing(z)
    before = _decode(system, z, route)
    after = decode_edited(system, z, edit, route)
    c = x.shape[1]
    return EditResult(
        match_channels(before, c).cpu(), match_channels(after, c).cpu(), edit_mechanism(system)
    )


def edit_ratio(before: torch.Tensor, after: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image ``mean|Δ| inside / mean|Δ| outside`` ``(B,)`` (channels averaged)."""
    return locality_ratio((after - before).abs().mean(1), mask)


def _summary(ratios: torch.Tensor) -> dict:
    fin = ratios[torch.isfinite(ratios)]
    return {
        "ratio_mean": float(fin.mean()) if fin.numel() else math.nan,
        "ratio_median": float(fin.median()) if fin.numel() else math.nan,
        "images_scored": int(fin.numel()),
        "images_unchanged": int(ratios.isnan().sum()),
        "images_only_inside_changed": int(ratios.isinf().sum()),
    }


def _difference_panel(before, after, mask) -> torch.Tensor:
    """|Δ| as grey (normalised to the largest change shown), the region tinted red."""
    d = (after - before).abs().mean(1, keepdim=True)
    d = d / d.max().clamp_min(1e-12)
    rgb = d.repeat(1, 3, 1, 1)
    tint = mask.to(d.dtype)
    rgb[:, 0] = rgb[:, 0] * (1 - 0.3 * tint) + 0.3 * tint
    return rgb


def run_edit(
    system: BOGTSystem,
    cfg: TrainConfig,
    out_dir: str | Path,
    region: Region = "auto",
    k: int = 3,
    port: PortSetting = PortSetting(),
    n: int = 64,
    n_random: int = 5,
    seed: int = 0,
    dataset: str | None = None,
    data_root: str | None = None,
    n_show: int = 8,
) -> dict:
    """Find local fibers on half of ``n`` held-out images, edit the other half, score, save.

    Writes ``edit.json``, ``edit_before.png``, ``edit_after.png`` and
    ``edit_difference.png`` (|Δ| grey, the region tinted red) to ``out_dir``.
    The random baseline edits ``k`` random fibers (``n_random`` seeded draws); every edit
    sets the ports to ``port``.
    """
    from lightgen.train.data import run_split

    n = require_int_range("n", n, 2, fix="Use at least 2 images (half scan, half scored).")
    n_random = require_int_range("n_random", n_random, 1)
    if isinstance(region, str):
        region = parse_region(region)
    c, s, _ = expected_image_shape(system)
    name = dataset or cfg.dataset
    ds = run_split(cfg, "test", n, dataset=name, data_root=data_root, seed=seed, channels=c)
    x = ds.images
    half = x.shape[0] // 2
    if half < 1:
        raise ValueError(f"the {name!r} test split holds {x.shape[0]} image(s); need at least 2.")
    scan, held = x[:half], x[half:]
    found = find_local_fibers(system, scan, region, k, port=port)
    res = edit_images(system, held, FiberEdit(found.fibers, port))
    chosen = _summary(edit_ratio(res.before, res.after, found.mask))
    g = torch.Generator().manual_seed(seed)
    d = system.model.latent_dim
    rand = []
    for _ in range(n_random):
        fib = torch.randperm(d, generator=g)[:k].tolist()
        r = edit_images(system, held, FiberEdit(fib, port))
        rand.append({"fibers": fib, **_summary(edit_ratio(r.before, r.after, found.mask))})
    rand_means = [r["ratio_mean"] for r in rand if math.isfinite(r["ratio_mean"])]
    delta = (res.after - res.before).abs().mean(1)
    m = found.mask
    out = Path(out_dir)
    show = slice(0, min(n_show, held.shape[0]))
    up = max(1, math.ceil(96 / s))
    files = {
        "before": save_png(out / "edit_before.png", image_grid(res.before[show], 8, upscale=up)),
        "after": save_png(out / "edit_after.png", image_grid(res.after[show], 8, upscale=up)),
        "difference": save_png(
            out / "edit_difference.png",
            image_grid(_difference_panel(res.before[show], res.after[show], m), 8, upscale=up),
        ),
    }
    chip = system.model.optical_chip
    m_per = chip.config.n_fibers if chip is not None else d
    report = {
        "model": cfg.model,
        "preset": cfg.preset,
        "dataset": name,
        "mechanism": res.mechanism,
        "region": list(found.region) if isinstance(found.region, tuple) else found.region,
        "region_area_fraction": float(m.float().mean()),
        "k": len(found.fibers),
        "fibers": found.fibers,
        "fibers_as_wavelength_and_fiber": [[f // m_per, f % m_per] for f in found.fibers],
        "attenuation_db": port.attenuation_db,
        "phase_rad": port.phase_rad,
        "scan_images": int(scan.shape[0]),
        "scored_images": int(held.shape[0]),
        "scan_locality": found.locality,
        "edit": chosen,
        "fraction_of_change_inside_region": float(delta[:, m].sum() / delta.sum().clamp_min(1e-30)),
        "mean_abs_change": float(delta.mean()),
        "random_fibers": rand,
        "random_ratio_mean": sum(rand_means) / len(rand_means) if rand_means else math.nan,
        "files": {k_: str(v) for k_, v in files.items()},
    }
    write_json(out / "edit.json", report)
    return report
