"""The folder backend, tested by a loopback thread that plays the setup's part."""

import threading

import numpy as np
import pytest
import torch

from lightgen.lab.errors import LabErrorModel
from lightgen.lab.folder import FolderLab, serve_requests
from lightgen.lab.protocol import FrameDtypeError, FrameShapeError, MissingFramesError
from lightgen.lab.simulated import SimulatedLab


def _folder_lab(chip, root, timeout_s=20.0):
    cfg = chip.config
    s = cfg.image_size
    return FolderLab(
        root,
        (cfg.image_channels, s, s),
        (cfg.n_wavelengths, s, s),
        (cfg.n_wavelengths, cfg.n_fibers),
        timeout_s=timeout_s,
    )


class _Loopback:
    def __init__(self, root, lab, corrupt=None):
        self.done = False
        self.thread = threading.Thread(
            target=serve_requests, args=(root, lab, lambda: self.done), kwargs={"corrupt": corrupt}
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done = True
        self.thread.join(10)


def test_frames_through_the_folder_equal_the_labs_own(tiny_system, digits, tmp_path):
    chip = tiny_system.model.optical_chip
    model = LabErrorModel(seed=5, camera_noise_std=0.0)
    direct = SimulatedLab(chip, model)
    direct.set_ports(torch.full(direct.port_shape, 0.5), torch.zeros(direct.port_shape), 0.1)
    direct.show(digits)
    want = direct.capture()
    z = tiny_system.prior.sample(3, generator=torch.Generator().manual_seed(0))
    direct.inject(z)
    want_z = direct.capture()
    folder = _folder_lab(chip, tmp_path)
    with _Loopback(tmp_path, SimulatedLab(chip, model)):
        folder.set_ports(torch.full(folder.port_shape, 0.5), torch.zeros(folder.port_shape), 0.1)
        folder.show(digits)
        got = folder.capture()
        folder.inject(z)
        got_z = folder.capture()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_z, want_z, rtol=1e-5, atol=1e-6)
    assert folder.frames_captured == len(digits) + 3
    assert sorted(p.name for p in (tmp_path / "requests").iterdir()) == ["000001", "000002"]
    # a new FolderLab on the same folder continues the numbering: no request is overwritten
    assert _folder_lab(chip, tmp_path)._index == 3


def test_missing_frames_time_out_with_a_named_error_and_the_request_stays(
    tiny_system, digits, tmp_path
):
    folder = _folder_lab(tiny_system.model.optical_chip, tmp_path, timeout_s=0.2)
    folder.show(digits)
    with pytest.raises(MissingFramesError, match="no frames arrived"):
        folder.capture()
    assert (tmp_path / "requests" / "000001" / "slm.npy").is_file()


@pytest.mark.parametrize(
    "corrupt, error, needle",
    [
        (lambda n, f: f[:, :, :5], FrameShapeError, "shape"),
        (lambda n, f: f.astype(np.complex64), FrameDtypeError, "complex"),
        (lambda n, f: f.astype(bool), FrameDtypeError, "dtype bool"),
    ],
)
def test_frames_of_the_wrong_shape_or_dtype_are_named(
    tiny_system, digits, tmp_path, corrupt, error, needle
):
    chip = tiny_system.model.optical_chip
    folder = _folder_lab(chip, tmp_path)
    with _Loopback(tmp_path, SimulatedLab(chip, LabErrorModel()), corrupt):
        folder.show(digits)
        with pytest.raises(error, match=needle):
            folder.capture()


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_both_backends_refuse_the_same_out_of_range_slm_images(tiny_system, tmp_path, bad):
    # the folder backend used to clip silently what the simulated lab refused
    chip = tiny_system.model.optical_chip
    s = chip.config.image_size
    images = torch.full((1, chip.config.image_channels, s, s), 0.5)
    images[0, 0, 0, 0] = bad
    for lab in (_folder_lab(chip, tmp_path / "lab"), SimulatedLab(chip, LabErrorModel(seed=1))):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            lab.show(images)
