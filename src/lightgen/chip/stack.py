"""A diffractive stack: metasurface layers with free space before, between and after."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightgen.optics.elements import MetasurfaceLayer
from lightgen.optics.grid import Grid
from lightgen.optics.propagation import FAST_TAIL_TOLERANCE, FreeSpace


class DiffractiveStack(nn.Module):
    """``FreeSpace(first) -> [layer -> FreeSpace(gap)]* -> layer -> FreeSpace(last)``.

    All layers are passive metasurfaces: one trainable height map each, shared by
    every wavelength (per-wavelength phase through the material's n(lambda)).
    Equal distances share one cached transfer function.

    Args:
        grid: sampling grid of every plane.
        n_layers: number of metasurface layers.
        first_distance_m, spacing_m, last_distance_m: free-space gaps in metres
            (a first or last gap of 0 is no propagation: the layer sits in that plane).
        activation_checkpointing: recompute each layer's fields in the backward pass
            instead of storing them (for large grids; trades ~1.3x time for memory).
        tail_tolerance: the padding planner's guard-band tolerance
            (:func:`lightgen.optics.propagation.guard_samples`); default the chips'
            ``FAST_TAIL_TOLERANCE`` (2e-3), as ``ChipConfig``.
        padding: the planner's padding, ``"auto"`` or ``"linear"`` (exact open-boundary
            propagation, :func:`lightgen.optics.propagation.asm_windowed_kernel`).
        filter_radius_m: every layer's conic filter radius in metres (``None``: none;
            :class:`~lightgen.optics.elements.MetasurfaceLayer`).
        pixel_samples: grid samples per metasurface pixel side (default 1).
    """

    def __init__(
        self,
        grid: Grid,
        n_layers: int,
        first_distance_m: float,
        spacing_m: float,
        last_distance_m: float,
        material: str = "fused_silica",
        amplitude: bool = False,
        quantization_levels: int | None = None,
        activation_checkpointing: bool = False,
        tail_tolerance: float = FAST_TAIL_TOLERANCE,
        padding: str = "auto",
        filter_radius_m: float | None = None,
        pixel_samples: int = 1,
    ) -> None:
        super().__init__()
        self.grid = grid
        cache: dict[float, FreeSpace] = {}

        def free(d: float) -> FreeSpace | None:
            if d == 0:
                return None
            if d not in cache:
                cache[d] = FreeSpace(grid, d, padding=padding, tail_tolerance=tail_tolerance)
            return cache[d]

        self.layers = nn.ModuleList(
            MetasurfaceLayer(
                grid,
                material=material,
                amplitude=amplitude,
                quantization=quantization_levels,
                filter_radius_m=filter_radius_m,
                pixel_samples=pixel_samples,
            )
            for _ in range(n_layers)
        )
        gaps = (
            [free(first_distance_m)] + [free(spacing_m)] * (n_layers - 1) + [free(last_distance_m)]
        )
        # a plain list keeps shared FreeSpace modules from being registered twice
        self._gaps = gaps
        self.free_spaces = nn.ModuleList(cache.values())
        self.activation_checkpointing = activation_checkpointing

    def _step(self, i: int, field: torch.Tensor) -> torch.Tensor:
        field = self.layers[i](field)
        gap = self._gaps[i + 1]
        return field if gap is None else gap(field)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if self._gaps[0] is not None:
            field = self._gaps[0](field)
        for i in range(len(self.layers)):
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                field = checkpoint(self._step, i, field, use_reentrant=False)
            else:
                field = self._step(i, field)
        return field

    def hops(self) -> list[FreeSpace]:
        """The free-space hops one forward pass runs, in order (zero-length gaps left out)."""
        return [g for g in self._gaps if g is not None]

    @torch.no_grad()
    def plane_fields(self, field: torch.Tensor) -> list[torch.Tensor]:
        """Fields ``(B, L, H, W)`` incident on each layer, then at the output plane
        (``n_layers + 1`` fields; the last one is what :meth:`forward` returns)."""
        out = []
        if self._gaps[0] is not None:
            field = self._gaps[0](field)
        for i in range(len(self.layers)):
            out.append(field)
            field = self._step(i, field)
        out.append(field)
        return out

    def height_maps_m(self) -> list[torch.Tensor]:
        """Height map of every layer, metres, each ``(H, W)``."""
        return [layer.height_m().detach() for layer in self.layers]
