r"""Photon budget: the least light a frame needs for a target camera SNR.

A camera pixel collecting a mean :math:`S` photo-electrons has shot-noise variance
:math:`S` (Poisson) and read-noise variance :math:`\sigma_r^2`, so

.. math:: \mathrm{SNR} = \frac{S}{\sqrt{S + \sigma_r^2}}
   \quad\Longleftrightarrow\quad
   S = \frac{\mathrm{SNR}^2 + \sqrt{\mathrm{SNR}^4 + 4\,\mathrm{SNR}^2\sigma_r^2}}{2}

(positive root of :math:`S^2 - \mathrm{SNR}^2 S - \mathrm{SNR}^2\sigma_r^2 = 0`; e.g.
Janesick, *Photon Transfer*, SPIE 2007, ch. 2). Each electron needs :math:`1/\eta`
photons (quantum efficiency :math:`\eta`) of energy :math:`hc/\lambda`. Light reaching
the camera is the laser's times the chip transmission
:math:`T = t_{layer}^{K+K'}\,\eta_{fiber}\,10^{-\mathrm{loss_{dB}}/10}`, so the laser
must deliver :math:`E = N_{pix}\,S\,hc/(\eta\lambda T)` per frame and wavelength. Divided
by the operations per frame this is the optical energy-per-operation floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lightgen._checks import require_positive
from lightgen.hardware.design import ChipDesign
from lightgen.hardware.devices import require_fraction, require_nonnegative
from lightgen.optics.devices import PLANCK_J_S, SPEED_OF_LIGHT_M_PER_S

#: Planck constant, J s (exact, SI 2019): the camera model's (``lightgen.optics.devices``).
H_J_S = PLANCK_J_S


def photon_energy_j(wavelength_m: float) -> float:
    """``h c / λ`` in joules, with the constants of the camera model
    (:func:`lightgen.optics.devices.photon_count` counts photons of this energy)."""
    lam = require_positive(
        "wavelength_m", wavelength_m, "Give the wavelength in metres, e.g. 532e-9."
    )
    return PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S / lam


def snr_from_signal(signal_e: float, read_noise_e: float) -> float:
    """Shot- plus read-noise-limited SNR of a pixel holding ``signal_e`` electrons."""
    s = require_nonnegative("signal_e", signal_e, "Electrons per pixel.")
    r = require_nonnegative("read_noise_e", read_noise_e, "Electrons rms, e.g. 2.")
    return s / math.sqrt(s + r * r) if s > 0 else 0.0


def signal_for_snr(target_snr: float, read_noise_e: float) -> float:
    """Electrons per pixel needed for ``target_snr`` (closed form in the module docstring)."""
    q = require_positive("target_snr", target_snr, "Give the camera SNR you need, e.g. 10.")
    r = require_nonnegative("read_noise_e", read_noise_e, "Electrons rms, e.g. 2.")
    q2 = q * q
    return (q2 + math.sqrt(q2 * q2 + 4 * q2 * r * r)) / 2


def chip_transmission(
    design: ChipDesign, fiber_coupling_efficiency: float = 0.5, layer_transmission: float = 0.9
) -> float:
    """Fraction of laser power reaching one camera: layers x fiber coupling x fiber loss."""
    eta = require_fraction(
        "fiber_coupling_efficiency",
        fiber_coupling_efficiency,
        "Fraction of light entering the fibers, e.g. 0.5.",
    )
    t = require_fraction(
        "layer_transmission", layer_transmission, "Per-layer transmission, e.g. 0.9."
    )
    n_layers = len(design.encoder_layers) + len(design.generator_layers)
    return t**n_layers * eta * 10 ** (-design.fiber_loss_db / 10)


@dataclass(frozen=True)
class PhotonBudget:
    """Least light per frame for a target SNR (all energies in joules).

    Attributes:
        signal_e_per_pixel: mean electrons per camera pixel.
        photons_per_frame: photons reaching the cameras per frame (all wavelengths).
        camera_energy_j: optical energy reaching the cameras per frame.
        laser_energy_j: optical energy the laser must emit per frame (``/ transmission``).
        energy_per_op_j: ``laser_energy_j / ops_per_frame`` (optical floor).
        laser_power_w: ``laser_energy_j * frame_rate_hz`` (``None`` without a rate).
    """

    target_snr: float
    read_noise_e: float
    quantum_efficiency: float
    transmission: float
    signal_e_per_pixel: float
    photons_per_frame: float
    camera_energy_j: float
    laser_energy_j: float
    ops_per_frame: float
    energy_per_op_j: float
    frame_rate_hz: float | None
    laser_power_w: float | None


def photon_budget(
    *,
    target_snr: float,
    read_noise_e: float,
    quantum_efficiency: float,
    wavelengths_m: Sequence[float] | float,
    n_pixels: int,
    transmission: float,
    ops_per_frame: float,
    frame_rate_hz: float | None = None,
) -> PhotonBudget:
    """Photon budget for ``n_pixels`` camera pixels read at every wavelength.

    Each wavelength is its own colour channel, so every pixel needs ``S`` electrons
    at each wavelength. Returns the laser energy per frame and the energy-per-op floor.
    """
    s = signal_for_snr(target_snr, read_noise_e)
    qe = require_fraction("quantum_efficiency", quantum_efficiency, "A fraction, e.g. 0.7.")
    t = require_fraction(
        "transmission", transmission, "Fraction of laser light reaching the camera."
    )
    n = require_positive("n_pixels", n_pixels, "Camera pixels per frame.")
    ops = require_positive("ops_per_frame", ops_per_frame, "Operations per frame (see counting).")
    wl = (wavelengths_m,) if isinstance(wavelengths_m, int | float) else tuple(wavelengths_m)
    photons_per_pixel = s / qe
    photons = n * photons_per_pixel * len(wl)
    energy = sum(n * photons_per_pixel * photon_energy_j(w) for w in wl)
    laser = energy / t
    rate = (
        None
        if frame_rate_hz is None
        else require_positive("frame_rate_hz", frame_rate_hz, "Frames/s.")
    )
    return PhotonBudget(
        target_snr=float(target_snr),
        read_noise_e=float(read_noise_e),
        quantum_efficiency=qe,
        transmission=t,
        signal_e_per_pixel=s,
        photons_per_frame=photons,
        camera_energy_j=energy,
        laser_energy_j=laser,
        ops_per_frame=float(ops),
        energy_per_op_j=laser / ops,
        frame_rate_hz=rate,
        laser_power_w=None if rate is None else laser * rate,
    )
