"""The emoji-svg loader on tiny SVG families written here (the shared set is optional)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("resvg_py")

from lightgen.data import emoji_svg
from lightgen.data.emoji_svg import (
    DEFAULT_GROUPS,
    cached_raster,
    emoji_keys,
    is_test_key,
    load_emoji_svg,
)
from lightgen.data.errors import DataFileError
from lightgen.data.registry import load_dataset

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "emoji-svg"
GROUPS = {"smileys-emotion": "#ffcc00", "animals-nature": "#00aa00", "flags": "#0000ff"}


def _svg(colour: str, shape: str) -> str:
    body = (
        f'<circle cx="18" cy="18" r="14" fill="{colour}"/>'
        if shape == "circle"
        else f'<rect x="6" y="6" width="24" height="24" fill="{colour}"/>'
    )
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 36 36">{body}</svg>'


@pytest.fixture
def svg_root(tmp_path, monkeypatch) -> Path:
    """``emoji-svg/`` with 12 keys per group in two families (flags: twemoji only)."""
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "emoji-svg"
    rows = ["key,emoji,group,subgroup,annotation,families"]
    for fam in ("noto", "twemoji"):
        (root / fam).mkdir(parents=True)
    for g, (group, colour) in enumerate(GROUPS.items()):
        for i in range(12):
            key = f"{0x1F600 + 100 * g + i:x}"
            fams = ("twemoji",) if group == "flags" else ("noto", "twemoji")
            rows.append(f"{key},x,{group},sub,name {key},{' '.join(fams)}")
            for fam in fams:
                shape = "circle" if fam == "noto" else "rect"
                (root / fam / f"{key}.svg").write_text(_svg(colour, shape))
    (root / "noto" / "ffff0.svg").write_text(_svg("#fff", "circle"))  # not in the index
    (root / "index.csv").write_text("\n".join(rows) + "\n")
    return root


def _cache_files(tmp_path: Path) -> list[Path]:
    cache = tmp_path / "cache" / "emoji-svg"
    return sorted(cache.iterdir()) if cache.is_dir() else []


def test_groups_are_the_class_labels_and_families_are_pooled(svg_root):
    ds = load_emoji_svg(svg_root, "all", size=16, groups=["smileys-emotion", "animals-nature"])
    assert ds.class_names == ("smileys-emotion", "animals-nature")
    assert ds.images.shape == (48, 3, 16, 16)  # 2 groups x 12 keys x 2 families
    assert torch.bincount(ds.labels).tolist() == [24, 24]
    # round-robin over classes: limit keeps the classes balanced
    assert ds.labels[:4].tolist() == [0, 1, 0, 1]
    centre = ds.images[:, :, 8, 8]
    yellow = centre[ds.labels == 0]
    assert (yellow[:, 0] > 0.9).all() and (yellow[:, 2] < 0.1).all()


def test_alpha_is_composited_on_black_by_default_and_on_white_on_request(svg_root):
    black = load_emoji_svg(svg_root, "all", size=16, families=["noto"], limit=4)
    white = load_emoji_svg(svg_root, "all", size=16, families=["noto"], limit=4, background="white")
    assert black.images[:, :, 0, 0].max() == 0.0 and white.images[:, :, 0, 0].min() == 1.0
    inside = (black.images[:, :, 8, 8] - white.images[:, :, 8, 8]).abs().max()
    assert inside < 1e-6


def test_no_emoji_key_is_in_both_splits_and_families_follow_their_key(svg_root):
    train = emoji_keys(svg_root, "train", groups="all")
    test = emoji_keys(svg_root, "test", groups="all")
    train_keys, test_keys = {k for k, _ in train}, {k for k, _ in test}
    assert train_keys and test_keys and not train_keys & test_keys
    assert len(train) + len(test) == 2 * 12 * 2 + 12  # every image in exactly one split
    assert all(is_test_key(k) for k in test_keys)
    assert emoji_keys(svg_root, "test", groups="all") == test  # deterministic


def test_split_does_not_depend_on_the_selected_families_or_groups(svg_root):
    pooled = {k for k, _ in emoji_keys(svg_root, "test", groups="all")}
    only = {k for k, _ in emoji_keys(svg_root, "test", families=["noto"], groups="all")}
    assert only <= pooled


def test_unknown_family_names_the_valid_ones(svg_root):
    with pytest.raises(ValueError, match=r"'emojione'.*noto.*twemoji.*openmoji"):
        load_emoji_svg(svg_root, families=["noto", "emojione"])


def test_unknown_group_names_the_valid_ones(svg_root):
    with pytest.raises(ValueError, match=r"'faces'.*smileys-emotion.*flags"):
        load_emoji_svg(svg_root, groups=["faces"])


def test_empty_selection_is_a_named_error(svg_root):
    with pytest.raises(ValueError, match=r"families=\['noto'\] x groups=\['flags'\] selects no"):
        load_emoji_svg(svg_root, families=["noto"], groups=["flags"])


def test_broken_svg_is_named_and_nothing_is_cached_for_it(svg_root, tmp_path):
    bad = svg_root / "noto" / "1f600.svg"
    bad.write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle')
    with pytest.raises(DataFileError, match=r"1f600\.svg.*cannot be rasterised"):
        load_emoji_svg(svg_root, "all", size=16, families=["noto"])
    files = _cache_files(tmp_path)
    assert not [f for f in files if f.name.startswith(".")]  # no temporary left behind
    bad_hash = emoji_svg.cache_key(bad.read_bytes(), 16, "black")
    assert bad_hash not in {f.name for f in files}


def test_rasters_are_cached_by_content_size_and_background(svg_root, tmp_path, monkeypatch):
    path = svg_root / "twemoji" / "1f600.svg"
    first = cached_raster(path, 16, "black")
    assert len(_cache_files(tmp_path)) == 1

    def no_drawing(*args, **kwargs):
        raise AssertionError("drawn again although cached")

    with monkeypatch.context() as m:
        m.setattr(emoji_svg, "rasterise_svg", no_drawing)
        assert (cached_raster(path, 16, "black") == first).all()
    cached_raster(path, 20, "black")
    cached_raster(path, 16, "white")
    path.write_text(_svg("#123456", "rect"))  # edited artwork: a new key, not the stale raster
    edited = cached_raster(path, 16, "black")
    assert len(_cache_files(tmp_path)) == 4
    assert not (edited == first).all()


def test_an_interrupted_cache_write_leaves_no_file(svg_root, tmp_path, monkeypatch):
    path = svg_root / "twemoji" / "1f601.svg"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(os, "replace", interrupted)
        cached_raster(path, 16, "black")
    assert _cache_files(tmp_path) == []
    cached_raster(path, 16, "black")  # the next run draws and caches it whole
    assert len(_cache_files(tmp_path)) == 1


def test_an_unreadable_cache_entry_is_drawn_anew(svg_root, tmp_path):
    path = svg_root / "twemoji" / "1f602.svg"
    good = cached_raster(path, 16, "black")
    (entry,) = _cache_files(tmp_path)
    entry.write_bytes(b"not a png")
    assert (cached_raster(path, 16, "black") == good).all()


def test_registry_loads_emoji_svg_with_its_options_and_refuses_them_elsewhere(svg_root):
    ds = load_dataset(
        "emoji-svg", root=svg_root.parent, split="test", size=16, groups="all", channels=1
    )
    assert ds.name == "emoji-svg" and ds.images.shape[1:] == (1, 16, 16)
    assert ds.class_names == ("smileys-emotion", "animals-nature", "flags")
    with pytest.raises(ValueError, match="select emoji-svg images"):
        load_dataset("shapes", groups=["flags"])


def test_train_config_validates_emoji_options():
    from lightgen.train.config import TrainConfig, load_train_config

    cfg = TrainConfig(dataset="emoji-svg", emoji_families=["noto"], emoji_groups=["flags"])
    assert cfg.dataset_options() == {"families": ["noto"], "groups": ["flags"]}
    assert TrainConfig(dataset="mnist").dataset_options() == {}
    with pytest.raises(ValueError, match="'emojione'"):
        load_train_config({"dataset": "emoji-svg", "emoji_families": ["emojione"]})
    with pytest.raises(ValueError, match="select emoji-svg images"):
        load_train_config({"dataset": "mnist", "emoji_groups": ["flags"]})


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared emoji-svg data not present")
def test_shared_set_default_groups_split_by_key_without_leaks():
    train = emoji_keys(SHARED, "train")
    test = emoji_keys(SHARED, "test")
    assert len(train) + len(test) == 2027  # the four default groups, three families pooled
    assert not {k for k, _ in train} & {k for k, _ in test}
    assert 0.15 < len(test) / (len(train) + len(test)) < 0.25
    assert DEFAULT_GROUPS[0] == "smileys-emotion"
