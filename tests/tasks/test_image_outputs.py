"""Outputs other tools can read (generate/denoise --format folder|npy) and images made
elsewhere scored by eval (--generated DIR)."""

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.data.dataset import ImageDataset
from lightgen.data.errors import DataFileError
from lightgen.data.folder import load_flat_folder
from lightgen.tasks.denoise import run_denoise
from lightgen.tasks.generate import sample
from lightgen.tasks.images import to_uint8, write_image_set

runner = CliRunner()


def _text(res) -> str:
    return " ".join(res.output.split())


def test_generate_folder_holds_every_sample_at_full_resolution_with_a_manifest(
    tiny, tiny_run, tmp_path
):
    res = runner.invoke(
        app,
        [
            "generate",
            "--checkpoint",
            str(tiny_run),
            "--n",
            "5",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--format",
            "folder",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "samples.png").is_file()  # the grid is always written
    want = to_uint8(sample(tiny[0], 5, seed=3)[0])
    rows = list(csv.DictReader(open(tmp_path / "samples" / "manifest.csv")))
    assert [r["file"] for r in rows] == [f"{i:06d}.png" for i in range(5)]
    for i, r in enumerate(rows):
        img = iio.imread(tmp_path / "samples" / r["file"])
        assert img.shape == (12, 12) and np.array_equal(img, want[i, ..., 0])
        assert r["seed"] == "3" and r["index_in_draw"] == str(i) and r["component"] == "any"
        assert "gaussian prior" in r["sampler"]
    doc = json.loads((tmp_path / "samples" / "manifest.json").read_text())
    assert doc["images"][4] == {**rows[4], "seed": 3, "index_in_draw": 4}


def test_generate_npy_is_one_array_equal_to_the_samples(tiny, tiny_run, tmp_path):
    res = runner.invoke(
        app,
        [
            "generate",
            "--checkpoint",
            str(tiny_run),
            "--n",
            "4",
            "--out",
            str(tmp_path),
            "--format",
            "npy",
        ],
    )
    assert res.exit_code == 0, res.output
    arr = np.load(tmp_path / "samples.npy")
    want = sample(tiny[0], 4, seed=0)[0].numpy()
    assert arr.shape == (4, 1, 12, 12) and arr.dtype == np.float32
    assert np.allclose(arr, want)
    man = json.loads((tmp_path / "samples-manifest.json").read_text())
    assert man["layout"].startswith("(N, C, H, W)") and [r["row"] for r in man["images"]] == [
        0,
        1,
        2,
        3,
    ]


def test_generate_refuses_an_unknown_format_by_name(tiny_run, tmp_path):
    res = runner.invoke(
        app, ["generate", "--checkpoint", str(tiny_run), "--out", str(tmp_path), "--format", "png"]
    )
    assert res.exit_code == 2 and "format='png' is unknown" in _text(res)
    assert not (tmp_path / "samples.png").exists()


def test_a_smaller_image_set_leaves_no_stale_files(tmp_path):
    rec = [{"index": i} for i in range(4)]
    write_image_set(tmp_path, "s", torch.rand(4, 3, 5, 5), rec, "folder")
    write_image_set(tmp_path, "s", torch.rand(2, 3, 5, 5), rec[:2], "folder")
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == ["000000.png", "000001.png"]
    assert iio.imread(tmp_path / "s" / "000000.png").shape == (5, 5, 3)


def test_denoise_folder_holds_clean_noisy_and_output_images_by_sigma(tiny, tmp_path):
    rep = run_denoise(
        *tiny, tmp_path, sigmas=(0.1, 0.3), n=3, dataset="printed-digits", fmt="folder"
    )
    rows = list(csv.DictReader(open(rep["files"]["manifest"])))
    assert len(rows) == 3 * (1 + 2 * 2)
    assert {(r["role"], r["sigma"]) for r in rows} == {
        ("clean", "0.0"),
        ("noisy", "0.1"),
        ("output", "0.1"),
        ("noisy", "0.3"),
        ("output", "0.3"),
    }
    assert all((tmp_path / "denoise" / r["file"]).is_file() for r in rows)


# --- eval --generated -------------------------------------------------------------------


def _small_digits(name, root=None, split="train", size=12, seed=0, limit=None, **_):
    """A 240 / 60-image stand-in for the printed-digits splits (fast judge)."""
    from lightgen.data.procedural import DIGIT_CLASSES, make_printed_digits

    n = 240 if split == "train" else 60
    images, labels = make_printed_digits(n, size=size, seed=[seed, split == "test"])
    return ImageDataset(images, labels, DIGIT_CLASSES, f"{name}-small", split)


@pytest.fixture
def quick_judge(tmp_path, monkeypatch):
    import lightgen.tasks.evaluate as ev

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ev, "load_dataset", _small_digits)
    monkeypatch.setattr(ev, "classifier_epochs", lambda n: 3)


