r"""Twin calibration: fit the twin's error values to frames measured on calibration inputs.

The lab shows ``K`` calibration images on the SLM and drives ``K'`` latents through the
injection port (drawn from the chip's prior); the twin (:func:`lightgen.lab.twin.raw_frames`)
predicts the same frames. Gradient descent (Adam) through the simulator finds the
maximum a-posteriori errors: the frames' squared error over :math:`2\sigma^2` (``sigma``
the camera noise of the stated error model) plus the Gaussian prior :math:`|u|^2/2` on
the errors in units of their stated standard deviations
(:class:`~lightgen.lab.errors.LabErrorModel`). Both paths are needed: SLM frames see the
encoder and fibers, injected frames pin the generator and camera on their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lightgen._io import atomic_write
from lightgen.chip.chip import LightGenChip
from lightgen.lab.errors import FAMILIES, ChipErrors
from lightgen.lab.protocol import Lab, check_frames
from lightgen.lab.twin import raw_frames


@dataclass
class CalibrationSet:
    """Calibration inputs and the frames the lab captured for them."""

    images: torch.Tensor  # (K, C, S, S) in [0, 1]
    image_frames: torch.Tensor  # (K, L, S, S)
    latents: torch.Tensor  # (K', D) complex
    latent_frames: torch.Tensor  # (K', L, S, S)

    @property
    def n_frames(self) -> int:
        return self.image_frames.shape[0] + self.latent_frames.shape[0]

    def save(self, path: str | Path) -> Path:
        tensors = {
            "images": self.images.float().contiguous(),
            "image_frames": self.image_frames.float().contiguous(),
            "latents_re": self.latents.real.float().contiguous(),
            "latents_im": self.latents.imag.float().contiguous(),
            "latent_frames": self.latent_frames.float().contiguous(),
        }
        return atomic_write(path, lambda t: save_file(tensors, str(t)))

    @classmethod
    def load(cls, path: str | Path, frame_shape: tuple[int, int, int]) -> CalibrationSet:
        p = Path(path)
        if not p.is_file():
            raise ValueError(
                f"calibration frames {str(p)!r} not found; run `lightgen lab calibrate` first."
            )
        t = load_file(str(p))
        imgs = t["images"]
        data = cls(
            imgs,
            check_frames(t["image_frames"], (imgs.shape[0], *frame_shape), str(p)),
            torch.complex(t["latents_re"], t["latents_im"]),
            check_frames(t["latent_frames"], (t["latents_re"].shape[0], *frame_shape), str(p)),
        )
        return data


def _ports_of(chip: LightGenChip):
    return (
        chip.port_attenuation_db.detach().cpu(),
        chip.port_phase_rad.detach().cpu(),
        float(chip.laser_log_power_gain.detach()),
    )


def set_lab_ports(lab: Lab, chip: LightGenChip) -> None:
    """Send the chip's in-place settings (fiber ports, laser power) to the lab."""
    lab.set_ports(*_ports_of(chip))


@torch.no_grad()
def measure(
    lab: Lab, chip: LightGenChip, images: torch.Tensor, latents: torch.Tensor, batch: int = 64
) -> CalibrationSet:
    """Capture the lab's frames for calibration ``images`` (SLM) and ``latents`` (injection)."""
    set_lab_ports(lab, chip)
    img_frames, lat_frames = [], []
    for i in range(0, images.shape[0], batch):
        lab.show(images[i : i + batch])
        img_frames.append(lab.capture())
    for i in range(0, latents.shape[0], batch):
        lab.inject(latents[i : i + batch])
        lat_frames.append(lab.capture())
    return CalibrationSet(images, torch.cat(img_frames), latents, torch.cat(lat_frames))


def check_families(families: Sequence[str]) -> tuple[str, ...]:
    bad = [f for f in families if f not in FAMILIES]
    if bad or not families:
        raise ValueError(
            f"calibration families {list(families)} are not all known; choose from "
            f"{', '.join(FAMILIES)}."
        )
    return tuple(families)


class Calibrator:
    """Adam on the twin's errors (only ``families``), one mini-batch per :meth:`step`."""

    def __init__(
        self,
        chip: LightGenChip,
        twin: ChipErrors,
        data: CalibrationSet,
        families: Sequence[str] = FAMILIES,
        lr: float = 0.05,
        batch: int = 32,
        seed: int = 0,
    ) -> None:
        self.chip, self.twin, self.data = chip, twin, data
        self.families = check_families(families)
        for name in FAMILIES:
            getattr(twin, name).requires_grad_(name in self.families)
        self.optimizer = torch.optim.Adam([getattr(twin, f) for f in self.families], lr=lr)
        self.batch = batch
        self.generator = torch.Generator().manual_seed(seed)
        self.sigma = max(twin.model.camera_noise_std, 1e-3)
        self.step_count = 0

    def _pick(self, n: int) -> torch.Tensor:
        return torch.randint(0, n, (min(self.batch, n),), generator=self.generator)

    def loss(self, idx_img: torch.Tensor, idx_lat: torch.Tensor) -> torch.Tensor:
        """Per-pixel MAP objective on one mini-batch of both paths."""
        d = self.data
        pred_i = raw_frames(self.chip, self.twin, images=d.images[idx_img])
        pred_l = raw_frames(self.chip, self.twin, latents=d.latents[idx_lat])
        sse = (pred_i - d.image_frames[idx_img]).square().mean() + (
            pred_l - d.latent_frames[idx_lat]
        ).square().mean()
        n_pix = d.n_frames * math.prod(d.image_frames.shape[1:])
        prior = sum(getattr(self.twin, f).square().sum() for f in self.families)
        return sse / (2 * self.sigma**2) + 0.5 * prior / n_pix

    def step(self) -> float:
        d = self.data
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self._pick(d.images.shape[0]), self._pick(d.latents.shape[0]))
        loss.backward()
        self.optimizer.step()
        self.step_count += 1
        return float(loss.detach())

    @torch.no_grad()
    def frame_rmse(self, n: int = 128) -> float:
        """RMS frame error of the twin on the first ``n`` calibration frames of each path."""
        d = self.data
        i = torch.arange(min(n, d.images.shape[0]))
        j = torch.arange(min(n, d.latents.shape[0]))
        a = raw_frames(self.chip, self.twin, images=d.images[i]) - d.image_frames[i]
        b = raw_frames(self.chip, self.twin, latents=d.latents[j]) - d.latent_frames[j]
        return math.sqrt(float(torch.cat((a.flatten(), b.flatten())).square().mean()))

    def run(self, steps: int, progress: Callable[[int, float], None] | None = None) -> None:
        while self.step_count < steps:
            loss = self.step()
            if progress is not None:
                progress(self.step_count, loss)


def recovery(twin: ChipErrors, hidden: ChipErrors) -> dict[str, dict[str, float]]:
    """Per family (a common fiber phase removed): rms of the hidden values, rms error of the twin's, and the fraction
    recovered ``1 - rms error / rms hidden`` (SI units of :meth:`ChipErrors.value`)."""
    out = {}
    for f in FAMILIES:
        h, t = hidden.value(f).detach(), twin.value(f).detach()
        if f == "fiber_phase":  # a phase common to all fibers is invisible in intensity
            h, t = h - h.mean(), t - t.mean()
        rms_h = float(h.square().mean().sqrt())
        rms_e = float((t - h).square().mean().sqrt())
        out[f] = {
            "hidden_rms": rms_h,
            "error_rms": rms_e,
            "recovered_fraction": (1 - rms_e / rms_h) if rms_h > 0 else float("nan"),
        }
    return out
