r"""Optical materials: refractive index n(λ) and the height <-> phase map of a thin element.

A diffractive (metasurface) layer is *one* physical height map :math:`h(x, y)`; each
wavelength sees its own phase from it (thin-element approximation, Goodman,
*Introduction to Fourier Optics*, 3rd ed., §5.1):

.. math:: \phi_\lambda(x, y) = \frac{2\pi}{\lambda}\,\big(n(\lambda) - n_{amb}\big)\,h(x, y)

The approximation ignores Fresnel reflection, multiple scattering and waveguiding
inside the structure; it holds when features are several wavelengths wide and the
height is about a wavelength (see docs/optics-elements.md).

Dispersion models (λ in micrometres inside the formula, as the literature writes
them; the API always takes metres):

* ``constant``: :math:`n = n_0`;
* ``cauchy``: :math:`n = A + B/\lambda^2 + C/\lambda^4`;
* ``sellmeier``: :math:`n^2 = \epsilon_\infty + \sum_i B_i\lambda^2/(\lambda^2 - C_i)`
  (:math:`\epsilon_\infty = 1` is the textbook form; a constant term lets forms such
  as Devore's :math:`A + B/(\lambda^2 - C)` be written exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lightgen._checks import require_finite, require_positive

MODELS: tuple[str, ...] = ("constant", "cauchy", "sellmeier")
_UM_PER_M = 1e6


@dataclass(frozen=True)
class Material:
    """A transparent material with a dispersion model.

    Attributes:
        name: label used in error messages and configs.
        model: ``"constant"``, ``"cauchy"`` or ``"sellmeier"`` (module docstring).
        coefficients: ``(n0,)`` for constant; ``(A, B_um2, C_um4)`` for Cauchy;
            ``(eps_inf, B1, C1_um2, B2, C2_um2, ...)`` for Sellmeier (λ in µm).
        valid_range_m: ``(λ_min, λ_max)`` in metres where the fit is valid; ``None``
            means any wavelength is accepted.
        reference: where the coefficients come from.
    """

    name: str
    model: str
    coefficients: tuple[float, ...]
    valid_range_m: tuple[float, float] | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"Material.model={self.model!r} is unknown; choose one of {MODELS}.")
        coeffs = tuple(
            require_finite(f"Material.coefficients[{i}]", c)
            for i, c in enumerate(self.coefficients)
        )
        expected = {"constant": "1 value (n0,)", "cauchy": "3 values (A, B_um2, C_um4)"}
        if self.model == "constant" and len(coeffs) != 1:
            raise ValueError(
                f"Material.coefficients={coeffs!r} for model 'constant' must be "
                f"{expected['constant']}."
            )
        if self.model == "cauchy" and len(coeffs) != 3:
            raise ValueError(
                f"Material.coefficients={coeffs!r} for model 'cauchy' must be {expected['cauchy']}."
            )
        if self.model == "sellmeier" and (len(coeffs) < 3 or len(coeffs) % 2 != 1):
            raise ValueError(
                f"Material.coefficients={coeffs!r} for model 'sellmeier' must be "
                "(eps_inf, B1, C1_um2, B2, C2_um2, ...): an odd count >= 3."
            )
        if self.model == "constant":
            require_positive("n0 (Material.constant refractive index)", coeffs[0])
        object.__setattr__(self, "coefficients", coeffs)
        if self.valid_range_m is not None:
            lo, hi = (float(v) for v in self.valid_range_m)
            require_positive("Material.valid_range_m[0]", lo, "Give wavelengths in metres.")
            if not hi > lo:
                raise ValueError(
                    f"Material.valid_range_m={self.valid_range_m!r} must be (min, max) with "
                    "max > min, in metres."
                )
            object.__setattr__(self, "valid_range_m", (lo, hi))

    # ----------------------------------------------------------------- builders
    @classmethod
    def constant(cls, name: str, n: float) -> Material:
        """A dispersion-free material of index ``n`` at every wavelength."""
        return cls(name, "constant", (float(n),), None, "constant index")

    @classmethod
    def cauchy(
        cls,
        name: str,
        a: float,
        b_um2: float = 0.0,
        c_um4: float = 0.0,
        valid_range_m: tuple[float, float] | None = None,
        reference: str = "",
    ) -> Material:
        """Cauchy fit ``n = a + b_um2/λ² + c_um4/λ⁴`` with λ in µm."""
        return cls(name, "cauchy", (a, b_um2, c_um4), valid_range_m, reference)

    @classmethod
    def sellmeier(
        cls,
        name: str,
        b: Sequence[float],
        c_um2: Sequence[float],
        eps_inf: float = 1.0,
        valid_range_m: tuple[float, float] | None = None,
        reference: str = "",
    ) -> Material:
        """Sellmeier fit ``n² = eps_inf + Σ b_i λ²/(λ² - c_i)`` with λ in µm (c_i in µm²)."""
        if len(b) != len(c_um2):
            raise ValueError(
                f"Material.sellmeier got {len(b)} b terms and {len(c_um2)} c_um2 terms; "
                "pass one c_um2 per b."
            )
        coeffs: list[float] = [eps_inf]
        for bi, ci in zip(b, c_um2, strict=True):
            coeffs += [bi, ci]
        return cls(name, "sellmeier", tuple(coeffs), valid_range_m, reference)

    # ---------------------------------------------------------------- evaluation
    def _check_range(self, lo_m: float, hi_m: float) -> None:
        if self.valid_range_m is None:
            return
        vlo, vhi = self.valid_range_m
        bad = lo_m if lo_m < vlo else hi_m if hi_m > vhi else None
        if bad is not None:
            raise ValueError(
                f"wavelength_m={bad:g} is outside the validity range of material "
                f"{self.name!r}: [{vlo:g}, {vhi:g}] m ({self.reference}). Use a wavelength in "
                "that range or define a Material with a fit that covers yours."
            )

    def _n_um(self, lam_um):
        """n at λ in µm; works on floats and tensors alike."""
        c = self.coefficients
        if self.model == "constant":
            return lam_um * 0 + c[0]
        if self.model == "cauchy":
            lam2 = lam_um * lam_um
            return c[0] + c[1] / lam2 + c[2] / (lam2 * lam2)
        lam2 = lam_um * lam_um
        n2 = lam2 * 0 + c[0]
        for bi, ci in zip(c[1::2], c[2::2], strict=True):
            n2 = n2 + bi * lam2 / (lam2 - ci)
        return n2**0.5

    def refractive_index(self, wavelength_m: float) -> float:
        """Real refractive index at one vacuum wavelength (metres)."""
        lam = require_positive("wavelength_m", wavelength_m, "Give the wavelength in metres.")
        self._check_range(lam, lam)
        n = self._n_um(lam * _UM_PER_M)
        if isinstance(n, complex) or not math.isfinite(n) or n <= 0:
            raise ValueError(
                f"wavelength_m={lam:g} puts material {self.name!r} on a pole/absorption band "
                f"of its {self.model} model (n={n}); use a wavelength inside valid_range_m."
            )
        return float(n)

    def refractive_index_tensor(self, wavelength_m: torch.Tensor) -> torch.Tensor:
        """Elementwise n(λ) for a tensor of wavelengths in metres (same shape, device, dtype).

        Evaluate in float64: the Sellmeier poles and the µm conversion lose digits in float32.
        """
        if not isinstance(wavelength_m, torch.Tensor):
            wavelength_m = torch.as_tensor(wavelength_m, dtype=torch.float64)
        if wavelength_m.numel() == 0:
            return wavelength_m.clone()
        lo, hi = float(wavelength_m.min()), float(wavelength_m.max())
        if not lo > 0 or not math.isfinite(hi):
            raise ValueError(
                f"wavelength_m holds {lo:g}..{hi:g}; wavelengths must be positive finite metres."
            )
        self._check_range(lo, hi)
        n = self._n_um(wavelength_m.to(torch.float64) * _UM_PER_M)
        return n.to(wavelength_m.dtype) if wavelength_m.is_floating_point() else n


# ------------------------------------------------------------------ built-ins
_MALITSON = "Malitson 1965, J. Opt. Soc. Am. 55, 1205 (fused silica, 20 °C)"
_LUKE = "Luke et al. 2015, Opt. Lett. 40, 4823 (LPCVD Si3N4)"
_DEVORE = "Devore 1951, J. Opt. Soc. Am. 41, 416 (rutile TiO2, ordinary ray)"

# Devore writes n_o² = 5.913 + 0.2441/(λ² - 0.0803). With B/(λ²-C) = (B/C)(λ²/(λ²-C) - 1)
# that is exactly a one-term Sellmeier with eps_inf = 5.913 - B/C.
_DEVORE_B_UM2, _DEVORE_C_UM2 = 0.2441, 0.0803

BUILTIN_MATERIALS: dict[str, Material] = {
    "fused_silica": Material.sellmeier(
        "fused_silica",
        b=(0.6961663, 0.4079426, 0.8974794),
        c_um2=(0.0684043**2, 0.1162414**2, 9.896161**2),
        valid_range_m=(0.21e-6, 3.71e-6),
        reference=_MALITSON,
    ),
    "tio2": Material.sellmeier(
        "tio2",
        b=(_DEVORE_B_UM2 / _DEVORE_C_UM2,),
        c_um2=(_DEVORE_C_UM2,),
        eps_inf=5.913 - _DEVORE_B_UM2 / _DEVORE_C_UM2,
        valid_range_m=(0.43e-6, 1.53e-6),
        reference=_DEVORE,
    ),
    "sin": Material.sellmeier(
        "sin",
        b=(3.0249, 40314.0),
        c_um2=(0.1353406**2, 1239.842**2),
        valid_range_m=(0.31e-6, 5.504e-6),
        reference=_LUKE,
    ),
}


def get_material(name: str | Material) -> Material:
    """A built-in material by name (``"fused_silica"``, ``"tio2"``, ``"sin"``); a
    :class:`Material` passes through unchanged."""
    if isinstance(name, Material):
        return name
    key = str(name).strip().lower()
    if key not in BUILTIN_MATERIALS:
        raise ValueError(
            f"material={name!r} is unknown; known materials are {tuple(BUILTIN_MATERIALS)}. "
            "For anything else build one with Material.constant/cauchy/sellmeier."
        )
    return BUILTIN_MATERIALS[key]


# ------------------------------------------------------------ height <-> phase
def _index_contrast(material: Material, wavelength_m: float, ambient_index: float) -> float:
    n = get_material(material).refractive_index(wavelength_m)
    amb = require_positive("ambient_index", ambient_index, "Air is 1.0.")
    if n == amb:
        raise ValueError(
            f"material {get_material(material).name!r} has n={n:g} equal to ambient_index={amb:g} "
            f"at wavelength_m={wavelength_m:g}: a height map gives no phase. Use a material "
            "with a different index."
        )
    return n - amb


def phase_per_height(
    material: Material | str,
    wavelengths_m: Sequence[float] | float,
    ambient_index: float = 1.0,
    device=None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``2π (n(λ) - n_amb) / λ`` in rad/m for each wavelength, shape ``(L, 1, 1)``."""
    wl = (wavelengths_m,) if isinstance(wavelengths_m, int | float) else tuple(wavelengths_m)
    if not wl:
        raise ValueError("wavelengths_m is empty; give at least one wavelength in metres.")
    k = [
        2
        * math.pi
        * _index_contrast(material, require_positive("wavelength_m", w), ambient_index)
        / w
        for w in wl
    ]
    return torch.tensor(k, dtype=torch.float64, device=device).view(-1, 1, 1).to(dtype)


