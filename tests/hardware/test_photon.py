"""Photon budget against the shot + read noise formula solved by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.chip.design import preset_design
from lightgen.hardware.photon import (
    chip_transmission,
    photon_budget,
    photon_energy_j,
    signal_for_snr,
    snr_from_signal,
)


def test_signal_for_snr_matches_hand_solution():
    # SNR = S / sqrt(S + r^2) with SNR 10, r = 2 e-: S^2 - 100 S - 400 = 0 -> S = 103.8516
    assert signal_for_snr(10, 2) == pytest.approx(103.85165, rel=1e-6)
    assert signal_for_snr(10, 0) == pytest.approx(100.0)  # shot-noise limit: S = SNR^2
    # read-noise limit: S ~ SNR * r for r >> SNR
    assert signal_for_snr(10, 1e4) == pytest.approx(10 * 1e4, rel=1e-2)


@settings(max_examples=40, deadline=None)
@given(snr=st.floats(0.1, 1e3), read=st.floats(0.0, 100.0))
def test_signal_for_snr_inverts_the_snr_formula(snr, read):
    assert snr_from_signal(signal_for_snr(snr, read), read) == pytest.approx(snr, rel=1e-9)


def test_photon_energy_at_532nm():
    assert photon_energy_j(532e-9) == pytest.approx(3.7339e-19, rel=1e-4)


def test_photon_budget_hand_example():
    b = photon_budget(
        target_snr=10,
        read_noise_e=0,
        quantum_efficiency=0.5,
        wavelengths_m=532e-9,
        n_pixels=100,
        transmission=0.25,
        ops_per_frame=1e6,
        frame_rate_hz=1e3,
    )
    # 100 e- / 0.5 QE = 200 photons per pixel; 100 pixels -> 2e4 photons
    assert b.photons_per_frame == pytest.approx(2e4)
    assert b.camera_energy_j == pytest.approx(2e4 * 3.7339e-19, rel=1e-4)
    assert b.laser_energy_j == pytest.approx(4 * 2e4 * 3.7339e-19, rel=1e-4)
    assert b.energy_per_op_j == pytest.approx(b.laser_energy_j / 1e6)
    assert b.laser_power_w == pytest.approx(b.laser_energy_j * 1e3)


def test_every_wavelength_needs_its_own_photons():
    kw = dict(
        target_snr=5,
        read_noise_e=1,
        quantum_efficiency=1,
        n_pixels=10,
        transmission=1,
        ops_per_frame=1,
    )
    one = photon_budget(wavelengths_m=(500e-9,), **kw)
    two = photon_budget(wavelengths_m=(500e-9, 1000e-9), **kw)
    assert two.photons_per_frame == pytest.approx(2 * one.photons_per_frame)
    assert two.camera_energy_j == pytest.approx(
        1.5 * one.camera_energy_j
    )  # red photon: half the energy


def test_chip_transmission_multiplies_layers_coupling_and_fiber_loss():
    d = preset_design("tiny").replace(fiber_loss_db=3.0)  # 4 layers
    t = chip_transmission(d, fiber_coupling_efficiency=0.5, layer_transmission=0.9)
    assert t == pytest.approx(0.9**4 * 0.5 * 10 ** (-0.3))


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        (dict(target_snr=0), "target_snr"),
        (dict(read_noise_e=-1), "read_noise_e"),
        (dict(quantum_efficiency=1.5), "quantum_efficiency"),
        (dict(transmission=0), "transmission"),
        (dict(n_pixels=-4), "n_pixels"),
        (dict(frame_rate_hz=0), "frame_rate_hz"),
    ],
)
def test_bad_photon_budget_input_names_the_parameter(kw, name):
    base = dict(
        target_snr=10,
        read_noise_e=2,
        quantum_efficiency=0.7,
        wavelengths_m=532e-9,
        n_pixels=10,
        transmission=0.5,
        ops_per_frame=1.0,
    )
    with pytest.raises(ValueError, match=name):
        photon_budget(**{**base, **kw})


def test_fiber_coupling_above_one_is_rejected():
    with pytest.raises(ValueError, match="fiber_coupling_efficiency"):
        chip_transmission(preset_design("tiny"), fiber_coupling_efficiency=1.2)
    assert math.isfinite(chip_transmission(preset_design("tiny")))


def test_the_photon_budget_counts_photons_as_the_camera_model_does():
    from lightgen.hardware.photon import photon_energy_j
    from lightgen.optics.devices import photon_count

    for lam in (450e-9, 532e-9, 1550e-9):
        assert photon_count(2e-12, 1e-3, lam) * photon_energy_j(lam) == pytest.approx(2e-15)
