r"""Per-layer maps as 16-bit PNG + NPY, with a JSON sidecar that says what the numbers mean.

Heights (metres, measured up from the substrate) are stored exactly in ``.npy``
(float64) and, for tools that read images (grayscale lithography, two-photon
printers), as a 16-bit PNG of codes :math:`q = \mathrm{round}((h - h_0)/\Delta h)` with
:math:`\Delta h = (h_{max} - h_0)/(2^{16}-1)` and :math:`h_0 = h_{min}`. Reading the PNG
back gives :math:`h_0 + q\Delta h`, within :math:`\Delta h/2` of the original; at
wavelength :math:`\lambda` that is a phase error of at most
:math:`\pi (n-n_{amb})\Delta h/\lambda` (thin element, Goodman §5.1) -- the sidecar
records both bounds. Amplitude maps (transmission in [0, 1]) use
:math:`h_0 = 0`, :math:`\Delta h = 1/(2^{16}-1)`.

Pixel ``(i, j)`` of an ``H x W`` map sits at ``y = (i - H//2) p``, ``x = (j - W//2) p``
(:class:`lightgen.optics.grid.Grid` convention), as in every other export file.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lightgen._io import atomic_write, atomic_write_bytes, atomic_write_text

BITS = 16
LEVELS = 2**BITS - 1
KINDS = ("height", "amplitude")


def as_array(name: str, values: Any) -> np.ndarray:
    """A finite float64 ``(H, W)`` numpy array from a tensor/array, or ValueError naming it."""
    try:
        import torch

        if isinstance(values, torch.Tensor):
            values = values.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    arr = np.asarray(values)
    if np.iscomplexobj(arr):
        raise ValueError(
            f"{name} is complex; pass real heights in metres (or amplitudes in [0, 1])."
        )
    arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} has shape {arr.shape}; a layer map is (H, W). Squeeze or index the batch axes."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf values; export only finite maps.")
    return arr


def quantise(values: np.ndarray, kind: str = "height") -> tuple[np.ndarray, float, float]:
    """``(codes uint16, offset, step)`` with ``values ~= offset + codes * step``."""
    if kind == "amplitude":
        offset, step = 0.0, 1.0 / LEVELS
    else:
        offset = float(values.min())
        span = float(values.max()) - offset
        step = span / LEVELS if span > 0 else 0.0
    codes = np.zeros(values.shape, np.uint16) if step == 0 else np.rint((values - offset) / step)
    return np.clip(codes, 0, LEVELS).astype(np.uint16), offset, step


def dequantise(codes: np.ndarray, offset: float, step: float) -> np.ndarray:
    return offset + codes.astype(np.float64) * step


def _png_bytes(codes: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(codes).save(buf, format="PNG")
    return buf.getvalue()


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append .npy to a tmp name
        np.save(fh, arr, allow_pickle=False)


def write_map(
    folder: str | Path,
    name: str,
    values: Any,
    *,
    kind: str = "height",
    pixel_pitch_m: float,
    wavelengths_m: Sequence[float] = (),
    phase_per_height_rad_per_m: Sequence[float] = (),
    metadata: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``<name>.png`` (16-bit), ``<name>.npy`` (float64) and ``<name>.json`` (sidecar).

    Args:
        values: ``(H, W)`` heights in metres (>= 0) or amplitudes in [0, 1].
        kind: ``"height"`` or ``"amplitude"``.
        phase_per_height_rad_per_m: ``2π(n-n_amb)/λ`` per wavelength, to state the
            phase error the PNG quantisation can cause.
        metadata: extra sidecar entries (material, indices, ...).
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is unknown; choose one of {KINDS}.")
    arr = as_array(f"{kind} map {name!r}", values)
    if kind == "height" and arr.min() < 0:
        raise ValueError(
            f"height map {name!r} has negative heights (min {arr.min():.3g} m); heights are "
            "measured "
            "up from the substrate. Subtract the minimum (a constant height shifts the phase "
            "uniformly)."
        )
    if kind == "amplitude" and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"amplitude map {name!r} spans [{arr.min():.3g}, {arr.max():.3g}]; transmission "
            "amplitudes "
            "must lie in [0, 1]. Clip or rescale them."
        )
    codes, offset, step = quantise(arr, kind)
    folder = Path(folder)
    unit = "m" if kind == "height" else "1"
    sidecar = {
        "layer": name,
        "kind": kind,
        "unit": unit,
        "shape": list(arr.shape),
        "pixel_pitch_m": float(pixel_pitch_m),
        "coordinates": "pixel (i, j) centre at y=(i-H//2)*pitch, x=(j-W//2)*pitch (metres)",
        "files": {"png": f"{name}.png", "npy": f"{name}.npy"},
        "quantisation": {
            "bits": BITS,
            "formula": f"value_{unit} = offset + code * step",
            "offset": offset,
            "step": step,
            "max_error": step / 2,
        },
        "wavelengths_m": [float(w) for w in wavelengths_m],
        **(metadata or {}),
    }
    if kind == "height" and phase_per_height_rad_per_m:
        sidecar["quantisation"]["max_phase_error_rad"] = [
            k * step / 2 for k in phase_per_height_rad_per_m
        ]
    return {
        "png": atomic_write_bytes(folder / f"{name}.png", _png_bytes(codes)),
        "npy": atomic_write(folder / f"{name}.npy", lambda t: _save_npy(t, arr)),
        "json": atomic_write_text(folder / f"{name}.json", json.dumps(sidecar, indent=2) + "\n"),
    }


def read_map(
    folder: str | Path, name: str, source: str = "png"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a map written by :func:`write_map`: ``(values float64 (H, W), sidecar dict)``.

    ``source="png"`` decodes the 16-bit codes with the sidecar's offset and step (what
    a fab sees); ``"npy"`` returns the exact float64 values.
    """
    if source not in ("png", "npy"):
        raise ValueError(f"source={source!r} is unknown; choose 'png' or 'npy'.")
    folder = Path(folder)
    meta_path = folder / f"{name}.json"
    if not meta_path.is_file():
        raise ValueError(
            f"map {name!r}: sidecar {str(meta_path)!r} is missing; re-export the design."
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    path = folder / meta["files"][source]
    if not path.is_file():
        raise ValueError(
            f"map {name!r}: {str(path)!r} is missing; use source='png' or 'npy' or re-export."
        )
    if source == "npy":
        values = np.load(path, allow_pickle=False)
    else:
        with Image.open(path) as img:
            codes = np.array(img)
        if codes.dtype != np.uint16:
            raise ValueError(
                f"{str(path)!r} is not a 16-bit PNG (dtype {codes.dtype}); re-export the design."
            )
        q = meta["quantisation"]
        values = dequantise(codes, q["offset"], q["step"])
    if list(values.shape) != meta["shape"]:
        raise ValueError(
            f"{str(path)!r} has shape {values.shape} but its sidecar says {meta['shape']}."
        )
    return values, meta


def phase_error_bound_rad(step_m: float, phase_per_height_rad_per_m: float) -> float:
    """Largest phase error of a PNG-decoded height map: ``k * step / 2``."""
    return abs(phase_per_height_rad_per_m) * step_m / 2 if math.isfinite(step_m) else math.inf
