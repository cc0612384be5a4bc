"""How far light can travel sideways inside a chip: per-hop and fiber-to-camera connectivity.

A metasurface pixel (neuron) of pitch ``p`` (``layer_pixel_samples`` grid samples of
``dx``) diffracts light into angles up to ``sin(theta_max) = min(1, lambda / (2 p))``
(longest wavelength: the narrowest cone), so over a hop of length ``d`` one neuron reaches
``d * tan(theta_max)`` sideways. A hop is *fully connected* when that reach spans the
aperture ``N dx`` (every neuron of the next plane
can receive light from every neuron of this one; the full-connectivity condition of
diffractive networks, Lin et al., Science 361, 1004 (2018)). A fiber's facet emits only
its own mode, so on the first hop of a generator (and, reversed, the last of an encoder)
its light spreads as a Gaussian beam, ``w(z) = w0 sqrt(1 + (z / z_R)^2)``, and only the
layers after it can send it further. With a 2f Fourier lens at the fibers
(``*_lens_focal_length_m``) the fiber's mode covers the aperture with a beam of radius
``lambda f / (pi w0)`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightgen.chip.config import ChipConfig


@dataclass(frozen=True)
class HopReach:
    """One free-space hop: its length and the sideways reach of one neuron, as a
    fraction of the aperture width (>= 1: fully connected)."""

    name: str
    distance_m: float
    reach_fraction: float


@dataclass(frozen=True)
class Connectivity:
    """Connectivity of a design (see the module docstring).

    ``generator_fiber_reach_fraction``: radius of the region one fiber's light can
    reach on the camera, over the camera's width (>= 1: a fiber anywhere over the camera
    can light every camera pixel; the reach is an upper bound that needs every layer to
    deflect at ``theta_max``). ``encoder_fiber_reach_fraction``: the same for the region
    of the SLM that one fiber can gather from.
    """

    aperture_m: float
    max_angle_rad: float
    hops: tuple[HopReach, ...]
    encoder_fiber_reach_fraction: float
    generator_fiber_reach_fraction: float

    def warnings(self) -> list[str]:
        """Plain-language warnings for under-connected parts (empty when none)."""
        out = []
        for what, frac in (
            ("generator", self.generator_fiber_reach_fraction),
            ("encoder", self.encoder_fiber_reach_fraction),
        ):
            if frac < 1:
                out.append(
                    f"{what} under-connected: one fiber's light reaches at most {frac:.0%} of the "
                    f"{'camera' if what == 'generator' else 'SLM'} width, so images are "
                    "mosaics of the fiber array. Lengthen the hops, add layers, use a finer "
                    f"pitch (wider diffraction cone), or a Fourier lens ({what}_lens_focal_length_m)."
                )
        return out


def _gaussian_radius_m(waist_m: float, wavelength_m: float, distance_m: float) -> float:
    z_r = math.pi * waist_m**2 / wavelength_m
    return waist_m * math.sqrt(1 + (distance_m / z_r) ** 2)


def connectivity(cfg: ChipConfig) -> Connectivity:
    """Per-hop reach and each fiber's reach on the camera / SLM for ``cfg``."""
    dx = cfg.pixel_pitch_m
    lam = max(cfg.wavelengths_m)
    sin_t = min(1.0, lam / (2 * cfg.layer_pixel_pitch_m))  # one neuron: one metasurface pixel
    tan_t = math.inf if sin_t >= 1 else sin_t / math.sqrt(1 - sin_t**2)
    aperture = cfg.grid_samples * dx
    camera_width = cfg.image_size * cfg.camera_pixel_samples * dx
    slm_width = cfg.image_size * cfg.slm_pixel_samples * dx
    w0 = cfg.fiber_mode_field_diameter_m / 2

    def reach(d: float) -> float:
        return d * tan_t

    enc = [cfg.encoder_first_hop_m] + [cfg.layer_spacing_m] * (cfg.encoder_layers - 1)
    gen = [cfg.layer_spacing_m] * (cfg.generator_layers - 1) + [cfg.generator_last_hop_m]
    hops = [HopReach(f"encoder hop {i}", d, reach(d) / aperture) for i, d in enumerate(enc)] + [
        HopReach(f"generator hop {i + 1}", d, reach(d) / aperture) for i, d in enumerate(gen)
    ]

    def fiber_reach(lens_f: float | None, fiber_hop: float, layer_hops: list[float]) -> float:
        if lens_f is None:
            r = 2 * _gaussian_radius_m(w0, lam, fiber_hop)
        else:  # the 2f lens spreads the mode over a beam of radius lambda f / (pi w0)
            r = 2 * lam * lens_f / (math.pi * w0) + reach(fiber_hop)
        return r + sum(reach(d) for d in layer_hops)

    gen_r = fiber_reach(cfg.generator_lens_focal_length_m, cfg.generator_first_hop_m, gen)
    enc_r = fiber_reach(cfg.encoder_lens_focal_length_m, cfg.encoder_last_hop_m, enc)
    # a 2f lens before the camera (after the SLM) maps any light that reaches its front
    # focal plane onto the whole camera (spreads every SLM pixel over the first layer)
    if cfg.camera_lens_focal_length_m is not None:
        gen_r = math.inf
    if cfg.slm_lens_focal_length_m is not None:
        enc_r = math.inf
    return Connectivity(
        aperture_m=aperture,
        max_angle_rad=math.asin(sin_t),
        hops=tuple(hops),
        encoder_fiber_reach_fraction=enc_r / slm_width,
        generator_fiber_reach_fraction=gen_r / camera_width,
    )
