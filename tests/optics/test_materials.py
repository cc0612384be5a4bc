"""Refractive-index models and the height <-> phase map, checked against published values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.optics.materials import (
    BUILTIN_MATERIALS,
    Material,
    get_material,
    height_to_phase,
    phase_to_height,
    two_pi_height_m,
)


def malitson_n(lam_um: float) -> float:
    """Malitson 1965 fused silica, written out independently of the library."""
    l2 = lam_um**2
    n2 = (
        1
        + 0.6961663 * l2 / (l2 - 0.0684043**2)
        + 0.4079426 * l2 / (l2 - 0.1162414**2)
        + 0.8974794 * l2 / (l2 - 9.896161**2)
    )
    return math.sqrt(n2)


def test_fused_silica_index_matches_malitson_tabulated_values():
    fs = get_material("fused_silica")
    # Malitson 1965: n_d(587.6 nm) = 1.4585, n(532 nm) = 1.4607
    assert fs.refractive_index(587.6e-9) == pytest.approx(1.4585, abs=1e-4)
    assert fs.refractive_index(532e-9) == pytest.approx(1.4607, abs=1e-4)
    assert fs.refractive_index(1550e-9) == pytest.approx(malitson_n(1.55), abs=1e-12)


def test_silicon_nitride_index_matches_luke_2015_at_telecom_and_visible():
    sin = get_material("sin")
    # Luke et al. 2015 fit: n = 1.9963 at 1550 nm (as tabulated by refractiveindex.info)
    assert sin.refractive_index(1550e-9) == pytest.approx(1.996, abs=1e-3)
    assert sin.refractive_index(632.8e-9) == pytest.approx(2.039, abs=2e-3)


def test_tio2_sellmeier_rewrite_equals_devore_original_form():
    tio2 = get_material("tio2")
    for lam_um in (0.45, 0.532, 0.6328, 1.0, 1.5):
        devore = math.sqrt(5.913 + 0.2441 / (lam_um**2 - 0.0803))
        assert tio2.refractive_index(lam_um * 1e-6) == pytest.approx(devore, abs=1e-12)
    # handbook rutile ordinary index at the sodium D line: n_o = 2.613
    assert tio2.refractive_index(589.3e-9) == pytest.approx(2.613, abs=2e-3)


@pytest.mark.parametrize("name", sorted(BUILTIN_MATERIALS))
def test_builtin_materials_show_normal_dispersion_in_the_visible(name):
    m = get_material(name)
    blue, red = m.refractive_index(450e-9), m.refractive_index(650e-9)
    assert blue > red > 1.0


def test_cauchy_model_evaluates_with_wavelength_in_micrometres():
    m = Material.cauchy("test", 1.5, 0.004, 0.0001)
    lam_um = 0.55
    expected = 1.5 + 0.004 / lam_um**2 + 0.0001 / lam_um**4
    assert m.refractive_index(lam_um * 1e-6) == pytest.approx(expected, rel=1e-14)


def test_constant_material_has_the_same_index_at_every_wavelength():
    m = Material.constant("glass", 1.52)
    assert m.refractive_index(400e-9) == m.refractive_index(10e-6) == 1.52


def test_tensor_index_equals_scalar_index():
    fs = get_material("fused_silica")
    lam = torch.tensor([450e-9, 532e-9, 633e-9], dtype=torch.float64)
    n = fs.refractive_index_tensor(lam)
    assert n.shape == lam.shape and n.dtype == torch.float64
    for i in range(3):
        assert float(n[i]) == pytest.approx(fs.refractive_index(float(lam[i])), abs=1e-14)


def test_unknown_material_name_lists_the_known_names():
    with pytest.raises(ValueError, match="fused_silica") as e:
        get_material("unobtainium")
    assert "unobtainium" in str(e.value) and "tio2" in str(e.value)


def test_wavelength_outside_validity_range_raises_naming_the_range():
    with pytest.raises(ValueError, match=r"tio2.*\[4.3e-07, 1.53e-06\]"):
        get_material("tio2").refractive_index(400e-9)
    with pytest.raises(ValueError, match="validity range"):
        get_material("fused_silica").refractive_index_tensor(torch.tensor([0.5e-6, 5e-6]))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Material("x", "drude", (1.0,)), "model"),
        (lambda: Material("x", "cauchy", (1.0, 2.0)), "coefficients"),
        (lambda: Material("x", "sellmeier", (1.0, 2.0)), "coefficients"),
        (lambda: Material.constant("x", -1.0), "n0"),
        (lambda: Material.sellmeier("x", (1.0, 2.0), (0.1,)), "c_um2"),
        (lambda: Material.constant("x", 1.5).refractive_index(-1.0), "wavelength_m"),
        (lambda: Material("x", "constant", (1.5,), (1e-6, 0.5e-6)), "valid_range_m"),
    ],
)
def test_bad_material_input_raises_value_error_naming_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_height_to_phase_gives_one_phase_map_per_wavelength_with_thin_element_formula():
    fs = get_material("fused_silica")
    wl = (450e-9, 532e-9, 633e-9)
    h = torch.rand(5, 7, dtype=torch.float64) * 1e-6
    phase = height_to_phase(h, fs, wl)
    assert phase.shape == (3, 5, 7) and phase.dtype == torch.float64
    for i, lam in enumerate(wl):
        expected = 2 * math.pi * (malitson_n(lam * 1e6) - 1.0) * h / lam
        torch.testing.assert_close(phase[i], expected, rtol=1e-12, atol=0)


def test_one_height_map_gives_phases_in_the_dispersion_ratio():
    lam1, lam2 = 450e-9, 650e-9
    h = torch.linspace(0, 1e-6, 11, dtype=torch.float64).view(1, 11)
    p = height_to_phase(h, "fused_silica", (lam1, lam2))
    ratio = ((malitson_n(0.45) - 1) / lam1) / ((malitson_n(0.65) - 1) / lam2)
    torch.testing.assert_close(p[0, :, 1:] / p[1, :, 1:], torch.full((1, 10), ratio).double())
    assert ratio > lam2 / lam1  # dispersion adds to the 1/λ scaling


def test_ambient_index_reduces_the_phase_by_the_index_contrast():
    h = torch.full((2, 2), 1e-6, dtype=torch.float64)
    n = get_material("sin").refractive_index(532e-9)
    p_air = height_to_phase(h, "sin", 532e-9)
    p_water = height_to_phase(h, "sin", 532e-9, ambient_index=1.333)
    torch.testing.assert_close(p_water / p_air, torch.full_like(h, (n - 1.333) / (n - 1))[None])


@settings(max_examples=25, deadline=None)
@given(
    phase=st.floats(0, 20 * math.pi),
    lam=st.floats(0.45e-6, 1.5e-6),
    name=st.sampled_from(sorted(BUILTIN_MATERIALS)),
)
def test_height_phase_round_trip_is_exact(phase, lam, name):
    h = phase_to_height(torch.tensor([[phase]], dtype=torch.float64), name, lam)
    back = height_to_phase(h, name, lam)[0, 0, 0]
    assert float(back) == pytest.approx(phase, rel=1e-12, abs=1e-12)


def test_two_pi_height_gives_exactly_two_pi_phase():
    lam = 532e-9
    h = two_pi_height_m("fused_silica", lam)
    assert h == pytest.approx(lam / (malitson_n(0.532) - 1), rel=1e-12)
    phase = height_to_phase(torch.tensor([[h]], dtype=torch.float64), "fused_silica", lam)
    assert float(phase) == pytest.approx(2 * math.pi, rel=1e-12)


def test_index_equal_to_ambient_raises_because_height_gives_no_phase():
    with pytest.raises(ValueError, match="ambient_index"):
        two_pi_height_m(Material.constant("matched", 1.33), 532e-9, ambient_index=1.33)


def test_height_to_phase_is_differentiable_and_rejects_complex_heights():
    h = torch.full((3, 3), 0.5e-6, requires_grad=True)
    height_to_phase(h, "tio2", (532e-9, 633e-9)).sum().backward()
    assert h.grad is not None and bool((h.grad > 0).all())
    with pytest.raises(ValueError, match="height_m"):
        height_to_phase(torch.zeros(2, 2, dtype=torch.complex64), "tio2", 532e-9)
