"""Input validation that names the bad value and the fix (one place, reused)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def require_positive(name: str, value: float, fix: str = "") -> float:
    """Return ``float(value)`` or raise ValueError naming ``name``, the value and the fix."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a positive number, got {value!r}. {fix}".strip()
        ) from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}. {fix}".strip())
    return v


def require_positive_all(name: str, values: Iterable[float], fix: str = "") -> tuple[float, ...]:
    vals = tuple(values)
    if not vals:
        raise ValueError(
            f"{name} must hold at least one value, got an empty sequence. {fix}".strip()
        )
    return tuple(require_positive(f"{name}[{i}]", v, fix) for i, v in enumerate(vals))


def require_finite(name: str, value: float, fix: str = "") -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}. {fix}".strip())
    return v


def require_int_range(name: str, value: int, lo: int, hi: int | None = None, fix: str = "") -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}. {fix}".strip())
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {rng}, got {v}. {fix}".strip())
    return v


def require_fraction(name: str, value: float, fix: str = "") -> float:
    """``float(value)`` if in (0, 1], else ValueError naming the parameter and fix."""
    v = require_positive(name, value, fix)
    if v > 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}. {fix}".strip())
    return v


def require_nonnegative(name: str, value: float, fix: str = "") -> float:
    """Return ``float(value)`` if it is finite and >= 0, else raise naming it and the fix."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}={value!r} must be a finite number >= 0. {fix}".strip())
    return v


def require_choice(name: str, value: str, choices: Sequence[str], explain: str = "") -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them (and what each
    means, ``explain``)."""
    if value not in choices:
        what = f" ({explain})" if explain else ""
        raise ValueError(
            f"{name}={value!r} is unknown; choose one of {', '.join(map(repr, choices))}{what}."
        )
    return value
