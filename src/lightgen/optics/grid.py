"""Sampling grids and fields: the physics every tensor carries.

Layout convention (PyTorch channel-first): a field is a complex tensor of shape
``(batch, wavelength, H, W)``; intensities are real tensors of the same shape.
Coordinates follow the FFT convention: pixel ``i`` sits at ``(i - n // 2) * pitch``
so the centre pixel of an even grid is at 0 and ``fftshift`` maps frequency 0 there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lightgen._checks import require_int_range, require_positive, require_positive_all

COMPLEX_DTYPES = (torch.complex64, torch.complex128)


@dataclass(frozen=True)
class Grid:
    """A square-pixel sampling grid at one or more wavelengths.

    Attributes:
        shape: ``(H, W)`` samples.
        pixel_pitch_m: sample spacing in metres (same in x and y).
        wavelengths_m: vacuum wavelengths in metres, one per field channel.
    """

    shape: tuple[int, int]
    pixel_pitch_m: float
    wavelengths_m: tuple[float, ...] = field(default=(532e-9,))

    def __post_init__(self) -> None:
        shape = tuple(self.shape)
        if len(shape) != 2:
            raise ValueError(f"Grid.shape must be (H, W), got {self.shape!r}. Pass two integers.")
        shape = tuple(require_int_range(f"Grid.shape[{i}]", s, 1) for i, s in enumerate(shape))
        object.__setattr__(self, "shape", shape)
        object.__setattr__(
            self,
            "pixel_pitch_m",
            require_positive(
                "pixel_pitch_m", self.pixel_pitch_m, "Give the pitch in metres, e.g. 8e-6."
            ),
        )
        wl = self.wavelengths_m
        if isinstance(wl, int | float):
            wl = (wl,)
        wl = require_positive_all("wavelengths_m", wl, "Give wavelengths in metres, e.g. 532e-9.")
        for i, w in enumerate(wl):
            if w > 1e-3:
                raise ValueError(
                    f"wavelengths_m[{i}]={w!r} is over 1 mm; wavelengths are in metres (532 nm = 532e-9)."
                )
        object.__setattr__(self, "wavelengths_m", wl)

    @property
    def n_wavelengths(self) -> int:
        return len(self.wavelengths_m)

    @property
    def extent_m(self) -> tuple[float, float]:
        """Physical size ``(H * pitch, W * pitch)`` in metres."""
        return (self.shape[0] * self.pixel_pitch_m, self.shape[1] * self.pixel_pitch_m)

    def with_shape(self, shape: tuple[int, int]) -> Grid:
        return Grid(tuple(shape), self.pixel_pitch_m, self.wavelengths_m)

    def with_pitch(self, pixel_pitch_m: float) -> Grid:
        return Grid(self.shape, pixel_pitch_m, self.wavelengths_m)

    def axes(self, device=None, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """1-D coordinates ``(y_m, x_m)`` in metres, FFT-centred (see module doc)."""
        h, w = self.shape
        y = (torch.arange(h, device=device, dtype=dtype) - h // 2) * self.pixel_pitch_m
        x = (torch.arange(w, device=device, dtype=dtype) - w // 2) * self.pixel_pitch_m
        return y, x

    def meshgrid(self, device=None, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """2-D coordinates ``(Y_m, X_m)``, each ``(H, W)``, in metres."""
        y, x = self.axes(device, dtype)
        return torch.meshgrid(y, x, indexing="ij")

    def wavelength_tensor(self, device=None, dtype=torch.float64) -> torch.Tensor:
        """Wavelengths in metres as a ``(L, 1, 1)`` tensor, broadcastable over fields."""
        return torch.tensor(self.wavelengths_m, device=device, dtype=dtype).view(-1, 1, 1)

    def check_field(self, field: torch.Tensor, name: str = "field") -> torch.Tensor:
        """Validate a complex ``(B, L, H, W)`` field on this grid; return it unchanged."""
        if not isinstance(field, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(field).__name__}.")
        if field.dtype not in COMPLEX_DTYPES:
            raise ValueError(
                f"{name} has dtype {field.dtype}; fields are complex64 or complex128. "
                f"Convert with field.to(torch.complex64) or build it with lightgen.optics.grid.as_field()."
            )
        if field.ndim != 4:
            raise ValueError(
                f"{name} has shape {tuple(field.shape)}; fields are (batch, wavelength, H, W). "
                f"Add missing axes with field[None, None] or reshape."
            )
        if field.shape[1] != self.n_wavelengths or tuple(field.shape[-2:]) != self.shape:
            raise ValueError(
                f"{name} has shape {tuple(field.shape)} but the grid expects "
                f"(batch, {self.n_wavelengths}, {self.shape[0]}, {self.shape[1]}) "
                f"({self.n_wavelengths} wavelength(s) {self.wavelengths_m} m). "
                f"Resample the input or build the element with a matching Grid."
            )
        return field


def as_field(amplitude: torch.Tensor, grid: Grid, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Turn a real amplitude ``(B, H, W)``, ``(B, 1, H, W)`` or ``(B, L, H, W)`` into a field.

    A single-channel amplitude is broadcast to every wavelength of ``grid``. ``dtype``
    defaults to the amplitude's precision (float64 -> complex128, else complex64), as
    every kernel and element follows the field's precision (the fiber mode tables, for
    one, are rebuilt in the field's precision): a float64 mode profile stays exact to
    float64 rounding instead of being rounded to float32 on the way in.
    """
    if dtype is None:
        dtype = torch.complex128 if amplitude.dtype == torch.float64 else torch.complex64
    if dtype not in COMPLEX_DTYPES:
        raise ValueError(f"dtype={dtype} is not complex; use torch.complex64 or torch.complex128.")
    a = amplitude
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise ValueError(
            f"amplitude has shape {tuple(amplitude.shape)}; expected (B, H, W) or (B, L, H, W)."
        )
    if a.shape[1] == 1 and grid.n_wavelengths > 1:
        a = a.expand(-1, grid.n_wavelengths, -1, -1)
    return grid.check_field(a.to(dtype), "amplitude")


def centred_start(n: int, side: int) -> int:
    """First sample of a ``side``-sample span centred on an ``n``-sample axis.

    The span's pixel ``side // 2`` lands on the axis pixel ``n // 2`` (the :class:`Grid`
    convention: pixel ``i`` of ``n`` sits at ``(i - n // 2) * pitch``), so a device of
    ``side`` pixels is centred on the optical axis for odd and even sizes alike.
    """
    return n // 2 - side // 2


def intensity(field: torch.Tensor) -> torch.Tensor:
    """|E|^2 (W/m^2 when E is in sqrt(W/m^2)), computed without a sqrt."""
    return field.real.square() + field.imag.square()


def power(field: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Optical power per (batch, wavelength) in watts: sum |E|^2 * pixel area."""
    return intensity(field).sum(dim=(-2, -1)) * grid.pixel_pitch_m**2


@dataclass
class Field:
    """A field tensor together with its grid (user-facing convenience).

    Kernels and modules take plain tensors plus a :class:`Grid` for speed; this
    wrapper keeps them together at API boundaries.
    """

    data: torch.Tensor
    grid: Grid

    def __post_init__(self) -> None:
        self.grid.check_field(self.data, "Field.data")

    def intensity(self) -> torch.Tensor:
        return intensity(self.data)

    def power_w(self) -> torch.Tensor:
        return power(self.data, self.grid)
