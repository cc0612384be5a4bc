"""A lab backend for real setups: requests and frames exchanged as files in a folder.

For each :meth:`FolderLab.capture` lightgen writes one request folder
``<root>/requests/<n:06d>/`` (moved into place atomically, so the setup never sees half
of it) holding

* ``slm.npy`` -- ``(B, C, S, S)`` float32 grey values in [0, 1] to show on the SLM, or
  ``injection.npy`` -- ``(B, 2, D)`` float32 (real, imaginary) values for the
  injection port (latent units, see :meth:`lightgen.chip.chip.LightGenChip.decode`);
* ``ports.json`` -- ``attenuation_db`` and ``phase_rad`` (``L x M`` lists) and
  ``laser_log_power_gain``.

The setup answers with ``<root>/frames/<n:06d>.npy``: ``(B, L, S, S)`` real frames in the
chip's relative irradiance units (before the gain/offset calibration), written to a
temporary name and renamed into place. lightgen waits up to ``timeout_s``; frames that
do not arrive raise :class:`~lightgen.lab.protocol.MissingFramesError`, frames of the
wrong shape or dtype the named errors of :func:`~lightgen.lab.protocol.check_frames`.
Arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lightgen._checks import require_positive
from lightgen._io import check_writable_dir
from lightgen.lab.protocol import (
    MissingFramesError,
    check_frames,
    check_injection,
    check_slm_images,
)


def _next_index(folder: Path) -> int:
    names = [p.name.split(".")[0] for p in folder.iterdir() if not p.name.startswith(".")]
    nums = [int(n) for n in names if n.isdigit()]
    return max(nums, default=0) + 1


class FolderLab:
    """A :class:`~lightgen.lab.protocol.Lab` that talks to a setup through ``root``."""

    def __init__(
        self,
        root: str | Path,
        slm_shape: tuple[int, int, int],
        frame_shape: tuple[int, int, int],
        port_shape: tuple[int, int],
        timeout_s: float = 60.0,
        poll_s: float = 0.02,
    ) -> None:
        self.root = check_writable_dir(root, "lab folder")
        self.requests = check_writable_dir(self.root / "requests", "lab folder")
        self.frames = check_writable_dir(self.root / "frames", "lab folder")
        self.slm_shape, self.frame_shape = tuple(slm_shape), tuple(frame_shape)
        self.port_shape = tuple(port_shape)
        self.latent_dim = port_shape[0] * port_shape[1]
        self.timeout_s = require_positive("timeout_s", timeout_s, "Wait e.g. 60 s for frames.")
        self.poll_s = poll_s
        self.frames_captured = 0
        self._ports = {
            "attenuation_db": np.zeros(port_shape).tolist(),
            "phase_rad": np.zeros(port_shape).tolist(),
            "laser_log_power_gain": 0.0,
        }
        self._queued: tuple[str, np.ndarray] | None = None
        self._index = max(_next_index(self.requests), _next_index(self.frames))

    def set_ports(self, attenuation_db, phase_rad, laser_log_power_gain: float) -> None:
        att = np.asarray(torch.as_tensor(attenuation_db).detach().cpu(), dtype=np.float64)
        ph = np.asarray(torch.as_tensor(phase_rad).detach().cpu(), dtype=np.float64)
        if att.shape != self.port_shape or ph.shape != self.port_shape:
            raise ValueError(
                f"ports have shapes {att.shape} and {ph.shape}; give {self.port_shape} "
                "(wavelengths, fibers)."
            )
        self._ports = {
            "attenuation_db": att.tolist(),
            "phase_rad": ph.tolist(),
            "laser_log_power_gain": float(laser_log_power_gain),
        }

    def show(self, images: torch.Tensor) -> None:
        self._queued = ("slm", check_slm_images(images, self.slm_shape).cpu().numpy())

    def inject(self, latents: torch.Tensor) -> None:
        z = check_injection(latents, self.latent_dim).cpu()
        self._queued = ("injection", torch.stack((z.real, z.imag), 1).float().numpy())

    def _write_request(self, n: int, kind: str, array: np.ndarray) -> Path:
        final = self.requests / f"{n:06d}"
        tmp = Path(tempfile.mkdtemp(dir=self.requests, prefix=f".{n:06d}."))
        try:
            np.save(tmp / f"{kind}.npy", array, allow_pickle=False)
            (tmp / "ports.json").write_text(json.dumps(self._ports), encoding="utf-8")
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def capture(self) -> torch.Tensor:
        if self._queued is None:
            raise ValueError("nothing to capture: call show() or inject() first.")
        kind, array = self._queued
        n = self._index
        self._index += 1
        self._write_request(n, kind, array)
        path = self.frames / f"{n:06d}.npy"
        deadline = time.monotonic() + self.timeout_s
        while not path.is_file():
            if time.monotonic() > deadline:
                raise MissingFramesError(
                    f"no frames arrived at {str(path)!r} within {self.timeout_s:g} s for request "
                    f"{str(self.requests / f'{n:06d}')!r}; check that the setup is running and "
                    "watches that folder, or raise --timeout-s. Nothing was lost: the request "
                    "stays in place and the run can be resumed."
                )
            time.sleep(self.poll_s)
        try:
            frames = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise MissingFramesError(
                f"frames file {str(path)!r} cannot be read as a .npy array ({e}); the setup "
                "must write it under a temporary name and rename it into place."
            ) from None
        frames = check_frames(frames, (array.shape[0], *self.frame_shape), str(path))
        self.frames_captured += frames.shape[0]
        return frames


def serve_requests(root: str | Path, lab, stop, poll_s: float = 0.01, corrupt=None) -> int:
    """Play the setup's part for a :class:`FolderLab` at ``root`` with another ``lab`` (e.g. a
    :class:`~lightgen.lab.simulated.SimulatedLab`) until ``stop()`` is true: answer every
    request folder with frames (a loopback for tests and for trying a setup's scripts).
    ``corrupt(n, frames)`` may alter or drop (return ``None``) frames. Returns the number
    of requests answered."""
    from lightgen._io import atomic_write

    root = Path(root)
    done: set[str] = set()
    answered = 0
    while not stop():
        for req in sorted((root / "requests").glob("[0-9]*")):
            if req.name in done:
                continue
            done.add(req.name)
            ports = json.loads((req / "ports.json").read_text(encoding="utf-8"))
            lab.set_ports(
                torch.tensor(ports["attenuation_db"]),
                torch.tensor(ports["phase_rad"]),
                ports["laser_log_power_gain"],
            )
            if (req / "slm.npy").is_file():
                lab.show(torch.from_numpy(np.load(req / "slm.npy", allow_pickle=False)))
            else:
                ri = torch.from_numpy(np.load(req / "injection.npy", allow_pickle=False))
                lab.inject(torch.complex(ri[:, 0], ri[:, 1]))
            frames = lab.capture().numpy()
            if corrupt is not None:
                frames = corrupt(int(req.name), frames)
            if frames is not None:
                out = root / "frames" / f"{req.name}.npy"
                atomic_write(out, lambda t, f=frames: np.save(t, f, allow_pickle=False))
            answered += 1
        time.sleep(poll_s)
    return answered
