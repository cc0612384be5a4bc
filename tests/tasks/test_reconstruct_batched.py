"""tasks.generate.reconstruct_batched: reconstruct in batches, on the CPU, inputs' channels."""

import torch

from lightgen.tasks.generate import reconstruct, reconstruct_batched
from lightgen.train.config import TrainConfig
from lightgen.train.system import BOGTSystem


def test_batches_give_the_same_images_as_one_call():
    torch.manual_seed(0)
    system = BOGTSystem(TrainConfig(preset="tiny")).eval()
    images = torch.rand(7, 1, 12, 12)
    whole = reconstruct(system, images)
    parts = reconstruct_batched(system, images, batch_size=3)
    assert parts.shape == (7, 1, 12, 12) and parts.device.type == "cpu"
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)


def test_grey_inputs_of_a_colour_chip_come_back_grey():
    torch.manual_seed(0)
    cfg = TrainConfig(
        preset="tiny", chip={"wavelengths_m": (640e-9, 532e-9, 450e-9), "image_channels": 3}
    )
    system = BOGTSystem(cfg).eval()
    grey = torch.rand(2, 1, 12, 12)
    out = reconstruct_batched(system, grey)
    assert out.shape == (2, 1, 12, 12)
    torch.testing.assert_close(out, reconstruct(system, grey).mean(1, keepdim=True))
