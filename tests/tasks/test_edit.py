import json
import math

import pytest
import torch
from torch import nn

from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.edit import (
    FiberEdit,
    PortSetting,
    decode_edited,
    edit_images,
    edit_ratio,
    fiber_effect_maps,
    find_local_fibers,
    locality_ratio,
    parse_region,
    port_transmission,
    region_mask,
    run_edit,
)
from lightgen.tasks.generate import decode, encode
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer, load_trained


@pytest.fixture(scope="module")
def digits():
    return make_printed_digits(6, size=12, seed=5)[0]


# ----------------------------------------------------------- a toy with known physics
S = 8
TL = region_mask("top-left", S).float()
BR = region_mask("bottom-right", S).float()
ONES = torch.ones(S, S)
# fibers 0, 1: top-left with 10 % leakage elsewhere; 2: bottom-right likewise;
# 3, 4: whole image; 5: top-left only but 10^4 times weaker than the rest
PATTERNS = torch.stack(
    [TL + 0.1 * (1 - TL), TL + 0.1 * (1 - TL), BR + 0.1 * (1 - BR), ONES, ONES, 1e-4 * TL]
)


class _ToyModel(nn.Module):
    """Linear 'decoder' image = 0.05 * sum_d z_d * pattern_d with a real latent
    (a :class:`lightgen.train.models.TrainedModel` without optics)."""

    complex_latent = False
    accepts_grey_input = False
    optical_chip = None
    latent_dim = PATTERNS.shape[0]
    image_shape = (1, S, S)

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def posterior(self, x):
        z = (1 + x.mean(dim=(1, 2, 3)))[:, None].expand(-1, self.latent_dim)
        return z, torch.zeros_like(z)

    def decode(self, z, generator=0):
        return 0.05 * torch.einsum("bd,dhw->bhw", z, PATTERNS)[:, None]


class _ToySystem(nn.Module):
    n_conditions = 0

    def __init__(self):
        super().__init__()
        self.model = _ToyModel()

    def routing(self, z):
        return 0

    def with_reference(self, z):  # no laser-fed reference fiber
        return z


def _toy_images(n=4):
    return torch.rand(n, 1, S, S, generator=torch.Generator().manual_seed(0))


# ----------------------------------------------------------- regions and ratios
def test_named_regions_split_the_image_at_half_size():
    assert region_mask("top", 12)[:6].all() and not region_mask("top", 12)[6:].any()
    assert region_mask("right", 12)[:, 6:].all() and not region_mask("right", 12)[:, :6].any()
    q = region_mask("bottom-left", 12)
    assert q.sum() == 36 and q[6:, :6].all()
    assert region_mask("center", 12).sum() == 36 and region_mask("center", 12)[3:9, 3:9].all()
    assert region_mask((1, 3, 2, 5), 12).sum() == 6


def test_parse_region_accepts_names_and_pixel_boxes():
    assert parse_region("Top-Left") == "top-left"
    assert parse_region("0,6,0,12") == (0, 6, 0, 12)


@pytest.mark.parametrize(
    ("region", "match"),
    [
        ("middle", "region='middle' is unknown"),
        ((0, 13, 0, 4), "0 <= r0 < r1 <= 12"),
        ((0, 12, 0, 12), "covers the whole"),
    ],
)
def test_bad_regions_are_refused(region, match):
    with pytest.raises(ValueError, match=match):
        region_mask(region, 12)


def test_unparseable_region_text_is_refused():
    with pytest.raises(ValueError, match="region='0,6'"):
        parse_region("0,6")


def test_locality_ratio_on_a_hand_made_change_map():
    change = torch.full((12, 12), 0.25)
    change[:6] = 1.0
    top = region_mask("top", 12)
    assert locality_ratio(change, top).item() == pytest.approx(4.0)
    assert locality_ratio(change, ~top).item() == pytest.approx(0.25)
    only_inside = torch.where(top, 1.0, 0.0)
    assert locality_ratio(only_inside, top).item() == math.inf
    assert math.isnan(locality_ratio(torch.zeros(12, 12), top).item())


def test_port_transmission_is_the_amplitude_of_the_db_power_loss():
    assert abs(port_transmission(20.0, 0.0)) == pytest.approx(0.1)  # 20 dB = 1 % power
    assert port_transmission(0.0, math.pi) == pytest.approx(-1)
    assert abs(port_transmission(3.0103, 0.0)) ** 2 == pytest.approx(0.5, rel=1e-4)


# ----------------------------------------------------------- toy: closed-form answers
def test_scan_finds_the_fibers_that_only_touch_the_region():
    sys_ = _ToySystem()
    found = find_local_fibers(sys_, _toy_images(), "top-left", k=2)
    assert found.fibers == [0, 1]
    assert found.locality == pytest.approx([10.0, 10.0], rel=1e-5)  # 1 inside vs 0.1 outside


