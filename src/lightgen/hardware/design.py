"""A plain, frozen description of a LightGen chip's *physical* design.

:class:`ChipDesign` is what the performance model (:mod:`lightgen.hardware.perf`)
and the fabrication/lab export (:mod:`lightgen.export`) read. It holds no tensors
and no trainable state, so it is cheap to build, compare, save as JSON and hand to
a lab. The chip package converts a trained ``LightGenChip`` into one.

Light path (planes in order)::

    input device --d_e[0]--> enc01 --d_e[1]--> ... encK --d_e[K]--> fiber facets
    fiber facets (emit) --d_g[0]--> gen1_01 --> ... gen1_K' --d_g[K']--> camera

``encoder_distances_m`` has ``K + 1`` entries, ``generator_distances_m`` ``K' + 1``;
each of the ``n_generators`` generators repeats the generator stack and owns a
camera. Coordinates follow :class:`lightgen.optics.grid.Grid` (pixel ``i`` of ``n``
at ``(i - n // 2) * pitch``); fiber positions are ``(y, x)`` in metres like
:func:`lightgen.optics.fibers.fiber_positions_m`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lightgen._checks import require_int_range, require_positive

#: Input-device kinds the performance model knows (see :mod:`lightgen.hardware.devices`).
INPUT_DEVICE_KINDS: tuple[str, ...] = ("slm", "dmd", "ideal")
PACKAGINGS: tuple[str, ...] = ("stacked", "planar")
#: Speed of light in vacuum, m/s (exact, SI).
C_M_PER_S = 299_792_458.0
#: Bumped when the JSON layout of :meth:`ChipDesign.to_dict` changes.
DESIGN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class LayerSpec:
    """One diffractive layer: ``n_y`` x ``n_x`` neurons (pixels) at ``pixel_pitch_m``."""

    n_y: int
    n_x: int
    pixel_pitch_m: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_y", require_int_range("LayerSpec.n_y", self.n_y, 1))
        object.__setattr__(self, "n_x", require_int_range("LayerSpec.n_x", self.n_x, 1))
        object.__setattr__(
            self,
            "pixel_pitch_m",
            require_positive(
                "LayerSpec.pixel_pitch_m",
                self.pixel_pitch_m,
                "Give the pitch in metres, e.g. 8e-6.",
            ),
        )

    @property
    def neurons(self) -> int:
        return self.n_y * self.n_x

    @property
    def aperture_m(self) -> tuple[float, float]:
        """Physical size ``(n_y * pitch, n_x * pitch)`` in metres."""
        return (self.n_y * self.pixel_pitch_m, self.n_x * self.pixel_pitch_m)

    @property
    def area_m2(self) -> float:
        return self.aperture_m[0] * self.aperture_m[1]


def _layer(name: str, value: Any) -> LayerSpec:
    if isinstance(value, LayerSpec):
        return value
    if isinstance(value, dict):
        return LayerSpec(**value)
    try:
        n_y, n_x, pitch = value
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={value!r} is not a layer; give LayerSpec(n_y, n_x, pixel_pitch_m) "
            "or a tuple (n_y, n_x, pixel_pitch_m)."
        ) from None
    return LayerSpec(n_y, n_x, pitch)


def _shape(name: str, value: Any) -> tuple[int, int]:
    try:
        h, w = value
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be (n_y, n_x) pixels, e.g. (512, 512).") from None
    return (require_int_range(f"{name}[0]", h, 1), require_int_range(f"{name}[1]", w, 1))


def _distances(name: str, values: Any, expected: int) -> tuple[float, ...]:
    vals = tuple(values)
    if len(vals) != expected:
        raise ValueError(
            f"{name} has {len(vals)} entries but the design needs {expected} (one gap before "
            "each layer and one after the last). Give plane-to-plane distances in metres."
        )
    return tuple(
        require_positive(f"{name}[{i}]", v, "Distances are in metres, e.g. 20e-3.")
        for i, v in enumerate(vals)
    )


@dataclass(frozen=True, kw_only=True)
class ChipDesign:
    """Physical parameters of one LightGen chip (see the module docstring for the path).

    Attributes:
        name: label printed in reports and design sheets.
        wavelengths_m: vacuum wavelengths, one per colour channel.
        input_device: ``"slm"``, ``"dmd"`` or ``"ideal"`` (a modulator that is never the
            bottleneck); the performance model takes its frame rate and power from
            :mod:`lightgen.hardware.devices` unless told otherwise.
        input_shape, input_pixel_pitch_m: input-device pixels ``(n_y, n_x)`` and pitch.
        encoder_layers, generator_layers: the diffractive layers (one generator stack;
            it is repeated ``n_generators`` times).
        encoder_distances_m: ``K + 1`` gaps: input -> enc01 -> ... -> encK -> fiber facets.
        generator_distances_m: ``K' + 1`` gaps: fiber facets -> gen01 -> ... -> camera.
        n_fibers, fiber_positions_m: single-mode fibers and their ``(y, x)`` centres
            in metres in the fiber plane (same on both facets).
        fiber_length_m, fiber_group_index, fiber_loss_db: for latency and losses.
        fiber_nonlinear: ``True`` if the latent is read out and re-emitted (O-E-O) or
            otherwise passes a nonlinearity; coupling into a single-mode fiber is linear
            in the field, so the default is ``False``.
        camera_shape, camera_pixel_pitch_m: camera pixels per generator and pitch.
        material: layer material, a name known to :func:`lightgen.optics.materials.get_material`
            unless ``refractive_indices`` is given.
        refractive_indices: optional ``n`` per wavelength (overrides the material's
            dispersion model; needed for materials that module does not know).
        ambient_index: index of the medium between and around the layers (air: 1).
        has_amplitude: layers also modulate amplitude (exported as extra maps).
        n_generators: generator stacks sharing the latent space.
        packaging: ``"stacked"`` (3-D: layers on top of each other, footprint = largest
            aperture) or ``"planar"`` (all apertures side by side).
        package_area_m2: measured/declared chip area; if ``None`` the area is derived
            from apertures and packaging.
    """

    name: str = "custom"
    wavelengths_m: tuple[float, ...]
    input_device: str = "slm"
    input_shape: tuple[int, int]
    input_pixel_pitch_m: float
    encoder_layers: tuple[LayerSpec, ...]
    generator_layers: tuple[LayerSpec, ...]
    encoder_distances_m: tuple[float, ...]
    generator_distances_m: tuple[float, ...]
    n_fibers: int
    fiber_positions_m: tuple[tuple[float, float], ...]
    fiber_length_m: float = 0.05
    fiber_group_index: float = 1.468
    fiber_loss_db: float = 0.0
    fiber_nonlinear: bool = False
    camera_shape: tuple[int, int]
    camera_pixel_pitch_m: float
    material: str = "fused_silica"
    refractive_indices: tuple[float, ...] | None = None
    ambient_index: float = 1.0
    has_amplitude: bool = False
    n_generators: int = 1
    packaging: str = "stacked"
    package_area_m2: float | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        s = object.__setattr__
        wl = self.wavelengths_m
        wl = (wl,) if isinstance(wl, int | float) else tuple(wl)
        if not wl:
            raise ValueError(
                "wavelengths_m is empty; give at least one wavelength in metres, e.g. (532e-9,)."
            )
        for i, w in enumerate(wl):
            require_positive(f"wavelengths_m[{i}]", w, "Give wavelengths in metres, e.g. 532e-9.")
            if w > 1e-3:
                raise ValueError(
                    f"wavelengths_m[{i}]={w!r} is over 1 mm; wavelengths are in metres (532 nm = "
                    "532e-9)."
                )
        s(self, "wavelengths_m", tuple(float(w) for w in wl))
        if self.input_device not in INPUT_DEVICE_KINDS:
            raise ValueError(
                f"input_device={self.input_device!r} is unknown; choose one of "
                f"{INPUT_DEVICE_KINDS}."
            )
        s(self, "input_shape", _shape("input_shape", self.input_shape))
        s(self, "camera_shape", _shape("camera_shape", self.camera_shape))
        for name in ("input_pixel_pitch_m", "camera_pixel_pitch_m"):
            s(
                self,
                name,
                require_positive(name, getattr(self, name), "Give the pitch in metres, e.g. 8e-6."),
            )
        enc = tuple(_layer(f"encoder_layers[{i}]", v) for i, v in enumerate(self.encoder_layers))
        gen = tuple(
            _layer(f"generator_layers[{i}]", v) for i, v in enumerate(self.generator_layers)
        )
        if not enc or not gen:
            raise ValueError(
                "encoder_layers and generator_layers must each hold at least one layer "
                f"(got {len(enc)} and {len(gen)}); a LightGen chip has both stacks."
            )
        s(self, "encoder_layers", enc)
        s(self, "generator_layers", gen)
        s(
            self,
            "encoder_distances_m",
            _distances("encoder_distances_m", self.encoder_distances_m, len(enc) + 1),
        )
        s(
            self,
            "generator_distances_m",
            _distances("generator_distances_m", self.generator_distances_m, len(gen) + 1),
        )
        s(
            self,
            "n_fibers",
            require_int_range(
                "n_fibers", self.n_fibers, 1, fix="Give the number of fibers, e.g. 100."
            ),
        )
        pos = tuple(tuple(float(c) for c in p) for p in self.fiber_positions_m)
        if len(pos) != self.n_fibers or any(len(p) != 2 for p in pos):
            raise ValueError(
                f"fiber_positions_m has {len(pos)} entries for n_fibers={self.n_fibers}; give one "
                "(y_m, x_m) pair per fiber, e.g. from lightgen.optics.fibers.fiber_positions_m()."
            )
        if not all(math.isfinite(c) for p in pos for c in p):
            raise ValueError(
                "fiber_positions_m holds a non-finite coordinate; give (y_m, x_m) in metres."
            )
        s(self, "fiber_positions_m", pos)
        s(
            self,
            "fiber_length_m",
            require_positive("fiber_length_m", self.fiber_length_m, "Fiber length in metres."),
        )
        s(
            self,
            "fiber_group_index",
            require_positive(
                "fiber_group_index", self.fiber_group_index, "Silica fiber: about 1.468."
            ),
        )
        loss = float(self.fiber_loss_db)
        if not math.isfinite(loss) or loss < 0:
            raise ValueError(
                f"fiber_loss_db must be >= 0 dB, got {self.fiber_loss_db!r}. 0 means lossless."
            )
        s(self, "fiber_loss_db", loss)
        s(
            self,
            "ambient_index",
            require_positive("ambient_index", self.ambient_index, "Air is 1.0."),
        )
        s(
            self,
            "n_generators",
            require_int_range(
                "n_generators", self.n_generators, 1, fix="A chip has at least one generator."
            ),
        )
        if self.packaging not in PACKAGINGS:
            raise ValueError(
                f"packaging={self.packaging!r} is unknown; choose one of {PACKAGINGS}."
            )
        if self.package_area_m2 is not None:
            s(
                self,
                "package_area_m2",
                require_positive(
                    "package_area_m2",
                    self.package_area_m2,
                    "Give the area in m^2 (136.5 mm^2 = 136.5e-6).",
                ),
            )
        if self.refractive_indices is not None:
            n = tuple(self.refractive_indices)
            if len(n) != len(self.wavelengths_m):
                raise ValueError(
                    f"refractive_indices has {len(n)} values for {len(self.wavelengths_m)} "
                    "wavelengths; "
                    "give one index per wavelength or None to use the material's dispersion model."
                )
            s(
                self,
                "refractive_indices",
                tuple(require_positive(f"refractive_indices[{i}]", v) for i, v in enumerate(n)),
            )
        else:
            self.indices()  # validate material and wavelength range now, not at export time
        s(self, "notes", tuple(str(n) for n in self.notes))

    # ------------------------------------------------------------------ derived
    @property
    def n_wavelengths(self) -> int:
        return len(self.wavelengths_m)

    @property
    def input_pixels(self) -> int:
        return self.input_shape[0] * self.input_shape[1]

    @property
    def camera_pixels(self) -> int:
        """Camera pixels per generator."""
        return self.camera_shape[0] * self.camera_shape[1]

    def layers(self) -> list[tuple[str, LayerSpec]]:
        """All physical layers in export order: ``enc01..encK`` then ``gen{g}_{k:02d}``."""
        out = [(f"enc{k + 1:02d}", spec) for k, spec in enumerate(self.encoder_layers)]
        for g in range(self.n_generators):
            out += [
                (f"gen{g + 1}_{k + 1:02d}", spec) for k, spec in enumerate(self.generator_layers)
            ]
        return out

    def layer_names(self) -> list[str]:
        return [name for name, _ in self.layers()]

    def neurons(self) -> dict[str, int]:
        """Diffractive neurons (pixels of every physical layer), per stack and total."""
        enc = sum(s.neurons for s in self.encoder_layers)
        gen = self.n_generators * sum(s.neurons for s in self.generator_layers)
        return {"encoder": enc, "generators": gen, "total": enc + gen}

    def indices(self) -> tuple[float, ...]:
        """Refractive index of the layer material at each wavelength."""
        if self.refractive_indices is not None:
            return self.refractive_indices
        from lightgen.optics.materials import get_material

        mat = get_material(self.material)
        return tuple(mat.refractive_index(w) for w in self.wavelengths_m)

    def phase_per_height_rad_per_m(self) -> tuple[float, ...]:
        r"""``2π (n(λ) - n_amb) / λ`` per wavelength (thin element, Goodman §5.1)."""
        out = []
        for w, n in zip(self.wavelengths_m, self.indices(), strict=True):
            if n == self.ambient_index:
                raise ValueError(
                    f"material {self.material!r} has n={n:g} = ambient_index at wavelength {w:g} "
                    "m: "
                    "a height map gives no phase. Use a different material or ambient_index."
                )
            out.append(2 * math.pi * (n - self.ambient_index) / w)
        return tuple(out)

    def free_space_path_m(self) -> float:
        """Geometric free-space length from input to one camera, metres."""
        return sum(self.encoder_distances_m) + sum(self.generator_distances_m)

    def optical_path_m(self) -> float:
        """Optical path length input -> camera: ``n_amb * free space + n_g * fiber``, metres."""
        return (
            self.ambient_index * self.free_space_path_m()
            + self.fiber_group_index * self.fiber_length_m
        )

    def latency_s(self) -> float:
        """Time of flight of one frame through the chip: optical path / c."""
        return self.optical_path_m() / C_M_PER_S

    def footprint_m2(self, packaging: str | None = None) -> float:
        """Area from the layer apertures: the largest (``stacked``) or their sum (``planar``)."""
        pk = packaging or self.packaging
        if pk not in PACKAGINGS:
            raise ValueError(f"packaging={pk!r} is unknown; choose one of {PACKAGINGS}.")
        areas = [spec.area_m2 for _, spec in self.layers()]
        return max(areas) if pk == "stacked" else sum(areas)

    def area_m2(self) -> tuple[float, str]:
        """``(area, source)``: the declared package area if any, else the aperture footprint."""
        if self.package_area_m2 is not None:
            return self.package_area_m2, "package_area_m2"
        return self.footprint_m2(), f"{self.packaging} aperture footprint"

    # -------------------------------------------------------------- serialising
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (units in the key names); inverse of :meth:`from_dict`."""
        d = asdict(self)
        d["encoder_layers"] = [asdict(s) for s in self.encoder_layers]
        d["generator_layers"] = [asdict(s) for s in self.generator_layers]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        d["format_version"] = DESIGN_FORMAT_VERSION
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChipDesign:
        d = dict(data)
        version = d.pop("format_version", DESIGN_FORMAT_VERSION)
        if version != DESIGN_FORMAT_VERSION:
            raise ValueError(
                f"design format_version={version!r} is not supported (this lightgen reads "
                f"{DESIGN_FORMAT_VERSION}); re-export the design with this version."
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"design dict has unknown keys {unknown}; known keys are {sorted(known)}."
            )
        for k in ("wavelengths_m", "encoder_distances_m", "generator_distances_m", "notes"):
            if k in d:
                d[k] = tuple(d[k])
        for k in ("input_shape", "camera_shape"):
            if k in d:
                d[k] = tuple(d[k])
        if d.get("refractive_indices") is not None:
            d["refractive_indices"] = tuple(d["refractive_indices"])
        d["fiber_positions_m"] = tuple(tuple(p) for p in d.get("fiber_positions_m", ()))
        d["encoder_layers"] = tuple(
            _layer("encoder_layers", v) for v in d.get("encoder_layers", ())
        )
        d["generator_layers"] = tuple(
            _layer("generator_layers", v) for v in d.get("generator_layers", ())
        )
        return cls(**d)

    def replace(self, **changes: Any) -> ChipDesign:
        """A validated copy with some fields changed."""
        return replace(self, **changes)


def grid_fiber_positions_m(
    n_fibers: int, pitch_m: float, layout: str = "square"
) -> tuple[tuple[float, float], ...]:
    """``(y, x)`` centres of ``n_fibers``, row-major, centred on the axis, as plain floats.

    The layout of :func:`lightgen.optics.fibers.fiber_positions_m` (``"square"`` grid or
    ``"hex"`` close packing), in the form :attr:`ChipDesign.fiber_positions_m` holds.
    """
    from lightgen.optics.fibers import fiber_positions_m

    return tuple(
        (float(y), float(x)) for y, x in fiber_positions_m(n_fibers, pitch_m, layout).tolist()
    )
