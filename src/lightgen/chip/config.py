"""Typed, validated description of a LightGen chip (saved inside every checkpoint).

Every physical quantity carries its unit in its name. Sizes counted in samples
are called ``*_samples``; image sizes in camera/SLM pixels are ``image_size``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lightgen._checks import require_int_range, require_nonnegative, require_positive
from lightgen.optics.propagation import FAST_TAIL_TOLERANCE

InputEncoding = Literal["amplitude", "phase"]


class SLMConfig(BaseModel):
    """The chip's input modulator (``lightgen.optics.devices.SLM`` / ``DMD``).

    ``model="ideal"`` (default, what every chip before device models did): continuous grey
    levels, 100 % fill factor, bit-identical to old checkpoints. ``model="slm"``: a
    pixelated SLM with ``bit_depth`` drive levels and a linear ``fill_factor`` (amplitude
    or phase as the chip's ``input_encoding``); ``model="dmd"``: binary micromirrors with
    ordered dithering (amplitude encoding only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: Literal["ideal", "slm", "dmd"] = "ideal"
    bit_depth: int = 8
    fill_factor: float = 1.0
    dmd_dither: bool = True

    @model_validator(mode="after")
    def _physical(self) -> SLMConfig:
        require_int_range("slm.bit_depth", self.bit_depth, 1, 16, "SLMs have 1 to 16 bits, e.g. 8.")
        require_positive("slm.fill_factor", self.fill_factor, "A fraction in (0, 1], e.g. 0.93.")
        if self.fill_factor > 1:
            raise ValueError(
                f"slm.fill_factor={self.fill_factor} is above 1; it is the active width / "
                "pixel pitch, a fraction in (0, 1], e.g. 0.93."
            )
        return self


class CameraConfig(BaseModel):
    """The chip's camera (``lightgen.optics.devices.Camera``) before the learned gain/offset.

    ``model="ideal"`` (default): noise-free, continuous intensity, bit-identical to old
    checkpoints. ``model="device"``: pixel integration, photons at the optical power the
    chip actually carries, quantum efficiency, shot noise (exact Poisson without gradients,
    a Gaussian of variance = mean electrons with them), read noise, dark current,
    saturation at ``full_well_e``, a ``bit_depth`` ADC with a straight-through rounding;
    ``noise=False`` keeps the device's integration, saturation and ADC without the noise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: Literal["ideal", "device"] = "ideal"
    quantum_efficiency: float = 0.8
    exposure_s: float = 1e-3
    read_noise_e: float = 1.5
    dark_current_e_per_s: float = 0.0
    full_well_e: float = 10_000.0
    bit_depth: int = 12
    noise: bool = True

    @model_validator(mode="after")
    def _physical(self) -> CameraConfig:
        qe = require_positive(
            "camera.quantum_efficiency", self.quantum_efficiency, "A fraction in (0, 1], e.g. 0.8."
        )
        if qe > 1:
            raise ValueError(
                f"camera.quantum_efficiency={qe} is above 1; it is electrons per photon, a "
                "fraction in (0, 1], e.g. 0.8."
            )
        require_positive("camera.exposure_s", self.exposure_s, "Give seconds, e.g. 1e-3.")
        rn = require_nonnegative(
            "camera.read_noise_e", self.read_noise_e, "Give electrons rms, e.g. 1.5."
        )
        require_nonnegative(
            "camera.dark_current_e_per_s", self.dark_current_e_per_s, "Electrons/s, e.g. 0."
        )
        fw = require_positive("camera.full_well_e", self.full_well_e, "Electrons, e.g. 10000.")
        require_int_range("camera.bit_depth", self.bit_depth, 1, 16, "ADCs have 8 to 16 bits.")
        if fw <= rn:
            raise ValueError(
                f"camera.full_well_e={fw:g} is not above camera.read_noise_e={rn:g}: the pixel "
                "would saturate inside its own read noise. Use a full well of thousands of "
                "electrons (e.g. 10000) or a smaller read noise."
            )
        return self


class ChipConfig(BaseModel):
    """Physical design of one LightGen chip.

    Light path: input device (SLM) -> ``input_to_encoder_m`` -> encoder layer 1 ->
    ``layer_spacing_m`` -> ... -> encoder layer K -> ``encoder_to_fiber_m`` -> fiber
    array input facets (couple LP01) | fibers | output facets (emit Gaussian spots)
    -> ``fiber_to_generator_m`` -> generator layer 1 -> ... -> generator layer K' ->
    ``generator_to_camera_m`` -> camera. All planes share one sampling grid of
    ``grid_samples`` x ``grid_samples`` at ``pixel_pitch_m`` (one diffractive neuron
    per sample).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "custom"
    wavelengths_m: tuple[float, ...] = Field(default=(532e-9,), min_length=1)
    grid_samples: int = Field(ge=8, le=8192)
    pixel_pitch_m: float = Field(gt=0)
    image_size: int = Field(ge=2, description="input and camera image side in pixels")
    image_channels: int = Field(default=1, ge=1, le=3)
    slm_pixel_samples: int = Field(default=1, ge=1, description="grid samples per SLM pixel side")
    camera_pixel_samples: int = Field(
        default=1, ge=1, description="grid samples per camera pixel side"
    )
    input_encoding: InputEncoding = "amplitude"
    input_power_control: Literal["fixed", "constant-power"] = Field(
        default="fixed",
        description=(
            "fixed: the laser power is fixed, so with amplitude encoding an image puts "
            "input_power_w * mean(grey^2) on the SLM (a thin stroke carries less light than a "
            "bold one); constant-power: a power servo (pick-off photodiode on the SLM beam, "
            "laser drive current) scales the laser per image so that every image puts "
            "input_power_w times the number of wavelengths on the SLM, all wavelengths scaled "
            "alike (colour ratios kept). Input-device modulation only; no effect on phase "
            "encoding, whose power is already constant"
        ),
    )
    encoder_layers: int = Field(default=2, ge=1, le=64)
    generator_layers: int = Field(default=2, ge=1, le=64)
    layer_spacing_m: float = Field(gt=0)
    input_to_encoder_m: float = Field(gt=0)
    encoder_to_fiber_m: float = Field(gt=0)
    fiber_to_generator_m: float = Field(gt=0)
    generator_to_camera_m: float = Field(gt=0)
    material: str = "fused_silica"
    amplitude_layers: bool = False
    n_fibers: int = Field(default=100, ge=1, le=4096)
    fiber_pitch_m: float = Field(gt=0)
    fiber_layout: Literal["square", "hex"] = "square"
    fiber_mode_field_diameter_m: float = Field(gt=0)
    fiber_loss_db: float = Field(default=0.0, ge=0)
    encoder_lens_focal_length_m: float | None = Field(
        default=None,
        gt=0,
        description=(
            "None: the fibers couple straight from the field at encoder_to_fiber_m. A focal "
            "length f: a thin lens forms a 2f Fourier system in front of the fiber facets "
            "(its front focal plane encoder_to_fiber_m - 2f after the last layer), so each "
            "fiber couples a broad beam tilted by its position / f from the whole aperture "
            "(global connectivity)"
        ),
    )
    generator_lens_focal_length_m: float | None = Field(
        default=None,
        gt=0,
        description=(
            "None: the fibers emit their spots fiber_to_generator_m before the first "
            "generator layer. A focal length f: a 2f Fourier lens after the fiber facets, so "
            "each fiber lights the whole first layer (fiber_to_generator_m - 2f before it) "
            "with a broad tilted beam"
        ),
    )
    slm_lens_focal_length_m: float | None = Field(
        default=None,
        gt=0,
        description=(
            "None: the SLM field propagates input_to_encoder_m to the first encoder layer. A "
            "focal length f: a 2f Fourier lens after the SLM, so the first layer "
            "(input_to_encoder_m - 2f past the lens's back focal plane) sees the image's "
            "spectrum and each fiber's template is global (optics.propagation.FourierLens)"
        ),
    )
    camera_lens_focal_length_m: float | None = Field(
        default=None,
        gt=0,
        description=(
            "None: the last generator layer's field propagates generator_to_camera_m to the "
            "camera. A focal length f: a 2f Fourier lens before the camera, so the camera reads "
            "the spectrum of the last layer's field and every fiber's light reaches every "
            "camera pixel"
        ),
    )
    n_generators: int = Field(default=1, ge=1, le=16)
    quantization_levels: int | None = Field(default=None, ge=2, le=65536)
    layer_pixel_samples: int = Field(
        default=1,
        ge=1,
        description=(
            "grid samples per metasurface pixel side: each layer has (grid_samples / "
            "layer_pixel_samples)^2 pixels (diffractive neurons) of one height at pitch "
            "layer_pixel_samples * pixel_pitch_m. 1 is one sample per pixel, which does not "
            "resolve the light that height steps between pixels diffract; 2 trains on resolved "
            "physics (docs/physics.md, the sampling check)"
        ),
    )
    layer_filter_radius_m: float | None = Field(
        default=None,
        gt=0,
        description=(
            "conic filter radius in metres on every metasurface layer's height parameter "
            "(None: no filter). Masks whose height jumps from pixel to pixel diffract light "
            "that one grid sample per pixel does not resolve; a filter of a few pitches keeps "
            "a trained chip's numbers when re-simulated finer (lightgen.chip.fabrication.refined, "
            "docs/physics.md)"
        ),
    )
    input_power_w: float = Field(
        default=1e-3,
        gt=0,
        description=(
            "laser power on the SLM, watts, before the learned laser gain (the laser delivers "
            "input_power_w * exp(laser_log_power_gain), LightGenChip.laser_power_w)"
        ),
    )
    generator_power_w: float = Field(
        default=1e-3, gt=0, description="total power injected into the fibers, watts"
    )
    slm: SLMConfig = Field(
        default_factory=SLMConfig, description="input modulator; 'ideal' = noise-free, continuous"
    )
    camera: CameraConfig = Field(
        default_factory=CameraConfig,
        description="camera; 'ideal' = noise-free intensity, 'device' = photons, noise, ADC",
    )
    propagation_tail_tolerance: float = Field(
        default=FAST_TAIL_TOLERANCE,
        gt=0,
        lt=1,
        description=(
            "energy fraction of each free-space impulse response the zero padding may leave "
            "outside (wraps around); larger = smaller FFTs, faster and less accurate. The "
            "chips' 2e-3 is looser than the optics library's 1e-5 default: trained chips "
            "move by about 1 % against exact propagation (benchmarks/exact_propagation.py) "
            "for about half the FFT work; 1e-5 or propagation_padding='linear' is exact"
        ),
    )
    propagation_padding: Literal["auto", "linear"] = Field(
        default="auto",
        description=(
            "free-space planner: 'auto' pads by the geometric spread plus a guard "
            "(propagation_tail_tolerance); 'linear' uses the windowed impulse response on a "
            "2N-1 grid -- exact open-boundary propagation of any field, 1.3-2x the time "
            "(docs/physics.md)"
        ),
    )

    @model_validator(mode="after")
    def _fits(self) -> ChipConfig:
        n = self.grid_samples
        if n % self.layer_pixel_samples:
            raise ValueError(
                f"layer_pixel_samples={self.layer_pixel_samples} does not divide grid_samples={n}: "
                "every metasurface pixel is layer_pixel_samples x layer_pixel_samples grid samples; "
                f"pick grid_samples a multiple of {self.layer_pixel_samples}."
            )
        if self.camera.model == "device" and not math.isclose(
            self.generator_power_w, self.input_power_w, rel_tol=1e-9
        ):
            raise ValueError(
                f"camera.model='device' counts the photons a reconstruction's light delivers, so "
                f"the fibers must re-emit at the laser's scale: generator_power_w="
                f"{self.generator_power_w:g} must equal input_power_w={self.input_power_w:g}. "
                "Set both to the same value."
            )
        if self.slm.model == "dmd" and self.input_encoding != "amplitude":
            raise ValueError(
                "slm.model='dmd' switches mirrors on and off (binary amplitude); it cannot "
                "write input_encoding='phase'. Use slm.model='slm' or input_encoding='amplitude'."
            )
        if self.image_channels not in (1, len(self.wavelengths_m)):
            raise ValueError(
                f"image_channels={self.image_channels} must be 1 or the number of wavelengths "
                f"({len(self.wavelengths_m)}): colour images use one wavelength per channel."
            )
        for what, k in (
            ("slm_pixel_samples", self.slm_pixel_samples),
            ("camera_pixel_samples", self.camera_pixel_samples),
        ):
            if self.image_size * k > n:
                raise ValueError(
                    f"image_size*{what} = {self.image_size}*{k} = {self.image_size * k} samples does not "
                    f"fit the {n}-sample grid; lower {what} or raise grid_samples to >= {self.image_size * k}."
                )
        for what, f, dist, dname in (
            (
                "encoder_lens_focal_length_m",
                self.encoder_lens_focal_length_m,
                self.encoder_to_fiber_m,
                "encoder_to_fiber_m",
            ),
            (
                "generator_lens_focal_length_m",
                self.generator_lens_focal_length_m,
                self.fiber_to_generator_m,
                "fiber_to_generator_m",
            ),
            (
                "slm_lens_focal_length_m",
                self.slm_lens_focal_length_m,
                self.input_to_encoder_m,
                "input_to_encoder_m",
            ),
            (
                "camera_lens_focal_length_m",
                self.camera_lens_focal_length_m,
                self.generator_to_camera_m,
                "generator_to_camera_m",
            ),
        ):
            if f is not None and dist < 2 * f * (1 - 1e-12):
                raise ValueError(
                    f"{what}={f:g} needs a 2f = {2 * f:g} m Fourier system but {dname}={dist:g} m; "
                    f"set {dname} >= {2 * f:g} (= 2f puts the layer in the focal plane)."
                )
        side = math.ceil(math.sqrt(self.n_fibers))
        span_m = (side - 1) * self.fiber_pitch_m + 2 * self.fiber_mode_field_diameter_m
        both_lensed = (
            self.encoder_lens_focal_length_m is not None
            and self.generator_lens_focal_length_m is not None
        )
        # sample centres reach only (n/2 - 1) pitches on the positive side; lens-coupled
        # facets are not on the grid (FiberArray checks their tilts against Nyquist)
        if not both_lensed and span_m > (n - 2) * self.pixel_pitch_m:
            raise ValueError(
                f"the {self.n_fibers}-fiber array spans {span_m * 1e3:.3f} mm with mode margins but the grid "
                f"is {n * self.pixel_pitch_m * 1e3:.3f} mm wide; lower fiber_pitch_m={self.fiber_pitch_m:g} "
                "or raise grid_samples / pixel_pitch_m."
            )
        return self

    @property
    def encoder_last_hop_m(self) -> float:
        """Free space between the last encoder layer and the fibers (or their lens system)."""
        f = self.encoder_lens_focal_length_m
        return self.encoder_to_fiber_m if f is None else max(self.encoder_to_fiber_m - 2 * f, 0.0)

    @property
    def generator_first_hop_m(self) -> float:
        """Free space between the fibers (or their lens system) and the first generator layer."""
        f = self.generator_lens_focal_length_m
        return (
            self.fiber_to_generator_m if f is None else max(self.fiber_to_generator_m - 2 * f, 0.0)
        )

    @property
    def encoder_first_hop_m(self) -> float:
        """Free space between the SLM (or its lens system) and the first encoder layer."""
        f = self.slm_lens_focal_length_m
        return self.input_to_encoder_m if f is None else max(self.input_to_encoder_m - 2 * f, 0.0)

    @property
    def generator_last_hop_m(self) -> float:
        """Free space between the last generator layer and the camera (or its lens system)."""
        f = self.camera_lens_focal_length_m
        return (
            self.generator_to_camera_m
            if f is None
            else max(self.generator_to_camera_m - 2 * f, 0.0)
        )

    @property
    def n_wavelengths(self) -> int:
        return len(self.wavelengths_m)

    @property
    def latent_dim(self) -> int:
        """Complex latent values: one per fiber per wavelength."""
        return self.n_fibers * self.n_wavelengths

    @property
    def layer_pixels(self) -> int:
        """Metasurface pixels (diffractive neurons) per layer side."""
        return self.grid_samples // self.layer_pixel_samples

    @property
    def layer_pixel_pitch_m(self) -> float:
        """Pitch of the metasurface pixels in metres."""
        return self.layer_pixel_samples * self.pixel_pitch_m

    def neurons(self) -> dict[str, int]:
        """Diffractive neurons (one per metasurface pixel of every layer), per part and total."""
        per_layer = self.layer_pixels**2
        enc = self.encoder_layers * per_layer
        gen = self.generator_layers * per_layer * self.n_generators
        return {"encoder": enc, "generators": gen, "fibers": self.n_fibers, "total": enc + gen}


#: The fields a finer simulation of the same physical chip multiplies (grid samples per
#: SLM pixel, camera pixel and metasurface pixel, and the grid) or divides (the pitch).
FINER_GRID_FIELDS = (
    "grid_samples",
    "slm_pixel_samples",
    "camera_pixel_samples",
    "layer_pixel_samples",
)


def finer_grid_fields(fields: dict, factor: int) -> dict:
    """``fields`` (a ChipConfig's, or a preset's dict) for the same physical chip on a grid
    ``factor`` times finer: every SLM, camera and metasurface pixel covers ``factor`` x
    ``factor`` more grid samples, the pitch is ``pixel_pitch_m / factor``; everything
    physical (pixel counts and pitches, distances, fibers) is unchanged. The one home of
    that rule: :func:`lightgen.chip.fabrication.refined` and the resolved presets use it."""
    out = dict(fields)
    for k in FINER_GRID_FIELDS:
        out[k] = out.get(k, ChipConfig.model_fields[k].default) * factor
    out["pixel_pitch_m"] = out["pixel_pitch_m"] / factor
    return out


def grid_refinement(coarse: ChipConfig, fine: ChipConfig) -> int | None:
    """The whole factor ``f`` with ``fine`` the same physical chip as ``coarse`` on a grid
    ``f`` times finer (:func:`finer_grid_fields`; 1 when they are equal), or ``None`` when
    ``fine`` is another chip or a coarser grid. A coarse-to-fine training resume
    (``lightgen train --resume --refine``) is allowed exactly when this is not ``None``."""
    f = round(coarse.pixel_pitch_m / fine.pixel_pitch_m)
    if f < 1:
        return None
    want = finer_grid_fields(coarse.model_dump(), f)
    have = fine.model_dump()
    pitch_ok = math.isclose(want.pop("pixel_pitch_m"), have.pop("pixel_pitch_m"), rel_tol=1e-9)
    return f if pitch_ok and want == have else None