def test_auto_region_is_the_quadrant_with_the_most_local_fibers():
    found = find_local_fibers(_ToySystem(), _toy_images(), "auto", k=2)
    assert found.region == "top-left" and found.fibers == [0, 1]


def test_nearly_inert_fibers_are_not_picked_for_their_noisy_ratio():
    imgs = _toy_images()
    # fiber 5 changes only the top-left (ratio inf) but 10^4 times less than the others
    assert find_local_fibers(_ToySystem(), imgs, "top-left", k=1).fibers == [0]
    assert find_local_fibers(_ToySystem(), imgs, "top-left", 1, min_effect_fraction=0).fibers == [5]


def test_edit_ratio_equals_the_pattern_contrast_and_mechanism_is_digital():
    res = edit_images(_ToySystem(), _toy_images(), FiberEdit([0, 1], PortSetting(10.0)))
    ratio = edit_ratio(res.before, res.after, region_mask("top-left", S))
    torch.testing.assert_close(ratio, torch.full((4,), 10.0), rtol=1e-4, atol=0)
    assert res.mechanism.startswith("digital")
    # |delta| = (1 - 10^(-10/20)) * 0.05 * z * 2 fibers inside the region
    z = 1 + _toy_images().mean(dim=(1, 2, 3))
    expected = (1 - 10**-0.5) * 0.05 * z * 2
    torch.testing.assert_close(
        (res.after - res.before).abs()[:, 0, 0, 0], expected, rtol=1e-5, atol=0
    )


def test_phase_shift_on_a_real_latent_is_refused():
    with pytest.raises(ValueError, match=r"phase_rad=1\.0.*real latent"):
        edit_images(_ToySystem(), _toy_images(), FiberEdit([0], PortSetting(10.0, 1.0)))


# ----------------------------------------------------------- the chip: ports
def test_port_edit_equals_injecting_the_attenuated_latent(tiny, digits):
    system, _ = tiny
    z = encode(system, digits)
    fibers, a_db, ph = [2, 7, 11], 6.0, 0.7
    via_ports = decode_edited(system, z, FiberEdit(fibers, PortSetting(a_db, ph)))
    t = torch.ones(z.shape[1], dtype=z.dtype)
    t[fibers] = port_transmission(a_db, ph)
    torch.testing.assert_close(via_ports, decode(system, z * t), atol=1e-6, rtol=1e-5)
    chip = system.model.chip
    assert not chip.port_attenuation_db.any() and not chip.port_phase_rad.any()  # restored


def test_ports_are_restored_when_decoding_fails(tiny, digits, monkeypatch):
    system, _ = tiny
    z = encode(system, digits)

    def boom(*a, **k):
        raise RuntimeError("camera unplugged")

    monkeypatch.setattr(system.model, "decode", boom)
    with pytest.raises(RuntimeError, match="camera unplugged"):
        decode_edited(system, z, FiberEdit([0, 1], PortSetting(30.0, 1.0)))
    chip = system.model.chip
    assert not chip.port_attenuation_db.any() and not chip.port_phase_rad.any()


def test_zero_db_zero_phase_edit_changes_nothing(tiny, digits):
    res = edit_images(tiny[0], digits, FiberEdit([0, 3], PortSetting(0.0, 0.0)))
    assert torch.equal(res.before, res.after)
    assert res.mechanism.startswith("chip ports")


def test_infinite_attenuation_blocks_the_fiber(tiny, digits):
    system, _ = tiny
    z = encode(system, digits)
    blocked = z.clone()
    blocked[:, [4, 5]] = 0
    torch.testing.assert_close(
        decode_edited(system, z, FiberEdit([4, 5], PortSetting(math.inf))),
        decode(system, blocked),
        atol=1e-6,
        rtol=1e-5,
    )


def test_batched_fiber_scan_matches_one_port_edit_at_a_time(tiny, digits):
    system, _ = tiny
    port = PortSetting(10.0, 0.5)
    maps = fiber_effect_maps(system, digits, port, max_batch=20)  # several chunks
    z = encode(system, digits)
    base = decode(system, z)
    for d in (0, 9, 15):
        direct = (decode_edited(system, z, FiberEdit([d], port)) - base).abs().mean(dim=(0, 1))
        torch.testing.assert_close(maps[d], direct.cpu(), atol=1e-6, rtol=1e-4)


def test_chosen_fibers_are_the_most_local_of_the_non_weak_ones(tiny, digits):
    found = find_local_fibers(tiny[0], digits, "top", k=3)
    strong = found.strength >= 0.1 * found.strength.max()
    others = [i for i in range(16) if strong[i] and i not in found.fibers]
    assert min(found.locality) >= max(float(found.all_locality[i]) for i in others)
    assert found.locality == sorted(found.locality, reverse=True)


