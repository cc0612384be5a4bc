"""What lightgen needs from a physical setup, and the checks on what comes back.

A :class:`Lab` shows images on the SLM (the fibers then carry the light the encoder
couples) or drives the fiber array's injection port with chosen complex values, sets
the fiber ports (attenuation, phase) and the laser power, and captures one camera frame
per image or latent. Frames are raw: the camera's counts scaled to the chip's relative
irradiance units (1.0 = the generator's power spread evenly over the camera), before the
chip's gain/offset calibration, which lightgen applies itself (:func:`calibrated_images`).

Two backends: :class:`lightgen.lab.simulated.SimulatedLab` (a copy of the chip with
hidden errors) and :class:`lightgen.lab.folder.FolderLab` (files in a folder, for a
real setup).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from lightgen.chip.chip import LightGenChip


class FrameShapeError(ValueError):
    """Frames whose shape is not ``(batch, wavelengths, S, S)`` of this chip."""


class FrameDtypeError(ValueError):
    """Frames that are not real floating-point numbers."""


class FrameValueError(ValueError):
    """Frames with NaN or infinite values."""


class MissingFramesError(ValueError):
    """Frames that did not arrive in time."""


class ChipMismatchError(ValueError):
    """A lab state or checkpoint made for another chip."""


class UnsupportedChipError(ValueError):
    """A model the lab cannot drive (not the all-optical chip, or digital routing)."""


@runtime_checkable
class Lab(Protocol):
    """A physical setup running one chip (see the module doc)."""

    #: ``(C, S, S)``: images :meth:`show` takes (grey ``(1, S, S)`` also drives colour chips)
    slm_shape: tuple[int, int, int]
    #: ``(L, S, S)``: one frame per image or latent
    frame_shape: tuple[int, int, int]
    #: ``(L, M)``: one attenuator and phase shifter per fiber and wavelength
    port_shape: tuple[int, int]
    #: latent dimensions the injection port drives (``L * M``)
    latent_dim: int
    #: frames captured so far (the lab's time budget)
    frames_captured: int

    def set_ports(
        self, attenuation_db: torch.Tensor, phase_rad: torch.Tensor, laser_log_power_gain: float
    ) -> None:
        """Set every fiber port ``(L, M)`` (dB >= 0, rad) and the laser power (ln of the
        factor on the design's ``input_power_w``)."""
        ...

    def show(self, images: torch.Tensor) -> None:
        """Queue ``(B, C, S, S)`` images in [0, 1] for the SLM (injection port off)."""
        ...

    def inject(self, latents: torch.Tensor) -> None:
        """Queue ``(B, D)`` complex latents for the injection port (SLM dark)."""
        ...

    def capture(self) -> torch.Tensor:
        """The raw frames ``(B, L, S, S)`` float32 of what was queued last."""
        ...


def check_slm_images(images: torch.Tensor, slm_shape: tuple[int, int, int]) -> torch.Tensor:
    """``images`` (batch, 1 or C, S, S) of grey values in [0, 1] as float32, or a named error.

    One check for every backend, so a setup refuses what the simulated lab refuses."""
    c, s, _ = slm_shape
    if images.ndim != 4 or images.shape[1] not in (1, c) or images.shape[2:] != (s, s):
        raise ValueError(
            f"SLM images have shape {tuple(images.shape)}; this chip takes (batch, {c}, {s}, {s})."
        )
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("SLM images must be finite grey values in [0, 1]; clip them.")
    return images.detach().float()


def check_injection(latents: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """Complex ``latents`` of shape (batch, latent_dim), detached, or a named error."""
    if latents.ndim != 2 or latents.shape[1] != latent_dim or not latents.is_complex():
        raise ValueError(
            f"injection latents have shape {tuple(latents.shape)} ({latents.dtype}); give "
            f"complex (batch, {latent_dim})."
        )
    return latents.detach()


def check_frames(frames, expected: tuple[int, ...], source: str) -> torch.Tensor:
    """``frames`` (tensor or array) as a float32 tensor of shape ``expected``, or a named error."""
    if isinstance(frames, np.ndarray):
        if frames.dtype.kind not in "f" and frames.dtype.kind not in "iu":
            raise FrameDtypeError(
                f"frames from {source} have dtype {frames.dtype}; the camera must deliver real "
                "numbers (float32, or integer counts scaled to relative irradiance)."
            )
        frames = torch.from_numpy(np.ascontiguousarray(frames).astype(np.float32))
    if not isinstance(frames, torch.Tensor):
        raise FrameDtypeError(f"frames from {source} are a {type(frames).__name__}, not an array.")
    if frames.is_complex() or frames.dtype == torch.bool:
        raise FrameDtypeError(
            f"frames from {source} have dtype {frames.dtype}; a camera measures real "
            "intensities: deliver float32."
        )
    if tuple(frames.shape) != tuple(expected):
        raise FrameShapeError(
            f"frames from {source} have shape {tuple(frames.shape)}; this chip expects "
            f"{tuple(expected)} (batch, wavelengths, S, S). Check the camera crop and binning."
        )
    frames = frames.to(torch.float32)
    if not torch.isfinite(frames).all():
        raise FrameValueError(
            f"frames from {source} contain NaN or infinite values; re-capture them."
        )
    return frames


def check_supported(system) -> LightGenChip:
    """The system's all-optical chip, or :class:`UnsupportedChipError` naming why not."""
    chip = system.model.optical_chip
    if chip is None:
        raise UnsupportedChipError(
            "the lab drives the all-optical chip only; this checkpoint is a "
            "hybrid or digital model. Train with --model chip."
        )
    if system.n_conditions or system.reference_amplitude or len(chip.generators) != 1:
        raise UnsupportedChipError(
            "the lab commands support chips with one generator and no condition or reference "
            "fibers (their routing and injected conditions need per-image electronics the "
            "lab protocol does not drive yet)."
        )
    return chip


def calibrated_images(chip: LightGenChip, frames: torch.Tensor) -> torch.Tensor:
    """Raw frames -> images by the chip's camera gain/offset calibration (host side)."""
    g = chip.generators[0]
    gain = g.camera_log_gain.exp().view(1, -1, 1, 1)
    return frames * gain.to(frames) + g.camera_offset.view(1, -1, 1, 1).to(frames)
