"""Twin calibration recovers hidden errors; physics-aware training takes the lab's values
and the twin's gradients."""

import copy

import pytest
import torch

from lightgen.chip.fabrication import FabricationModel
from lightgen.lab.calibrate import Calibrator, check_families, measure, recovery
from lightgen.lab.errors import ChipErrors, LabErrorModel
from lightgen.lab.pat import PhysicsAwareTrainer, in_place_parameters
from lightgen.lab.simulated import SimulatedLab
from lightgen.lab.twin import raw_frames

# only errors of the camera and the fibers' phases: a well-posed, quick fit
SMALL = LabErrorModel(
    fabrication=FabricationModel(),
    height_scale_std=0,
    aberration_rms_rad=0,
    fiber_position_std_m=0,
    fiber_loss_std_db=0,
    fiber_phase_std_rad=0.5,
    camera_gain_std=0.1,
    camera_offset_std=0.02,
    camera_noise_std=0.0,
    seed=2,
)


def test_calibration_recovers_hidden_camera_and_fiber_errors(tiny_system):
    chip = tiny_system.model.optical_chip
    lab = SimulatedLab(chip, SMALL)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(32, 1, 12, 12, generator=g)
    z = tiny_system.prior.sample(32, generator=g)
    data = measure(lab, chip, images, z)
    assert data.n_frames == 64 and lab.frames_captured == 64
    twin = ChipErrors(chip, SMALL)
    cal = Calibrator(chip, twin, data, ["fiber_phase", "camera_gain", "camera_offset"], lr=0.1)
    before = cal.frame_rmse()
    cal.run(150)
    assert cal.frame_rmse() < 0.1 * before
    rec = recovery(twin, lab.reveal_hidden_errors())
    for fam in ("fiber_phase", "camera_gain", "camera_offset"):
        assert rec[fam]["recovered_fraction"] > 0.8, (fam, rec[fam])


def test_unknown_families_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="layer_shift"):
        check_families(["tilt"])


def test_the_straight_through_pass_has_the_labs_value_and_the_twins_gradient(tiny_system, digits):
    system = copy.deepcopy(tiny_system)
    chip = system.model.optical_chip
    lab = SimulatedLab(chip, LabErrorModel(seed=1, camera_noise_std=0.0))  # repeatable frames
    twin = ChipErrors(chip, LabErrorModel())
    trainer = PhysicsAwareTrainer(system, twin, lab, digits, mode="in-place")
    frames, _ = trainer._frames(digits)
    lab.show(digits)
    torch.testing.assert_close(frames.detach(), lab.capture())
    frames.sum().backward()
    got = chip.port_phase_rad.grad.clone()
    assert got.abs().sum() > 0
    chip.port_phase_rad.grad = None
    raw_frames(chip, twin, images=digits).sum().backward()
    torch.testing.assert_close(got, chip.port_phase_rad.grad)


def test_in_place_training_moves_only_what_a_fabricated_chip_allows(tiny_system, digits):
    system = copy.deepcopy(tiny_system)
    chip = system.model.optical_chip
    heights = [p.detach().clone() for p in chip.encoder.stack.layers.parameters()]
    lab = SimulatedLab(chip, LabErrorModel(seed=1))
    twin = ChipErrors(chip, LabErrorModel())
    trainer = PhysicsAwareTrainer(system, twin, lab, digits, mode="in-place", lr=0.05, batch=8)
    trainer.run(3)
    assert lab.frames_captured == 24
    for a, b in zip(heights, chip.encoder.stack.layers.parameters(), strict=True):
        assert torch.equal(a, b)  # etched heights never change in place
    assert (chip.port_attenuation_db >= 0).all()  # attenuators only attenuate
    assert any(p.grad is not None for p in in_place_parameters(system))
    assert torch.equal(
        chip.laser_log_power_gain, tiny_system.model.optical_chip.laser_log_power_gain
    )
    assert torch.equal(system.model.log_var, tiny_system.model.log_var)
    assert chip.port_phase_rad.abs().sum() > 0


def test_refabrication_trains_the_heights_without_lab_frames(tiny_system, digits):
    system = copy.deepcopy(tiny_system)
    chip = system.model.optical_chip
    before = chip.encoder.stack.layers[0].raw_height.detach().clone()
    twin = ChipErrors(chip, LabErrorModel())
    PhysicsAwareTrainer(system, twin, None, digits, mode="refabricate", batch=8).run(2)
    assert not torch.equal(before, chip.encoder.stack.layers[0].raw_height)
    with pytest.raises(ValueError, match="needs a lab"):
        PhysicsAwareTrainer(system, twin, None, digits, mode="in-place")


