"""The error model and the chip as fabricated: identities the simulation must keep."""

import math

import pytest
import torch
from pydantic import ValidationError

from lightgen.chip.fabrication import FabricationModel
from lightgen.lab.errors import (
    FABRICATION_FAMILIES,
    FAMILIES,
    ChipErrors,
    ErrorModelOutOfRangeError,
    LabErrorModel,
    displace,
    installed,
    zernike_modes,
)
from lightgen.lab.twin import raw_frames
from lightgen.optics.grid import Grid


def test_zero_errors_leave_the_chip_exactly_as_designed(tiny_system, digits):
    chip = tiny_system.model.optical_chip
    twin = ChipErrors(chip, LabErrorModel(fabrication=FabricationModel()))  # all u = 0
    with torch.no_grad():
        want = chip.decode(chip.encode(digits))
        gen = chip.generators[0]
        got = raw_frames(chip, twin, images=digits)
        got = got * gen.camera_log_gain.exp().view(1, -1, 1, 1) + gen.camera_offset.view(
            1, -1, 1, 1
        )
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_a_new_fabrication_redraws_the_chip_families_and_keeps_the_setup(tiny_system):
    chip = tiny_system.model.optical_chip
    first = ChipErrors.draw(chip, LabErrorModel(seed=1))
    again = ChipErrors.draw(chip, LabErrorModel(seed=1, fabrication_seed=7))
    other = ChipErrors.draw(chip, LabErrorModel(seed=1, fabrication_seed=8))
    assert set(FABRICATION_FAMILIES) == {
        "layer_shift",
        "layer_rotation",
        "layer_distance",
        "height_scale",
    }
    for f in FAMILIES:
        same = torch.equal(first.value(f), again.value(f))
        assert same == (f not in FABRICATION_FAMILIES), f  # setup kept, chip drawn again
        if f in FABRICATION_FAMILIES:
            assert not torch.equal(again.value(f), other.value(f))


def test_installed_errors_are_removed_on_exit_even_after_an_error(tiny_system, digits):
    chip = tiny_system.model.optical_chip
    errors = ChipErrors.draw(chip, LabErrorModel(seed=3))
    layers_before = [id(m) for m in chip.encoder.stack.layers]
    loss_before = chip.fibers.loss_db.clone()
    with pytest.raises(RuntimeError), installed(chip, errors):
        assert id(chip.encoder.stack.layers[0]) not in layers_before
        raise RuntimeError("boom")
    assert [id(m) for m in chip.encoder.stack.layers] == layers_before
    assert torch.equal(chip.fibers.loss_db, loss_before)


def test_hidden_errors_are_seeded_and_change_the_frames(tiny_system, digits):
    chip = tiny_system.model.optical_chip
    a = ChipErrors.draw(chip, LabErrorModel(seed=1))
    b = ChipErrors.draw(chip, LabErrorModel(seed=1))
    c = ChipErrors.draw(chip, LabErrorModel(seed=2))
    for f in FAMILIES:
        assert torch.equal(a.value(f), b.value(f))
    assert not torch.equal(a.value("layer_shift"), c.value("layer_shift"))
    assert (a.value("fiber_loss") >= 0).all()  # a passive fiber only loses
    with torch.no_grad():
        fa, fc = raw_frames(chip, a, images=digits), raw_frames(chip, c, images=digits)
    assert (fa - fc).abs().max() > 1e-3


def test_an_axial_displacement_and_its_return_are_the_identity():
    grid = Grid((32, 32), 8e-6, (532e-9, 633e-9))
    g = torch.Generator().manual_seed(0)
    field = torch.randn(2, 2, 32, 32, generator=g, dtype=torch.complex128)
    d = torch.tensor(30e-6, dtype=torch.float64)
    back = displace(displace(field, grid, d), grid, -d)
    torch.testing.assert_close(back, field)
    # power is conserved (unitary for propagating waves, nothing evanescent at this pitch)
    out = displace(field, grid, d)
    torch.testing.assert_close(out.abs().square().sum(), field.abs().square().sum())


def test_a_displaced_plane_wave_gains_the_closed_form_phase():
    grid = Grid((32, 32), 8e-6, (633e-9,))
    _, x = grid.meshgrid()
    fx = 3 / (32 * 8e-6)  # a tilted plane wave on the grid's frequency lattice
    field = torch.polar(torch.ones_like(x), 2 * math.pi * fx * x)[None, None].to(torch.complex128)
    d = torch.tensor(40e-6, dtype=torch.float64)
    out = displace(field, grid, d)
    lam = 633e-9
    want = 2 * math.pi * d * (math.sqrt(1 / lam**2 - fx**2) - 1 / lam)  # piston removed
    ratio = (out / field)[0, 0]
    torch.testing.assert_close(ratio.angle(), torch.full_like(ratio.real, float(want)))


def test_the_axial_displacement_is_differentiable_in_distance():
    grid = Grid((16, 16), 8e-6, (633e-9,))
    field = torch.zeros(1, 1, 16, 16, dtype=torch.complex128)
    field[..., 8, 8] = 1
    d = torch.tensor(20e-6, dtype=torch.float64, requires_grad=True)
    displace(field, grid, d).abs().square()[..., 8, 8].sum().backward()
    assert d.grad is not None and d.grad.abs() > 0


def test_zernike_modes_have_unit_rms_on_the_disc():
    grid = Grid((256, 256), 1e-6, (633e-9,))
    z = zernike_modes(grid)
    y, x = grid.meshgrid()
    disc = (y**2 + x**2).sqrt() <= 128e-6
    rms = z[:, disc].square().mean(1).sqrt()
    torch.testing.assert_close(rms, torch.ones(5, dtype=rms.dtype), rtol=0.02, atol=0)


def test_an_error_model_beyond_what_calibration_can_fix_is_refused(tiny_system):
    chip = tiny_system.model.optical_chip
    big = LabErrorModel(fabrication=FabricationModel(shift_std_m=1e-3))
    with pytest.raises(ErrorModelOutOfRangeError, match="shift_std_m"):
        big.check_for(chip)
    with pytest.raises(ValidationError):
        LabErrorModel(camera_noise_std=-0.1)
    with pytest.raises(ValidationError):
        LabErrorModel(not_an_error=1)


def test_no_error_model_zeroes_every_spread_and_fabricates_perfectly():
    m = LabErrorModel.none()
    floats = {k: v for k, v in m.model_dump().items() if isinstance(v, float)}
    assert len(floats) == 8 and set(floats.values()) == {0.0}
    assert m.fabrication == FabricationModel() and m.seed == 0


def test_reset_sets_only_the_named_families_to_the_design(tiny_system):
    from lightgen.lab.errors import FABRICATION_FAMILIES, FAMILIES, ChipErrors, LabErrorModel

    chip = tiny_system.model.optical_chip
    drawn = ChipErrors.draw(chip, LabErrorModel(seed=3))
    errors = ChipErrors(chip, LabErrorModel(seed=3))
    errors.load_state_dict(drawn.state_dict())
    errors.reset(FABRICATION_FAMILIES)
    for name in FAMILIES:
        got, was = getattr(errors, name), getattr(drawn, name)
        if name in FABRICATION_FAMILIES:
            assert not got.any() and was.any(), name
        else:
            assert torch.equal(got, was), name