def height_to_phase(
    height_m: torch.Tensor,
    material: Material | str,
    wavelengths_m: Sequence[float] | float,
    ambient_index: float = 1.0,
) -> torch.Tensor:
    r"""Phase delay of a thin height map at each wavelength (thin-element approximation).

    :math:`\phi_\lambda = 2\pi (n(\lambda) - n_{amb})\,h/\lambda` (Goodman §5.1).

    Args:
        height_m: real tensor ``(H, W)`` (any shape ``S``) of heights in metres.
        material: a :class:`Material` or built-in name.
        wavelengths_m: ``L`` vacuum wavelengths in metres.
        ambient_index: index of the medium filling the gaps (air: 1).

    Returns:
        ``phase_rad`` of shape ``(L, *S)``, same dtype/device as ``height_m``;
        differentiable in ``height_m``.
    """
    if not isinstance(height_m, torch.Tensor) or height_m.is_complex():
        raise ValueError("height_m must be a real torch.Tensor of heights in metres.")
    k = phase_per_height(material, wavelengths_m, ambient_index, height_m.device, height_m.dtype)
    k = k.reshape(-1, *([1] * height_m.ndim))
    return k * height_m.unsqueeze(0)


def phase_to_height(
    phase_rad: torch.Tensor | float,
    material: Material | str,
    wavelength_m: float,
    ambient_index: float = 1.0,
) -> torch.Tensor | float:
    """Height in metres giving ``phase_rad`` at one wavelength: ``h = φ λ / (2π (n - n_amb))``."""
    lam = require_positive("wavelength_m", wavelength_m, "Give the wavelength in metres.")
    return phase_rad * lam / (2 * math.pi * _index_contrast(material, lam, ambient_index))


def two_pi_height_m(
    material: Material | str, wavelength_m: float, ambient_index: float = 1.0
) -> float:
    """Height whose phase delay is exactly 2π at ``wavelength_m``: ``λ / |n(λ) - n_amb|``."""
    return abs(float(phase_to_height(2 * math.pi, material, wavelength_m, ambient_index)))
