"""Design sheet and fiber CSV."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lightgen.chip.design import preset_design
from lightgen.export.sheet import derived_quantities, fiber_csv_text, read_fiber_csv


def test_fiber_csv_is_in_micrometres_and_round_trips(tmp_path):
    d = preset_design("paper")
    text = fiber_csv_text(d)
    assert text.splitlines()[1] == "index,x_um,y_um"
    first = text.splitlines()[2].split(",")
    assert float(first[1]) == pytest.approx(d.fiber_positions_m[0][1] * 1e6)  # x
    assert float(first[1]) == pytest.approx(-1125.0)  # 10 x 10 grid at 250 um, centred
    (tmp_path / "f.csv").write_text(text)
    back = read_fiber_csv(tmp_path / "f.csv")
    np.testing.assert_allclose(np.array(back), np.array(d.fiber_positions_m), rtol=0, atol=1e-15)


def test_derived_quantities_list_the_physics():
    d = preset_design("tiny")
    q = derived_quantities(d)
    assert q["ops_per_frame"]["conservative"] == 41_472
    assert q["two_pi_height_m"][0] == pytest.approx(532e-9 / (d.indices()[0] - 1))
    assert q["max_diffraction_sin_theta"]["enc01"] == [pytest.approx(532e-9 / 16e-6)]


def test_design_dict_holds_every_field():
    d = preset_design("tiny")
    assert {f.name for f in dataclasses.fields(d)} <= set(d.to_dict())


def test_missing_fiber_csv_raises():
    with pytest.raises(ValueError, match="fiber CSV"):
        read_fiber_csv("/nonexistent/fibers.csv")
