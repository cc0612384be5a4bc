"""Performance model: units, limits, power/area bookkeeping, the paper's figures."""

from __future__ import annotations

import pytest

from lightgen.chip.design import preset_design
from lightgen.hardware.devices import CameraDatasheet
from lightgen.hardware.perf import (
    PAPER,
    PerfAssumptions,
    paper_assumptions,
    performance,
    reconcile_with_paper,
)

TINY = preset_design("tiny")  # conservative: 144 x 144 MACs = 41,472 ops per frame
PAPER_DESIGN = preset_design("paper")


def test_tops_is_1e12_operations_per_second():
    r = performance(TINY, PerfAssumptions(frame_rate_hz=1000.0))
    assert r.ops_per_frame["conservative"] == 41_472
    assert r.tops() == pytest.approx(41_472 * 1000 / 1e12)
    assert r.tops("naive") == pytest.approx(r.ops_per_frame["naive"] * 1000 / 1e12)


def test_frame_rate_is_the_slower_of_input_device_and_camera():
    r = performance(
        TINY, PerfAssumptions(frame_rate_hz=1000.0, camera=CameraDatasheet(frame_rate_hz=250.0))
    )
    assert r.frame_rate_hz == 250.0 and r.rate_limited_by == "camera"
    r = performance(
        TINY, PerfAssumptions(frame_rate_hz=100.0, camera=CameraDatasheet(frame_rate_hz=250.0))
    )
    assert r.frame_rate_hz == 100.0 and "input device" in r.rate_limited_by


def test_device_class_rates_and_ideal_modulator_falls_back_to_time_of_flight():
    assert performance(TINY).frame_rate_hz == 60.0  # tiny uses an SLM
    assert performance(TINY.replace(input_device="dmd")).frame_rate_hz == 20_000.0
    ideal = performance(TINY.replace(input_device="ideal"))
    assert ideal.frame_rate_hz == pytest.approx(299_792_458.0 / TINY.optical_path_m())
    assert "time of flight" in ideal.rate_limited_by


def test_power_is_the_sum_of_laser_input_device_cameras_and_other():
    a = PerfAssumptions(
        frame_rate_hz=1000.0,
        laser_optical_power_w=1.0,
        laser_wall_plug_efficiency=0.25,
        input_device_power_w=5.0,
        camera=CameraDatasheet(power_w=10.0),
        other_power_w=1.0,
    )
    r = performance(TINY.replace(n_generators=2), a)
    assert r.total_power_w == pytest.approx(4.0 + 5.0 + 2 * 10.0 + 1.0)
    assert r.tops_per_w() == pytest.approx(r.tops() / r.total_power_w)
    assert r.energy_per_op_j() == pytest.approx(r.total_power_w / (r.tops() * 1e12))


def test_without_a_laser_power_the_laser_delivers_the_photon_budget_minimum():
    r = performance(TINY, PerfAssumptions(frame_rate_hz=1000.0, laser_wall_plug_efficiency=0.5))
    assert r.power_w["laser (electrical)"] == pytest.approx(r.photon.laser_power_w / 0.5)
    lossy = performance(TINY.replace(fiber_loss_db=10.0), PerfAssumptions(frame_rate_hz=1000.0))
    assert lossy.photon.laser_energy_j == pytest.approx(10 * r.photon.laser_energy_j)


def test_density_uses_package_area_else_aperture_footprint():
    r = performance(TINY, PerfAssumptions(frame_rate_hz=1.0))
    assert r.area_m2 == pytest.approx((48 * 8e-6) ** 2)
    assert r.tops_per_mm2() == pytest.approx(r.tops() / (r.area_m2 * 1e6))
    r = performance(TINY.replace(package_area_m2=2e-6), PerfAssumptions(frame_rate_hz=1.0))
    assert r.area_m2 == 2e-6 and r.area_source == "package_area_m2"


def test_paper_figures_are_mutually_consistent():
    rec = reconcile_with_paper(PAPER_DESIGN)
    assert rec.implied_power_w[0] == pytest.approx(3.57e4 / 6.64e2)  # 53.77 W
    assert rec.implied_power_w[1] < 53.77 < rec.implied_power_w[2]
    assert rec.implied_area_mm2[0] == pytest.approx(136.26, abs=0.01)
    assert rec.implied_area_mm2[1] < 136.5 < rec.implied_area_mm2[2]
    assert rec.area_consistent


def test_inferred_assumptions_reproduce_the_paper_measured_and_theoretical_figures():
    rec = reconcile_with_paper(PAPER_DESIGN)
    checks = {c.name: c for c in rec.checks}
    assert checks["throughput (measured)"].model == pytest.approx(PAPER["tops"], rel=1e-9)
    assert checks["efficiency (measured)"].model == pytest.approx(PAPER["tops_per_w"], rel=1e-9)
    # 3.57e4 / 136.5 = 261.5: equal to 2.62e2 within the paper's rounding
    assert abs(checks["density (measured)"].rel_diff) < 0.005
    assert checks["throughput (theoretical)"].model == pytest.approx(
        PAPER["theoretical_tops"], rel=1e-9
    )
    assert checks["optical neurons (> 2 M)"].model > 2_000_000


def test_implied_frame_rate_is_paper_tops_over_ops_per_frame():
    rec = reconcile_with_paper(PAPER_DESIGN)
    assert len(rec.variants) == 3
    ops = 2 * 3 * 512**4  # one 512^2 x 512^2 map per wavelength
    cons = next(v for v in rec.variants if "fibers linear" in v.label)
    assert cons.ops_per_frame == ops
    assert cons.measured_rate_hz == pytest.approx(3.57e16 / ops)  # ~8.66e4 frames/s
    assert cons.theoretical_rate_hz == pytest.approx(5.69e21 / ops)
    naive = next(v for v in rec.variants if v.label.startswith("naive"))
    assert naive.measured_rate_hz == pytest.approx(3.57e16 / (2 * 3 * (9 * 512**4 + 200 * 512**2)))
    assert naive.devices_fast_enough == "dmd"  # ~9.6e3 frames/s: DMD binary-pattern class


def test_paper_assumptions_are_labelled_inferred():
    a = paper_assumptions(PAPER_DESIGN)
    sources = dict(a.sources)
    assert sources["frame_rate_hz"].startswith("inferred")
    assert sources["other_power_w"].startswith("inferred")
    r = performance(PAPER_DESIGN, a)
    labels = {x.name: x.source for x in r.assumptions}
    assert labels["frame rate"].startswith("inferred")
    assert labels["chip area"].startswith("paper")


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        (dict(frame_rate_hz=0.0), "frame_rate_hz"),
        (dict(frame_rate_hz=-5.0), "frame_rate_hz"),
        (dict(input_device_power_w=-1.0), "input_device_power_w"),
        (dict(laser_optical_power_w=-0.1), "laser_optical_power_w"),
        (dict(laser_wall_plug_efficiency=0.0), "laser_wall_plug_efficiency"),
        (dict(layer_transmission=1.2), "layer_transmission"),
        (dict(other_power_w=float("nan")), "other_power_w"),
        (dict(counting="optimistic"), "counting"),
    ],
)
def test_unphysical_assumptions_raise_value_error_naming_the_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        PerfAssumptions(**kw)


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        (dict(power_w=-3.0), "camera_power_w"),
        (dict(frame_rate_hz=0.0), "camera_frame_rate_hz"),
        (dict(quantum_efficiency=0.0), "quantum_efficiency"),
    ],
)
def test_unphysical_camera_raises(kw, name):
    with pytest.raises(ValueError, match=name):
        CameraDatasheet(**kw)
