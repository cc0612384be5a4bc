"""The LightGen chip: photonic encoder -> fiber-array latent space -> photonic generator(s).

Physical honesty: everything between the SLM and the camera is free space,
passive metasurfaces and single-mode fibers. The only electronics are the input
device (image -> SLM), the fiber ports (attenuators/phase shifters, and the
injection port that drives the fibers with chosen complex values), and the
camera (intensity, pixel integration, a per-channel gain/offset calibration).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from lightgen.chip.config import ChipConfig
from lightgen.chip.stack import DiffractiveStack
from lightgen.optics.fibers import FiberArray, fiber_positions_m
from lightgen.optics.grid import Grid, intensity
from lightgen.optics.propagation import FourierLens


def image_to_field(
    images: torch.Tensor, config: ChipConfig, grid: Grid, dtype=torch.complex64
) -> torch.Tensor:
    """SLM: images ``(B, C, S, S)`` in [0, 1] -> field ``(B, L, N, N)`` in sqrt(W/m^2).

    Each image pixel drives one SLM pixel of ``slm_pixel_samples`` grid samples per
    side, centred on the optical axis, zero outside the SLM. ``amplitude`` encoding:
    |E| proportional to the grey value; ``phase`` encoding: E = exp(i*pi*grey) over
    the SLM aperture. The laser power ``input_power_w`` sets the scale (the whole
    SLM at grey 1 carries that power). One grey channel drives every wavelength;
    colour images drive one wavelength per channel. With ``input_power_control =
    "constant-power"`` (amplitude encoding) each image's field is scaled so that it carries
    ``input_power_w`` per wavelength in all (a laser power servo); an all-black image
    stays dark.
    """
    _, c, h, w = images.shape
    s = config.image_size
    if (h, w) != (s, s) or c not in (1, config.image_channels):
        raise ValueError(
            f"images have shape {tuple(images.shape)}; this chip ({config.name}) takes "
            f"(batch, {config.image_channels}, {s}, {s}). Resize the data (e.g. --image-size) "
            "or pick a preset with that image size."
        )
    k, n = config.slm_pixel_samples, config.grid_samples
    up = images.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1) if k > 1 else images
    if c == 1 and grid.n_wavelengths > 1:
        up = up.expand(-1, grid.n_wavelengths, -1, -1)
    side = s * k
    top = n // 2 - side // 2
    pad = (top, n - top - side, top, n - top - side)
    aperture_area_m2 = (side * grid.pixel_pitch_m) ** 2
    amp0 = math.sqrt(config.input_power_w / aperture_area_m2)
    if config.input_encoding == "amplitude":
        amp = up * amp0
        if config.input_power_control == "constant-power":
            # laser servo: per image, all wavelengths alike, total = input_power_w per wavelength
            power_w = amp.square().sum((1, 2, 3), keepdim=True) * grid.pixel_pitch_m**2
            want_w = config.input_power_w * amp.shape[1]
            amp = amp * torch.sqrt(want_w / power_w.clamp_min(want_w * 1e-12))
        field = torch.complex(amp, torch.zeros_like(amp))
    else:
        field = torch.polar(torch.full_like(up, amp0), math.pi * up)
    field = F.pad(field, pad)
    return field.to(dtype)


def _stack(
    config: ChipConfig, grid: Grid, half: str, activation_checkpointing: bool
) -> DiffractiveStack:
    """The diffractive stack of the chip's ``half`` (``"encoder"`` or ``"generator"``: its
    ``<half>_layers``, ``<half>_first_hop_m`` and ``<half>_last_hop_m``) with the chip's
    shared layer, material and planner settings."""
    return DiffractiveStack(
        grid,
        getattr(config, f"{half}_layers"),
        getattr(config, f"{half}_first_hop_m"),
        config.layer_spacing_m,
        getattr(config, f"{half}_last_hop_m"),
        config.material,
        config.amplitude_layers,
        config.quantization_levels,
        activation_checkpointing,
        config.propagation_tail_tolerance,
        config.propagation_padding,
    )


class PhotonicEncoder(nn.Module):
    """SLM -> diffractive stack -> fiber-array input facets; returns the field there."""

    def __init__(self, config: ChipConfig, grid: Grid, activation_checkpointing: bool = False):
        super().__init__()
        self.config, self.grid = config, grid
        self.stack = _stack(config, grid, "encoder", activation_checkpointing)

        f = config.slm_lens_focal_length_m
        self.slm_lens = None if f is None else FourierLens(grid, f, grid)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        field = image_to_field(images, self.config, self.grid)
        if self.slm_lens is not None:
            field = self.slm_lens(field)
        return self.stack(field)


class PhotonicGenerator(nn.Module):
    """Fiber output facets -> diffractive stack -> camera.

    The camera integrates intensity over its pixels (``camera_pixel_samples`` grid
    samples per side) and applies the per-channel gain/offset calibration. Intensity
    is expressed relative to a uniform spread of the injected power over the camera
    area, so 1.0 means "average brightness"; the calibration maps that to [0, 1].
    """

    def __init__(self, config: ChipConfig, grid: Grid, activation_checkpointing: bool = False):
        super().__init__()
        self.config, self.grid = config, grid
        self.stack = _stack(config, grid, "generator", activation_checkpointing)
        f = config.camera_lens_focal_length_m
        self.camera_lens = None if f is None else FourierLens(grid, f, grid)
        c = config.n_wavelengths
        self.camera_log_gain = nn.Parameter(torch.zeros(c))
        self.camera_offset = nn.Parameter(torch.zeros(c))

    def camera(self, field: torch.Tensor) -> torch.Tensor:
        """Field at the camera plane -> calibrated image ``(B, L, S, S)``."""
        cfg = self.config
        k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
        side = s * k
        top = n // 2 - side // 2
        irr = intensity(field)[..., top : top + side, top : top + side]
        pixel_power = F.avg_pool2d(irr, k) * (k * k)  # sum over each camera pixel's samples
        uniform = cfg.generator_power_w / (s * s) / self.grid.pixel_pitch_m**2
        rel = pixel_power / uniform
        return rel * self.camera_log_gain.exp().view(1, -1, 1, 1) + self.camera_offset.view(
            1, -1, 1, 1
        )

    def forward(self, field_at_fibers: torch.Tensor) -> torch.Tensor:
        field = self.stack(field_at_fibers)
        if self.camera_lens is not None:
            field = self.camera_lens(field)
        return self.camera(field)


class LightGenChip(nn.Module):
    """The assembled chip.

    ``encode(images)`` -> latent ``(B, D)`` complex, ``D = n_fibers * n_wavelengths``,
    in latent units: the fiber amplitude divided by sqrt(input_power_w / n_fibers),
    i.e. |z|^2 = 1 is a fiber carrying its fair share of the nominal input power.
    The laser power itself is trained (``laser_log_power_gain``: actual power =
    input_power_w * exp(gain)), since only a few % of the light may couple.
    ``decode(z)`` injects ``z * sqrt(generator_power_w / n_fibers)`` into the fibers
    and returns the camera image. ``forward`` = decode(encode(x)).

    ``generators=False`` builds the encoder and fibers only (the hybrid baseline brings
    its own generator).
    """

    def __init__(
        self, config: ChipConfig, activation_checkpointing: bool = False, generators: bool = True
    ):
        super().__init__()
        self.config = config
        self.grid = Grid((config.grid_samples,) * 2, config.pixel_pitch_m, config.wavelengths_m)
        positions = fiber_positions_m(config.n_fibers, config.fiber_pitch_m, config.fiber_layout)
        self.fibers = FiberArray(
            self.grid,
            self.grid,
            positions,
            mode_field_diameter_m=config.fiber_mode_field_diameter_m,
            loss_db=config.fiber_loss_db,
            input_lens_focal_length_m=config.encoder_lens_focal_length_m,
            output_lens_focal_length_m=config.generator_lens_focal_length_m,
        )
        self.encoder = PhotonicEncoder(config, self.grid, activation_checkpointing)
        self.generators = nn.ModuleList(
            PhotonicGenerator(config, self.grid, activation_checkpointing)
            for _ in range(config.n_generators if generators else 0)
        )
        # laser power relative to input_power_w, learned (input-device modulation is allowed)
        self.laser_log_power_gain = nn.Parameter(torch.zeros(()))
        # manipulation ports (editing): per-fiber attenuation and phase, off by default
        self.register_buffer(
            "port_attenuation_db", torch.zeros(config.n_wavelengths, config.n_fibers)
        )
        self.register_buffer("port_phase_rad", torch.zeros(config.n_wavelengths, config.n_fibers))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        field = self.encoder(images)
        c = self.fibers.couple(field)  # (B, L, M), sqrt(W)
        unit = math.sqrt(self.config.input_power_w / self.config.n_fibers)
        return (c * torch.exp(0.5 * self.laser_log_power_gain) / unit).flatten(1)

    def ports(self, z: torch.Tensor) -> torch.Tensor:
        """Apply the manipulation ports (attenuators, phase shifters) to latents ``(B, D)``."""
        amp = torch.pow(10.0, -self.port_attenuation_db / 20)
        t = torch.polar(amp, self.port_phase_rad).flatten().to(z.dtype)
        return z * t

    @contextmanager
    def port_settings(
        self, latent_index: Sequence[int], attenuation_db: float = 0.0, phase_rad: float = 0.0
    ) -> Iterator[None]:
        """Temporarily add ``attenuation_db`` / ``phase_rad`` to the manipulation ports of the
        latent dimensions ``latent_index`` (dimension ``d`` is fiber ``d % n_fibers`` at
        wavelength ``d // n_fibers``); the previous settings come back on exit, also after
        an error."""
        att, ph = self.port_attenuation_db, self.port_phase_rad
        saved = att.clone(), ph.clone()
        idx = list(latent_index)
        try:
            att.view(-1)[idx] += attenuation_db
            ph.view(-1)[idx] += phase_rad
            yield
        finally:
            att.copy_(saved[0])
            ph.copy_(saved[1])

    def emitted_field(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, D)`` through the ports, injected at ``z * sqrt(generator_power_w /
        n_fibers)``: the field ``(B, L, N, N)`` the fiber output facets emit."""
        cfg = self.config
        unit = math.sqrt(cfg.generator_power_w / cfg.n_fibers)
        c = self.ports(z).view(-1, cfg.n_wavelengths, cfg.n_fibers) * unit
        return self.fibers.emit(self.fibers.transmit(c))

    def decode(self, z: torch.Tensor, generator: int | torch.Tensor = 0) -> torch.Tensor:
        """Inject latents ``(B, D)`` complex into the fibers, return camera images ``(B, L, S, S)``.

        ``generator``: index of the routed generator, or a ``(B,)`` tensor of indices.
        """
        cfg = self.config
        if z.ndim != 2 or z.shape[1] != cfg.latent_dim:
            raise ValueError(
                f"latent has shape {tuple(z.shape)}; this chip's optical latent space takes "
                f"(batch, {cfg.latent_dim}) complex values ({cfg.n_fibers} fibers x {cfg.n_wavelengths} wavelengths)."
            )
        if not z.is_complex():
            raise ValueError(
                "latent must be complex (amplitude and phase per fiber); got a real tensor."
            )
        field = self.emitted_field(z)
        if isinstance(generator, int):
            if not 0 <= generator < len(self.generators):
                raise ValueError(
                    f"generator={generator} but this chip has {len(self.generators)} generator(s)."
                )
            return self.generators[generator](field)
        out = None
        for g in range(len(self.generators)):
            sel = generator == g
            if sel.any():
                img = self.generators[g](field[sel])
                if out is None:
                    out = img.new_zeros((z.shape[0], *img.shape[1:]))
                out = out.index_put((sel.nonzero().squeeze(1),), img)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))

    @torch.no_grad()
    def plane_fields(
        self, images: torch.Tensor, z: torch.Tensor | None = None, generator: int = 0
    ) -> list[tuple[str, torch.Tensor]]:
        """The light at every plane for ``images`` ``(B, C, S, S)``: ``(name, field)`` pairs,
        fields ``(B, L, N, N)`` in sqrt(W/m^2), from the SLM through the encoder layers to
        the fiber input facets, then from the fiber output facets (driven by ``z``, default
        the encoded ``images``) through generator ``generator``'s layers to the camera."""
        field = image_to_field(images, self.config, self.grid)
        enc = self.encoder.stack.plane_fields(field)
        out = [("SLM", field)]
        out += [(f"encoder layer {i + 1}", f) for i, f in enumerate(enc[:-1])]
        out.append(("fiber input facets", enc[-1]))
        emitted = self.emitted_field(self.encode(images) if z is None else z)
        gen = self.generators[generator].stack.plane_fields(emitted)
        out.append(("fiber output facets", emitted))
        out += [(f"generator layer {i + 1}", f) for i, f in enumerate(gen[:-1])]
        out.append(("camera", gen[-1]))
        return out

    def height_maps_m(self) -> dict[str, list[torch.Tensor]]:
        maps = {"encoder": self.encoder.stack.height_maps_m()}
        for i, g in enumerate(self.generators):
            maps[f"generator{i}"] = g.stack.height_maps_m()
        return maps
