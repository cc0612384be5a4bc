"""The simulated lab: a control without errors, its protocol checks, re-fabrication."""

import pytest
import torch

from lightgen.lab.errors import LabErrorModel
from lightgen.lab.protocol import Lab, calibrated_images
from lightgen.lab.simulated import SimulatedLab


def test_a_lab_without_errors_measures_what_the_design_computes(tiny_system, digits):
    chip = tiny_system.model.optical_chip
    lab = SimulatedLab(chip, LabErrorModel.none())
    assert isinstance(lab, Lab)
    lab.show(digits)
    got = calibrated_images(chip, lab.capture())
    with torch.no_grad():
        want = chip.decode(chip.encode(digits))
    torch.testing.assert_close(got, want.float(), rtol=1e-4, atol=1e-5)
    assert lab.frames_captured == len(digits)
    z = tiny_system.prior.sample(5, generator=torch.Generator().manual_seed(0))
    lab.inject(z)
    with torch.no_grad():
        torch.testing.assert_close(
            calibrated_images(chip, lab.capture()), chip.decode(z).float(), rtol=1e-4, atol=1e-5
        )


def test_the_fabricated_lab_differs_from_the_design_and_its_noise_is_seeded(tiny_system, digits):
    chip = tiny_system.model.optical_chip
    design = SimulatedLab(chip, LabErrorModel.none())
    design.show(digits)
    clean = design.capture()
    frames = []
    for _ in range(2):
        lab = SimulatedLab(chip, LabErrorModel(seed=4))
        lab.show(digits)
        frames.append(lab.capture())
    assert torch.equal(frames[0], frames[1])
    assert (frames[0] - clean).square().mean().sqrt() > 0.01


def test_the_lab_copy_is_independent_of_the_users_chip(tiny_system, digits):
    chip = tiny_system.model.optical_chip
    lab = SimulatedLab(chip, LabErrorModel.none())
    lab.show(digits)
    before = lab.capture()
    with torch.no_grad():
        chip.encoder.stack.layers[0].raw_height.add_(1.0)
    lab.show(digits)
    assert torch.equal(lab.capture(), before)
    lab.refabricate(chip)  # now the lab carries the changed heights
    lab.show(digits)
    assert not torch.equal(lab.capture(), before)


def test_bad_requests_to_the_lab_are_named(tiny_system, digits):
    lab = SimulatedLab(tiny_system.model.optical_chip, LabErrorModel())
    with pytest.raises(ValueError, match="nothing to capture"):
        lab.capture()
    with pytest.raises(ValueError, match="SLM images have shape"):
        lab.show(digits[:, :, :8])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        lab.show(digits * 2)
    with pytest.raises(ValueError, match="complex"):
        lab.inject(torch.zeros(2, lab.latent_dim))
    with pytest.raises(ValueError, match="cannot amplify"):
        lab.set_ports(-torch.ones(lab.port_shape), torch.zeros(lab.port_shape), 0.0)
    with pytest.raises(ValueError, match="shape"):
        lab.set_ports(torch.zeros(3), torch.zeros(lab.port_shape), 0.0)
