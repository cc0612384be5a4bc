"""Named chip designs, from a seconds-fast test chip to the paper's scale.

Fiber choice: standard single-mode fiber has a ~10 um mode-field diameter, which
an 8 um simulation pitch cannot resolve (the fiber module demands w >= 1.5 px).
The presets therefore use thermally-expanded-core (TEC) single-mode fibers, whose
mode-field diameter of tens of micrometres is standard for free-space coupling.
"""

from __future__ import annotations

from lightgen.chip.config import ChipConfig, finer_grid_fields

RGB_WAVELENGTHS_M = (640e-9, 532e-9, 450e-9)


def _distances(input_to_encoder_m: float, spacing_m: float) -> dict[str, float]:
    """The presets' free spaces: one gap before the first layer, ``spacing_m`` everywhere else."""
    return dict(
        input_to_encoder_m=input_to_encoder_m,
        layer_spacing_m=spacing_m,
        encoder_to_fiber_m=spacing_m,
        fiber_to_generator_m=spacing_m,
        generator_to_camera_m=spacing_m,
    )


PRESETS: dict[str, dict] = {
    # seconds on a CPU: for tests and quick looks
    "tiny": dict(
        name="tiny",
        grid_samples=48,
        pixel_pitch_m=8e-6,
        image_size=12,
        slm_pixel_samples=2,
        camera_pixel_samples=2,
        encoder_layers=2,
        generator_layers=2,
        **_distances(2e-3, 5e-3),
        n_fibers=16,
        fiber_pitch_m=64e-6,
        fiber_mode_field_diameter_m=24e-6,
    ),
    # minutes on a CPU: 28x28 grey digits, 100-fiber latent space
    "mnist": dict(
        name="mnist",
        grid_samples=112,
        pixel_pitch_m=8e-6,
        image_size=28,
        slm_pixel_samples=3,
        camera_pixel_samples=3,
        encoder_layers=3,
        generator_layers=3,
        **_distances(3e-3, 6e-3),
        n_fibers=100,
        fiber_pitch_m=80e-6,
        fiber_mode_field_diameter_m=24e-6,
    ),
    # 512x512 colour, RGB through one physical height map per layer
    "emoji-512": dict(
        name="emoji-512",
        wavelengths_m=RGB_WAVELENGTHS_M,
        grid_samples=512,
        pixel_pitch_m=8e-6,
        image_size=512,
        image_channels=3,
        encoder_layers=3,
        generator_layers=3,
        **_distances(10e-3, 20e-3),
        n_fibers=100,
        fiber_pitch_m=250e-6,
        fiber_mode_field_diameter_m=40e-6,
    ),
}
# the mnist chip with a 16-fiber latent space: fewer fiber modes, less speckle when
# sampling P(Z) (docs/results.md), at some cost in reconstruction fidelity
PRESETS["mnist-16f"] = {
    **PRESETS["mnist"],
    "name": "mnist-16f",
    "n_fibers": 16,
    "fiber_pitch_m": 200e-6,
}
# the same physical mnist-16f chip simulated on resolved pixels: every metasurface, SLM and
# camera pixel is 2 x 2 grid samples at 4 um (docs/physics.md, "layer_pixel_samples");
# one sample per pixel overstates trained chips (docs/design-study.md)
PRESETS["mnist-16f-r2"] = {**finer_grid_fields(PRESETS["mnist-16f"], 2), "name": "mnist-16f-r2"}
# colour emoji at 64 and 128 px (RGB as three wavelengths through one height map per layer)
PRESETS["emoji-64"] = {
    **PRESETS["mnist-16f"],
    "name": "emoji-64",
    "wavelengths_m": RGB_WAVELENGTHS_M,
    "image_channels": 3,
    "grid_samples": 160,
    "image_size": 64,
    "slm_pixel_samples": 2,
    "camera_pixel_samples": 2,
}
PRESETS["emoji-128"] = {
    **PRESETS["emoji-64"],
    "name": "emoji-128",
    "grid_samples": 288,
    "image_size": 128,
}
# the paper's scale: 512x512 input, 9 layers x 262,144 neurons = 2.36 M, 100-fiber OLS
PRESETS["paper"] = {  # packaging facts: PACKAGING below
    **PRESETS["emoji-512"],
    "name": "paper",
    "encoder_layers": 5,
    "generator_layers": 4,
}


#: The preset whose figures the paper states; ``lightgen perf --preset paper`` reconciles
#: the model with them.
PAPER_PRESET = "paper"

#: Packaging facts of a preset that the simulation does not use but the performance model
#: and the design sheet do (:func:`lightgen.chip.design.preset_design` passes them to
#: :class:`lightgen.hardware.ChipDesign`). Of the paper preset only "512 x 512 input",
#: "100 single-mode fibers", "> 2 M neurons" and "136.5 mm^2" come from the paper; the
#: rest is inferred (see docs/hardware.md).
PACKAGING: dict[str, dict] = {
    PAPER_PRESET: dict(
        packaging="stacked",
        package_area_m2=136.5e-6,
        notes=(
            "paper: 512x512 input, 100 single-mode fibers, >2 M neurons, 136.5 mm^2 chip",
            "inferred: wavelengths, layer split 5+4, 8 um pitch, distances, fiber length, camera",
        ),
    ),
}


def preset(name: str, /, **overrides) -> ChipConfig:
    """The named design, optionally with fields overridden (validated; ``name`` included)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return ChipConfig(**{**PRESETS[name], **overrides})
