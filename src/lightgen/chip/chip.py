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
from pydantic import ValidationError
from torch import nn

from lightgen.chip.config import CameraConfig, ChipConfig, SLMConfig
from lightgen.chip.stack import DiffractiveStack
from lightgen.optics.devices import DMD, SLM, Camera, adc, photon_count
from lightgen.optics.fibers import FiberArray, fiber_positions_m
from lightgen.optics.grid import Grid, intensity
from lightgen.optics.propagation import FourierLens


def input_device(config: ChipConfig, grid: Grid) -> SLM | DMD | None:
    """The chip's SLM or DMD (``lightgen.optics.devices``) as ``config.slm`` sets it, or
    ``None`` for the ideal modulator (continuous grey levels, full fill factor)."""
    sc = config.slm
    pitch_m = config.slm_pixel_samples * grid.pixel_pitch_m
    if sc.model == "dmd":
        return DMD(grid, pitch_m, dither=sc.dmd_dither, fill_factor=sc.fill_factor)
    if sc.model == "slm":
        levels = 2**sc.bit_depth
        # the top drive level writes pi, as the ideal phase encoding exp(i pi grey) does
        stroke_rad = math.pi * levels / (levels - 1)
        return SLM(grid, config.input_encoding, sc.bit_depth, pitch_m, sc.fill_factor, stroke_rad)
    return None


def phase_modulator(config: ChipConfig, grid: Grid) -> SLM | None:
    """A phase-only SLM of ``config.slm`` with a 2 pi stroke (grey g writes 2 pi g), for
    phase seeds written from electronics (the hybrid baseline), or ``None`` when ideal."""
    sc = config.slm
    if sc.model == "ideal":
        return None
    if sc.model == "dmd":
        raise ValueError(
            "slm.model='dmd' is binary amplitude; the hybrid writes a phase seed. Use "
            "slm.model='slm' (a phase SLM) or 'ideal'."
        )
    pitch_m = config.slm_pixel_samples * grid.pixel_pitch_m
    return SLM(grid, "phase", sc.bit_depth, pitch_m, sc.fill_factor, 2 * math.pi)


def device_camera(config: ChipConfig, grid: Grid) -> Camera:
    """The chip's camera (``lightgen.optics.devices.Camera``, settings of ``config.camera``):
    ``image_size`` pixels of ``camera_pixel_samples`` grid samples, centred on the axis."""
    cc = config.camera
    return Camera(
        grid,
        config.camera_pixel_samples * grid.pixel_pitch_m,
        n_pixels=config.image_size,
        quantum_efficiency=cc.quantum_efficiency,
        exposure_s=cc.exposure_s,
        full_well_e=cc.full_well_e,
        read_noise_e=cc.read_noise_e,
        bit_depth=cc.bit_depth,
        noise=cc.noise,
        dark_current_e_per_s=cc.dark_current_e_per_s,
    )


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

    ``config.slm`` other than ``ideal`` writes the image through the SLM or DMD of
    :func:`input_device` (drive-level quantisation, fill factor, binary mirrors), lit by
    the same laser.
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
    device = input_device(config, grid)
    if device is not None:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        field = device(images.to(real)) * amp0
        if config.input_encoding == "amplitude" and config.input_power_control == "constant-power":
            power_w = field.abs().square().sum((1, 2, 3), keepdim=True) * grid.pixel_pitch_m**2
            want_w = config.input_power_w * field.shape[1]
            field = field * torch.sqrt(want_w / power_w.clamp_min(want_w * 1e-12))
        return field.to(dtype)
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
        config.layer_filter_radius_m,
        config.layer_pixel_samples,
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

    ``config.camera.model = "device"``: the pixel values are photo-electrons of the
    :func:`device_camera` (photons at the power the field carries, QE, shot and read noise,
    saturation, ADC), converted back to the same relative scale by the mean electrons of
    that uniform spread; the gain/offset calibration is digital, after detection, and
    changes no photon count. ``noise_generator`` (a ``torch.Generator``, default the
    global one) draws the noise.
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
        self.noise_generator: torch.Generator | None = None
        self._device_camera: tuple[CameraConfig, Camera] | None = None

    def detector(self) -> Camera:
        """The :func:`device_camera` of the present ``config.camera`` (built once per setting)."""
        if self._device_camera is None or self._device_camera[0] != self.config.camera:
            self._device_camera = (self.config.camera, device_camera(self.config, self.grid))
        return self._device_camera[1]

    def relative_intensity(self, field: torch.Tensor) -> torch.Tensor:
        """Field at the camera plane -> pixel values ``(B, L, S, S)`` before the calibration,
        relative to a uniform spread of ``generator_power_w`` (1.0 = average brightness)."""
        cfg = self.config
        k, s, n = cfg.camera_pixel_samples, cfg.image_size, cfg.grid_samples
        if cfg.camera.model == "device":
            cam = self.detector()
            electrons = adc(
                cam.electrons(field, self.noise_generator), cam.full_well_e, cam.bit_depth
            )
            electrons = electrons * (cam.full_well_e / (cam.n_levels - 1))
            dark_e = cam.dark_current_e_per_s * cam.exposure_s
            qe = torch.tensor(cam.quantum_efficiency, device=field.device, dtype=electrons.dtype)
            lam = self.grid.wavelength_tensor(field.device, electrons.dtype).view(-1)
            uniform_e = photon_count(cfg.generator_power_w / (s * s), cam.exposure_s, lam) * qe
            return (electrons - dark_e) / uniform_e.view(1, -1, 1, 1)
        side = s * k
        top = n // 2 - side // 2
        irr = intensity(field)[..., top : top + side, top : top + side]
        pixel_power = F.avg_pool2d(irr, k) * (k * k)  # sum over each camera pixel's samples
        uniform = cfg.generator_power_w / (s * s) / self.grid.pixel_pitch_m**2
        return pixel_power / uniform

    def mean_photons_per_pixel(self, field: torch.Tensor) -> torch.Tensor:
        """Expected photons on each camera pixel ``(B, L, S, S)`` during the exposure of
        ``config.camera`` (no noise), at the power the field carries."""
        return self.detector().mean_photons(field)

    def camera(self, field: torch.Tensor) -> torch.Tensor:
        """Field at the camera plane -> calibrated image ``(B, L, S, S)``."""
        rel = self.relative_intensity(field)
        return rel * self.camera_log_gain.exp().view(1, -1, 1, 1) + self.camera_offset.view(
            1, -1, 1, 1
        )

    def camera_field(self, field_at_fibers: torch.Tensor) -> torch.Tensor:
        """The field at the camera plane ``(B, L, N, N)`` for fiber output facets' field."""
        field = self.stack(field_at_fibers)
        return field if self.camera_lens is None else self.camera_lens(field)

    def forward(self, field_at_fibers: torch.Tensor) -> torch.Tensor:
        return self.camera(self.camera_field(field_at_fibers))


