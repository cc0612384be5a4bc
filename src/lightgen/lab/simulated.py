"""A simulated lab: a copy of the chip with hidden, seeded errors (the default for tests
and demos).

The copy is "fabricated" from the chip's heights when the lab is built; the user sees
only frames. Hidden: every :class:`~lightgen.lab.errors.ChipErrors` family drawn from the
:class:`~lightgen.lab.errors.LabErrorModel`, fiber facets moved by
``fiber_position_std_m`` (a family the twin does not model: it must absorb it), and camera
read noise ``camera_noise_std`` (relative to mean brightness) on every frame.
"""

from __future__ import annotations

import copy

import torch

from lightgen.chip.chip import LightGenChip
from lightgen.lab.errors import ChipErrors, LabErrorModel, chip_layers
from lightgen.lab.protocol import check_frames, check_injection, check_slm_images
from lightgen.lab.twin import raw_frames
from lightgen.optics.fibers import FiberArray


def _moved_fibers(fibers: FiberArray, std_m: float, g: torch.Generator) -> FiberArray:
    """The same fiber array with input and output facets displaced by N(0, std_m) per axis."""
    pin = fibers.positions_m + std_m * torch.randn(fibers.positions_m.shape, generator=g)
    pout = fibers.output_positions_m + std_m * torch.randn(pin.shape, generator=g)
    moved = FiberArray(
        fibers.input_grid,
        fibers.output_grid,
        pin.to(fibers.positions_m),
        output_positions_m=pout.to(fibers.positions_m),
        mode_field_diameter_m=fibers.mode_field_diameters_m,
        loss_db=fibers.loss_db,
        phase_rad=fibers.phase_rad,
        input_lens_focal_length_m=fibers.lens_focal_lengths_m["in"],
        output_lens_focal_length_m=fibers.lens_focal_lengths_m["out"],
    )
    return moved


class SimulatedLab:
    """A :class:`~lightgen.lab.protocol.Lab` backed by a hidden copy of ``chip``."""

    def __init__(self, chip: LightGenChip, model: LabErrorModel | None = None) -> None:
        model = (model or LabErrorModel()).check_for(chip)
        self.model = model
        self._chip = copy.deepcopy(chip).eval().requires_grad_(False)
        gen = self._chip.generators[0]
        with torch.no_grad():  # the lab's camera delivers raw frames; the host calibrates
            gen.camera_log_gain.zero_()
            gen.camera_offset.zero_()
        self._errors = ChipErrors.draw(self._chip, model)
        g = torch.Generator().manual_seed(model.seed + 1)
        if model.fiber_position_std_m:
            self._chip.fibers = _moved_fibers(self._chip.fibers, model.fiber_position_std_m, g)
        self._noise = torch.Generator().manual_seed(model.seed + 2)
        cfg = chip.config
        s = cfg.image_size
        self.slm_shape = (cfg.image_channels, s, s)
        self.frame_shape = (cfg.n_wavelengths, s, s)
        self.port_shape = (cfg.n_wavelengths, cfg.n_fibers)
        self.latent_dim = cfg.latent_dim
        self.frames_captured = 0
        self._queued: tuple[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ Lab protocol
    def set_ports(
        self, attenuation_db: torch.Tensor, phase_rad: torch.Tensor, laser_log_power_gain: float
    ) -> None:
        att = torch.as_tensor(attenuation_db, dtype=torch.float32)
        ph = torch.as_tensor(phase_rad, dtype=torch.float32)
        for name, t in (("attenuation_db", att), ("phase_rad", ph)):
            if tuple(t.shape) != self.port_shape or not torch.isfinite(t).all():
                raise ValueError(
                    f"port {name} has shape {tuple(t.shape)}; give finite values of shape "
                    f"{self.port_shape} (wavelengths, fibers)."
                )
        if (att < 0).any():
            raise ValueError(
                f"port attenuation {att.min().item():g} dB is negative; an attenuator cannot "
                "amplify. Give values >= 0 dB."
            )
        with torch.no_grad():
            self._chip.port_attenuation_db.copy_(att)
            self._chip.port_phase_rad.copy_(ph)
            self._chip.laser_log_power_gain.fill_(float(laser_log_power_gain))

    def show(self, images: torch.Tensor) -> None:
        self._queued = ("slm", check_slm_images(images, self.slm_shape))

    def inject(self, latents: torch.Tensor) -> None:
        self._queued = ("inject", check_injection(latents, self.latent_dim).to(torch.complex64))

    @torch.no_grad()
    def capture(self) -> torch.Tensor:
        if self._queued is None:
            raise ValueError("nothing to capture: call show() or inject() first.")
        kind, x = self._queued
        if kind == "slm":
            frames = raw_frames(self._chip, self._errors, images=x)
        else:
            frames = raw_frames(self._chip, self._errors, latents=x)
        if self.model.camera_noise_std:
            noise = torch.randn(frames.shape, generator=self._noise, dtype=torch.float32)
            frames = frames + self.model.camera_noise_std * noise.to(frames)
        self.frames_captured += frames.shape[0]
        return check_frames(frames.float().cpu(), (x.shape[0], *self.frame_shape), "the lab")

    # ------------------------------------------------------------- simulation only
    @torch.no_grad()
    def refabricate(self, chip: LightGenChip) -> None:
        """Replace the lab chip's heights by ``chip``'s (a new fabrication whose placement,
        height and setup errors are the same systematic ones: the same hidden values)."""
        for (dst_layers, i), (src_layers, j) in zip(
            chip_layers(self._chip), chip_layers(chip), strict=True
        ):
            dst_layers[i].raw_height.copy_(src_layers[j].raw_height)
            if dst_layers[i].raw_amplitude is not None:
                dst_layers[i].raw_amplitude.copy_(src_layers[j].raw_amplitude)

    def reveal_hidden_errors(self) -> ChipErrors:
        """The hidden errors (for reports on the simulated lab; a real lab has none to show)."""
        return self._errors
