"""lightgen._checks: each check returns the value or names it and the fix."""

from __future__ import annotations

import math

import pytest

from lightgen._checks import require_choice, require_nonnegative


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "x", None])
def test_nonnegative_refuses_negative_non_finite_and_non_numbers(bad):
    with pytest.raises(ValueError, match=r"sigma=.* must be a finite number >= 0\. Use 0\.1\."):
        require_nonnegative("sigma", bad, "Use 0.1.")
    assert require_nonnegative("sigma", 0) == 0.0 and require_nonnegative("sigma", "0.5") == 0.5


def test_choice_lists_the_quoted_choices_and_what_they_mean():
    assert require_choice("fmt", "npy", ("grid", "npy")) == "npy"
    with pytest.raises(
        ValueError, match=r"fmt='png' is unknown; choose one of 'grid', 'npy' \(g\)\."
    ):
        require_choice("fmt", "png", ("grid", "npy"), "g")
