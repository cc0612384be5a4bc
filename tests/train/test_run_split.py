"""train.data.run_split: how every task and the lab load a run's held-out images."""

from __future__ import annotations

import lightgen.train.data as data
from lightgen.train.config import TrainConfig


def test_a_run_split_is_at_the_chip_size_with_the_runs_seed_and_root():
    cfg = TrainConfig(preset="tiny", dataset="printed-digits", seed=3)
    ds = data.run_split(cfg, "test", 5)
    assert tuple(ds.images.shape) == (5, 1, 12, 12)
    again = data.run_split(cfg, "test", 5, seed=3)
    assert (again.images == ds.images).all()
    other = data.run_split(cfg, "test", 5, seed=4, channels=3)
    assert tuple(other.images.shape) == (5, 3, 12, 12)


def test_a_run_split_carries_the_runs_loader_options_for_its_data_set(monkeypatch):
    seen = []
    monkeypatch.setattr(data, "load_dataset", lambda name, **kw: seen.append((name, kw)))
    cfg = TrainConfig(
        preset="tiny", dataset="emoji-svg", emoji_families=["noto"], data_root="/d", seed=2
    )
    data.run_split(cfg, "test", 7)
    data.run_split(cfg, "train", 3, dataset="printed-digits", data_root="/e", seed=9)
    (n1, kw1), (n2, kw2) = seen
    assert n1 == "emoji-svg" and kw1["families"] == ["noto"] and kw1["root"] == "/d"
    assert (kw1["size"], kw1["limit"], kw1["seed"], kw1["split"]) == (12, 7, 2, "test")
    assert n2 == "printed-digits" and "families" not in kw2
    assert (kw2["root"], kw2["seed"], kw2["split"]) == ("/e", 9, "train")


def test_scoring_generated_images_uses_the_runs_loader_options(monkeypatch):
    """``evaluate_generated`` (``eval --generated --checkpoint``, the lab's FID) loads the
    held-out split and trains the judge on the run's emoji families/groups, not the default
    selection."""
    import torch

    import lightgen.tasks.evaluate as ev

    class Stop(Exception):
        pass

    seen = {}

    def fake_load(name, **kw):
        seen["load"] = kw
        return type("D", (), {"images": torch.zeros(1, 3, 12, 12)})()

    def fake_judge(*args):
        seen["judge"] = args
        raise Stop

    monkeypatch.setattr(ev, "load_dataset", fake_load)
    monkeypatch.setattr(ev, "judge_and_split", fake_judge)
    opts = {"families": ["noto"], "groups": ["food-drink"]}
    try:
        ev.evaluate_generated(torch.zeros(4, 3, 12, 12), "emoji-svg", dataset_options=opts)
    except Stop:
        pass
    assert seen["load"]["families"] == ["noto"] and seen["load"]["groups"] == ["food-drink"]
    assert seen["judge"][-1] == opts