class LightGenChip(nn.Module):
    """The assembled chip.

    ``encode(images)`` -> latent ``(B, D)`` complex, ``D = n_fibers * n_wavelengths``,
    in latent units: the fiber amplitude divided by sqrt(input_power_w / n_fibers),
    i.e. |z|^2 = 1 is a fiber carrying its fair share of the nominal input power.
    The laser power itself is trained (``laser_log_power_gain``: actual power
    :attr:`laser_power_w` = input_power_w * exp(gain)), since only a few % of the light may
    couple -- except with a photon-counting camera (``config.camera.model = "device"``):
    there more laser power means fewer noisy photons for free, so the gain is frozen and
    the laser power is the stated one (the energy every image is charged).
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
        self.laser_log_power_gain = nn.Parameter(
            torch.zeros(()), requires_grad=config.camera.model != "device"
        )
        # manipulation ports (editing): per-fiber attenuation and phase, off by default
        self.register_buffer(
            "port_attenuation_db", torch.zeros(config.n_wavelengths, config.n_fibers)
        )
        self.register_buffer("port_phase_rad", torch.zeros(config.n_wavelengths, config.n_fibers))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def with_config(self, config: ChipConfig) -> LightGenChip:
        """A new, untrained chip of this one's structure (with or without generators) on
        ``config``."""
        return LightGenChip(config, generators=len(self.generators) > 0)

    @property
    def laser_power_w(self) -> float:
        """The optical power the laser puts on the SLM, watts: ``input_power_w * exp(gain)``
        (with ``generator_power_w == input_power_w`` this is the power a reconstruction's
        light starts from; the energy per image is it times the camera exposure)."""
        return self.config.input_power_w * math.exp(float(self.laser_log_power_gain.detach()))

    def _set_config(self, config: ChipConfig) -> None:
        self.config = config
        self.encoder.config = config
        for g in self.generators:
            g.config = config

    @contextmanager
    def device_settings(
        self,
        camera: CameraConfig | None = None,
        laser_power_w: float | None = None,
        noise_generator: torch.Generator | None = None,
        slm: SLMConfig | None = None,
    ) -> Iterator[None]:
        """Temporarily run the chip with another camera (``camera``) or input modulator
        (``slm``), the laser delivering
        ``laser_power_w`` watts on the SLM (``input_power_w`` and ``generator_power_w`` both set
        to ``laser_power_w / exp(gain)``, so the light that reaches the fibers is what a
        reconstruction carries to the camera), and camera noise drawn from
        ``noise_generator``. The trained weights are untouched; the settings come back on
        exit, also after an error. Scale-free outputs (the ideal camera) do not change."""
        saved = self.config
        update: dict = {}
        if camera is not None:
            update["camera"] = camera
        if slm is not None:
            update["slm"] = slm
        if laser_power_w is not None:
            if not (math.isfinite(laser_power_w) and laser_power_w > 0):
                raise ValueError(
                    f"laser_power_w={laser_power_w!r} must be a positive number of watts, "
                    "e.g. 1e-10."
                )
            nominal_w = laser_power_w / math.exp(float(self.laser_log_power_gain.detach()))
            update["input_power_w"] = update["generator_power_w"] = nominal_w
        new_config = saved
        if update:  # validated as a whole (a DMD cannot write phase, ...)
            try:
                new_config = ChipConfig.model_validate({**dict(saved), **update})
            except ValidationError as e:
                msgs = [str(err["msg"]).removeprefix("Value error, ") for err in e.errors()]
                raise ValueError(" ".join(msgs)) from None
        gens = [g.noise_generator for g in self.generators]
        try:
            self._set_config(new_config)
            for g in self.generators:
                g.noise_generator = noise_generator
            yield
        finally:
            self._set_config(saved)
            for g, ng in zip(self.generators, gens, strict=True):
                g.noise_generator = ng

    def injected_power_w(self, z: torch.Tensor) -> torch.Tensor:
        """Optical power ``(B,)`` in watts that latents ``z`` ``(B, D)`` put into the fibers
        (after the ports): ``sum |z|^2 * generator_power_w / n_fibers``."""
        cfg = self.config
        return self.ports(z).abs().square().sum(1) * (cfg.generator_power_w / cfg.n_fibers)

    def camera_photons(self, z: torch.Tensor, generator: int = 0) -> torch.Tensor:
        """Expected photons per camera pixel ``(B, L, S, S)`` for latents ``z`` during the
        exposure of ``config.camera`` (noise-free mean)."""
        g = self.generators[generator]
        return g.mean_photons_per_pixel(g.camera_field(self.emitted_field(z)))

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
