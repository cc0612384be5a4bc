"""Adapter: a chip's :class:`ChipConfig` (and trained height maps) -> the hardware/export
description :class:`lightgen.hardware.ChipDesign`."""

from __future__ import annotations

from typing import Any

from lightgen.chip.config import ChipConfig
from lightgen.chip.presets import PACKAGING, preset
from lightgen.hardware.design import ChipDesign, LayerSpec, grid_fiber_positions_m


def chip_design(cfg: ChipConfig, **packaging: Any) -> ChipDesign:
    """The physical design of ``cfg`` for the performance model and the exporters.

    ``packaging`` sets the :class:`ChipDesign` fields the simulation does not know
    (``package_area_m2``, ``packaging``, ``notes``, ``fiber_length_m``, ...).
    """
    layer = LayerSpec(cfg.layer_pixels, cfg.layer_pixels, cfg.layer_pixel_pitch_m)
    gaps = [cfg.layer_spacing_m]
    return ChipDesign(
        name=cfg.name,
        wavelengths_m=cfg.wavelengths_m,
        input_device="slm",
        input_shape=(cfg.image_size,) * 2,
        input_pixel_pitch_m=cfg.slm_pixel_samples * cfg.pixel_pitch_m,
        encoder_layers=(layer,) * cfg.encoder_layers,
        generator_layers=(layer,) * cfg.generator_layers,
        encoder_distances_m=(
            cfg.input_to_encoder_m,
            *gaps * (cfg.encoder_layers - 1),
            cfg.encoder_to_fiber_m,
        ),
        generator_distances_m=(
            cfg.fiber_to_generator_m,
            *gaps * (cfg.generator_layers - 1),
            cfg.generator_to_camera_m,
        ),
        n_fibers=cfg.n_fibers,
        fiber_positions_m=grid_fiber_positions_m(cfg.n_fibers, cfg.fiber_pitch_m, cfg.fiber_layout),
        fiber_loss_db=cfg.fiber_loss_db,
        camera_shape=(cfg.image_size,) * 2,
        camera_pixel_pitch_m=cfg.camera_pixel_samples * cfg.pixel_pitch_m,
        material=cfg.material,
        has_amplitude=cfg.amplitude_layers,
        n_generators=cfg.n_generators,
        **packaging,
    )


def preset_design(name: str) -> ChipDesign:
    """The design of :func:`lightgen.chip.presets.preset` ``name`` with its packaging facts.

    The one source of named designs: ``preset_design("paper")`` is the chip that
    ``--preset paper`` trains, with the paper's 136.5 mm^2 package area.
    """
    return chip_design(preset(name), **PACKAGING.get(name, {}))


def chip_heights_m(chip) -> list:
    """Trained height maps in :meth:`ChipDesign.layers` order (enc01.., gen1_01.., ...)."""
    maps = chip.height_maps_m()
    out = list(maps["encoder"])
    for g in range(len(chip.generators)):
        out += maps[f"generator{g}"]
    return out


def chip_amplitudes(chip) -> list | None:
    if not chip.config.amplitude_layers:
        return None
    layers = list(chip.encoder.stack.layers)
    for g in chip.generators:
        layers += list(g.stack.layers)
    return [layer.amplitude().detach() for layer in layers]
