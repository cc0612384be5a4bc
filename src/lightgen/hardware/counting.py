r"""Neurons and equivalent operations per frame of a :class:`ChipDesign`.

A free-space hop between two planes of :math:`N_a` and :math:`N_b` pixels is a linear
map of the field, :math:`u_b = W u_a` with :math:`W \in \mathbb{C}^{N_b\times N_a}`
(Rayleigh-Sommerfeld diffraction connects every pixel to every pixel; Lin et al.
2018, Science 361, 1004). Its *dense-equivalent* cost is :math:`N_a N_b`
multiply-adds. **One multiply-add counts as 2 operations**, whether the numbers are
real or complex (the optical-computing convention used for TOPS claims; a complex
multiply-add is 8 real FLOPs on a digital machine, see :mod:`lightgen.hardware.digital`).
Each wavelength is an independent linear map, so counts scale with the number of
wavelengths.

Two counting rules:

``naive``
    Every hop between consecutive planes (input device, each diffractive layer, the
    fiber facets, the camera) is its own dense :math:`N_a\times N_b` map.

``conservative`` (the paper's rule)
    Consecutive linear layers with no nonlinearity between them are one equivalent
    layer: each *linear segment* counts once, as a dense map from its first plane to
    its last. The only nonlinearity is the camera (:math:`|u|^2`), and the fiber
    facets only if ``design.fiber_nonlinear`` (coupling into a single-mode fiber is a
    linear projection on its mode). With linear fibers the whole chip is one map
    input -> camera per generator and wavelength.

The counts are *equivalent* operations: the same map can be applied digitally
with far fewer (FFT convolution, or the rank-``n_fibers`` factorisation through the
latent space); :mod:`lightgen.hardware.digital` measures both.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from lightgen.hardware.design import ChipDesign

RULES: tuple[str, ...] = ("naive", "conservative")
#: Operations per multiply-add (1 multiply + 1 add).
OPS_PER_MAC = 2


@dataclass(frozen=True)
class Hop:
    """One dense-equivalent linear map, counted once per wavelength and per repeat."""

    source: str
    target: str
    n_in: int
    n_out: int
    repeats: int = 1  # e.g. once per generator

    @property
    def macs(self) -> int:
        return self.n_in * self.n_out * self.repeats


@dataclass(frozen=True)
class OpCount:
    """Equivalent operations per frame under one counting rule.

    Attributes:
        rule: ``"naive"`` or ``"conservative"``.
        hops: the dense-equivalent maps counted (per wavelength).
        n_wavelengths: independent linear maps per hop.
    """

    rule: str
    hops: tuple[Hop, ...]
    n_wavelengths: int

    @property
    def macs_per_frame(self) -> int:
        """Multiply-adds per frame (all hops, repeats and wavelengths)."""
        return self.n_wavelengths * sum(h.macs for h in self.hops)

    @property
    def ops_per_frame(self) -> int:
        """Operations per frame: ``2 * macs_per_frame`` (multiply-add = 2 operations)."""
        return OPS_PER_MAC * self.macs_per_frame

    @property
    def equivalent_layers(self) -> int:
        return sum(h.repeats for h in self.hops)


def _planes(design: ChipDesign) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    enc = [("input", design.input_pixels)]
    enc += [(f"enc{k + 1:02d}", s.neurons) for k, s in enumerate(design.encoder_layers)]
    enc += [("fibers", design.n_fibers)]
    gen = [("fibers", design.n_fibers)]
    gen += [(f"gen{k + 1:02d}", s.neurons) for k, s in enumerate(design.generator_layers)]
    gen += [("camera", design.camera_pixels)]
    return enc, gen


def count_operations(design: ChipDesign, rule: str = "conservative") -> OpCount:
    """Equivalent operations per frame of ``design`` under ``rule`` (module docstring)."""
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is unknown; choose one of {RULES}.")
    enc, gen = _planes(design)
    g = design.n_generators
    if rule == "naive":
        hops = [Hop(a[0], b[0], a[1], b[1]) for a, b in itertools.pairwise(enc)]
        hops += [Hop(a[0], b[0], a[1], b[1], g) for a, b in itertools.pairwise(gen)]
    elif design.fiber_nonlinear:
        hops = [
            Hop(enc[0][0], enc[-1][0], enc[0][1], enc[-1][1]),
            Hop(gen[0][0], gen[-1][0], gen[0][1], gen[-1][1], g),
        ]
    else:
        hops = [Hop(enc[0][0], gen[-1][0], enc[0][1], gen[-1][1], g)]
    return OpCount(rule, tuple(hops), design.n_wavelengths)


def count_neurons(design: ChipDesign) -> int:
    """Total diffractive neurons (one per pixel of every physical layer)."""
    return design.neurons()["total"]