def test_redesign_for_refabrication_starts_from_the_labs_frames(tiny_system, digits):
    """The residual-corrected forward equals the lab's frames while the heights are the
    fabricated ones, and carries the twin's gradient to the heights."""
    system = copy.deepcopy(tiny_system)
    chip = system.model.optical_chip
    lab = SimulatedLab(chip, LabErrorModel(seed=1, camera_noise_std=0.0))
    twin = ChipErrors(chip, LabErrorModel())
    trainer = PhysicsAwareTrainer(system, twin, lab, digits, mode="refabricate")
    frames, _ = trainer._frames(digits)
    lab.show(digits)
    torch.testing.assert_close(frames.detach(), lab.capture(), rtol=1e-4, atol=1e-5)
    frames.sum().backward()
    assert chip.generators[0].stack.layers[0].raw_height.grad.abs().sum() > 0


def test_slm_weights_start_at_the_design_and_only_attenuate(tiny_system, digits):
    from lightgen.lab.pat import SlmWeights

    slm = SlmWeights((1, 12, 12))
    assert torch.equal(slm(digits), digits)  # the design's SLM image
    system = copy.deepcopy(tiny_system)
    lab = SimulatedLab(system.model.optical_chip, LabErrorModel(seed=1))
    twin = ChipErrors(system.model.optical_chip, LabErrorModel())
    PhysicsAwareTrainer(system, twin, lab, digits, lr=0.5, batch=8, slm=slm).run(3)
    w = slm.weight()
    assert (w >= 0).all() and (w <= 1).all() and (w < 1).any()


def test_a_resumed_redesign_takes_the_residual_of_the_chip_the_lab_holds(tiny_system, digits):
    """After some re-design steps the system's heights are new; the residual must still be
    measured against the heights in the lab (the design here)."""
    system = copy.deepcopy(tiny_system)
    chip = system.model.optical_chip
    lab = SimulatedLab(chip, LabErrorModel(seed=1, camera_noise_std=0.0))
    with torch.no_grad():
        chip.generators[0].stack.layers[0].raw_height.add_(0.5)  # a re-design in progress
    twin = ChipErrors(chip, LabErrorModel())
    design = tiny_system.model.optical_chip
    trainer = PhysicsAwareTrainer(system, twin, lab, digits, mode="refabricate", fabricated=design)
    got = trainer.fabricated.generators[0].stack.layers[0].raw_height
    assert torch.equal(got, design.generators[0].stack.layers[0].raw_height)


def test_robust_redesign_draws_the_chip_afresh_each_step_and_keeps_the_setup(
    tiny_system, digits, monkeypatch
):
    """--robust-fabrication: every step the twin sees new placement and etch-depth errors
    (FABRICATION_FAMILIES, N(0, 1)) and the calibration's setup families; no lab frames."""
    from lightgen.lab import pat
    from lightgen.lab.errors import FABRICATION_FAMILIES, FAMILIES

    system = copy.deepcopy(tiny_system)
    chip = system.model.optical_chip
    lab = SimulatedLab(chip, LabErrorModel(seed=1))
    twin = ChipErrors.draw(chip, LabErrorModel(seed=5))  # stands in for a calibrated twin
    calibrated = {f: getattr(twin, f).detach().clone() for f in FAMILIES}
    seen = []
    real = pat.raw_frames

    def spy(chip_, errors, **kw):
        seen.append({f: getattr(errors, f).detach().clone() for f in FAMILIES})
        return real(chip_, errors, **kw)

    monkeypatch.setattr(pat, "raw_frames", spy)
    before = chip.encoder.stack.layers[0].raw_height.detach().clone()
    trainer = PhysicsAwareTrainer(
        system, twin, lab, digits, mode="refabricate", batch=4, robust_fabrication=True
    )
    trainer.run(2)
    assert len(seen) == 2 and lab.frames_captured == 0  # the twin alone, no lab residual
    setup = [f for f in FAMILIES if f not in FABRICATION_FAMILIES]
    for f in setup:  # the setup exactly as calibrated, every step
        assert torch.equal(seen[0][f], calibrated[f]) and torch.equal(seen[1][f], calibrated[f])
    for f in FABRICATION_FAMILIES:  # a new chip every step, not the calibrated one
        assert not torch.equal(seen[0][f], seen[1][f]), f
        assert not torch.equal(seen[0][f], calibrated[f]), f
    for f in FAMILIES:  # the calibrated twin itself is untouched
        assert torch.equal(getattr(twin, f), calibrated[f])
    assert not torch.equal(before, chip.encoder.stack.layers[0].raw_height)
    # draws of N(0, 1): many of them have unit spread
    u = torch.cat([trainer.draw_chip().layer_shift.clone().flatten() for _ in range(200)])
    assert 0.9 < float(u.std()) < 1.1 and abs(float(u.mean())) < 0.1


def test_robust_redesign_needs_the_refabricate_mode(tiny_system, digits):
    twin = ChipErrors(tiny_system.model.optical_chip, LabErrorModel())
    with pytest.raises(ValueError, match="--mode refabricate"):
        PhysicsAwareTrainer(tiny_system, twin, None, digits, mode="twin", robust_fabrication=True)