def test_run_edit_writes_report_and_pngs_and_leaves_ports_off(tiny, tmp_path):
    system, cfg = tiny
    rep = run_edit(system, cfg, tmp_path, region="bottom", k=2, n=8, n_random=3)
    saved = json.loads((tmp_path / "edit.json").read_text())
    assert saved["region"] == "bottom" and saved["region_area_fraction"] == 0.5
    assert saved["scan_images"] == 4 and saved["scored_images"] == 4
    assert len(saved["fibers"]) == 2 and len(saved["random_fibers"]) == 3
    assert saved["mechanism"].startswith("chip ports")
    assert 0 <= rep["fraction_of_change_inside_region"] <= 1
    for name in ("edit_before.png", "edit_after.png", "edit_difference.png"):
        assert (tmp_path / name).is_file()
    assert not list(tmp_path.glob(".tmp-*"))
    chip = system.model.chip
    assert not chip.port_attenuation_db.any() and not chip.port_phase_rad.any()


# ----------------------------------------------------------- errors
@pytest.mark.parametrize(("k", "match"), [(17, r"k must be in \[1, 16\], got 17"), (0, "got 0")])
def test_k_outside_the_number_of_fibers_is_refused(tiny, digits, k, match):
    with pytest.raises(ValueError, match=match):
        find_local_fibers(tiny[0], digits, "top", k=k)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(fibers=[16]), r"fibers contains 16.*0\.\.15"),
        (dict(fibers=[-1]), r"fibers contains -1.*>= 0"),
        (dict(fibers=[1.5]), r"fibers contains 1\.5"),
        (dict(fibers=3), r"fibers=3 must be a list"),
        (dict(fibers=[1, 1]), "distinct"),
        (dict(fibers=[]), "non-empty"),
        (dict(attenuation_db=-3.0), r"attenuation_db=-3\.0.*passive"),
        (dict(attenuation_db=math.nan), "attenuation_db=nan"),
        (dict(attenuation_db="x"), "must be numbers"),
        (dict(phase_rad=math.inf), "phase_rad=inf"),
    ],
)
def test_bad_edits_are_refused(tiny, digits, kwargs, match):
    args = dict(fibers=[0], attenuation_db=10.0, phase_rad=0.0) | kwargs
    with pytest.raises(ValueError, match=match):
        port = PortSetting(args["attenuation_db"], args["phase_rad"])
        edit_images(tiny[0], digits, FiberEdit(args["fibers"], port))


def test_an_edit_holds_checked_values_and_ramps_in_db_and_radians():
    edit = FiberEdit([3, 1.0], PortSetting(20, 1))
    assert edit.fibers == (3, 1) and all(type(f) is int for f in edit.fibers)
    assert edit.port == PortSetting(20.0, 1.0) and type(edit.port.attenuation_db) is float
    assert edit.port.scaled(0.25) == PortSetting(5.0, 0.25)
    assert edit.port.transmission == port_transmission(20.0, 1.0)
    assert FiberEdit([0]).port == PortSetting() == PortSetting(10.0, 0.0)
    assert PortSetting(math.inf).transmission == 0
    with pytest.raises(ValueError, match=r"attenuation_db=inf.*finite end value"):
        PortSetting(math.inf).check_ramp()


def test_images_of_the_wrong_size_are_refused(tiny):
    with pytest.raises(ValueError, match=r"\(2, 1, 28, 28\).*size=12"):
        find_local_fibers(tiny[0], torch.zeros(2, 1, 28, 28), "top", 2)


@pytest.mark.parametrize("kind", ["vae", "hybrid"])
def test_models_without_fiber_ports_are_edited_digitally_and_say_so(kind, tmp_path):
    images = make_printed_digits(16, size=12, seed=0)[0]
    cfg = TrainConfig(model=kind, preset="tiny", steps=1, batch_size=8, checkpoint_every=1)
    Trainer(cfg, tmp_path / "run", images, progress=False).run()
    system, cfg = load_trained(tmp_path / "run")
    rep = run_edit(system, cfg, tmp_path / "out", region="top", k=2, n=6, n_random=1)
    assert rep["mechanism"].startswith("digital") and kind in rep["mechanism"].lower()
    res = edit_images(system, images[:3], FiberEdit(rep["fibers"], PortSetting(math.inf)))
    assert res.after.shape == res.before.shape == (3, 1, 12, 12)


def test_models_with_condition_fibers_are_refused():
    sys_ = _ToySystem()
    sys_.n_conditions = 2  # as BOGTSystem with condition_fibers=2
    with pytest.raises(ValueError, match="condition_fibers=2"):
        find_local_fibers(sys_, _toy_images(), "top", 1)