def _write_folder(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(to_uint8(images)):
        iio.imwrite(folder / f"{i:03d}.png", img[..., 0] if img.shape[-1] == 1 else img)


def test_held_out_images_scored_as_generated_match_themselves(quick_judge, tmp_path):
    real = _small_digits("printed-digits", split="test").images
    _write_folder(tmp_path / "ext", real)
    (tmp_path / "ext" / "manifest.csv").write_text("file\n")  # not an image: ignored
    out = tmp_path / "e.json"
    res = runner.invoke(
        app,
        [
            "eval",
            "--generated",
            str(tmp_path / "ext"),
            "--dataset",
            "printed-digits",
            "--n",
            "60",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["model"] == "external" and r["n_fake"] == 60 and r["n_real"] == 60
    assert r["fid"] < 1.0 and r["precision"] == 1.0 and r["recall"] == 1.0
    assert sum(r["predicted_class_counts"].values()) == 60 and r["classes_named"] >= 1


def test_eval_generated_names_wrong_channels_size_and_missing_dataset(
    quick_judge, tiny_run, tmp_path
):
    _write_folder(tmp_path / "rgb", torch.rand(4, 3, 12, 12))
    res = runner.invoke(
        app, ["eval", "--generated", str(tmp_path / "rgb"), "--dataset", "printed-digits"]
    )
    assert res.exit_code == 2 and "RGB (3 channels)" in _text(res) and "to greyscale" in _text(res)
    _write_folder(tmp_path / "big", torch.rand(4, 1, 16, 16))
    res = runner.invoke(
        app, ["eval", "--generated", str(tmp_path / "big"), "--checkpoint", str(tiny_run)]
    )
    assert res.exit_code == 2 and "are 16x16 but the chip" in _text(res)
    res = runner.invoke(app, ["eval", "--generated", str(tmp_path / "big")])
    assert res.exit_code == 2 and "pass --dataset" in _text(res)
    res = runner.invoke(
        app,
        ["eval", "--generated", str(tmp_path / "big"), "--dataset", "mnist", "--fab-levels", "8"],
    )
    assert res.exit_code == 2 and "--fab-levels act on a chip" in _text(res)
    res = runner.invoke(app, ["eval"])
    assert res.exit_code == 2 and "--generated DIR" in _text(res)


def test_a_folder_of_mixed_or_non_square_images_is_refused_by_name(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(tmp_path / "b.png", np.zeros((9, 9), np.uint8))
    with pytest.raises(DataFileError, match=r"b\.png.* is 9x9 but .*a\.png.* is 8x8"):
        load_flat_folder(tmp_path)
    (tmp_path / "b.png").unlink()
    iio.imwrite(tmp_path / "c.png", np.zeros((8, 6), np.uint8))
    with pytest.raises(DataFileError, match="not square"):
        load_flat_folder(tmp_path)


def test_grey_pngs_saved_as_rgb_load_as_one_channel(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    iio.imwrite(tmp_path / "a.png", np.stack([grey] * 3, -1))
    images, paths = load_flat_folder(tmp_path)
    assert images.shape == (1, 1, 8, 8) and paths[0].name == "a.png"
    assert torch.allclose(images[0, 0], torch.from_numpy(grey / 255).float())
