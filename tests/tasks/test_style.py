import json
import math

import pytest
import torch
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.data.procedural import make_printed_digits, make_shapes
from lightgen.data.styles import cut_patches
from lightgen.tasks.generate import reconstruct
from lightgen.tasks.style import (
    RandomFeatureNet,
    elastic_distort,
    feature_losses,
    glyph_match,
    gram,
    patchwise_reconstruct,
    printed_targets,
    run_digit_transfer,
    run_style_transfer,
    seam_ratio,
)
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer, load_trained

runner = CliRunner()


def _train(path, images, dataset, **chip):
    cfg = TrainConfig(
        preset="tiny", chip=chip, dataset=dataset, steps=2, batch_size=8, checkpoint_every=2
    )
    Trainer(cfg, path, images, progress=False).run()
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny chips: 28 px printed digits (global), 7 px patches, 12 px shapes+mosaic."""
    root = tmp_path_factory.mktemp("style-runs")
    digits = make_printed_digits(16, size=28, seed=0)[0]
    full = dict(image_size=28, slm_pixel_samples=1, camera_pixel_samples=1)
    shapes = make_shapes(16, size=12, seed=0)[0]
    return {
        "global": _train(root / "g", digits, "printed-digits", **full),
        "patch": _train(
            root / "p", cut_patches(digits, 7), "printed-digits+patches7", image_size=7
        ),
        "mosaic": _train(root / "m", shapes, "shapes+mosaic"),
        "plain": _train(root / "s", shapes, "shapes"),
    }


@pytest.fixture(scope="module")
def chips(runs):
    return {k: load_trained(v) for k, v in runs.items()}


def _digits(n=6):
    imgs, labels = make_printed_digits(n, size=28, seed=3)
    return elastic_distort(imgs, seed=1), labels


# ------------------------------------------------------------------ metrics
def test_gram_matrix_of_known_features_is_the_mean_outer_product():
    feat = torch.stack([torch.ones(2, 2), 2 * torch.ones(2, 2)])[None]  # (1, 2, 2, 2)
    torch.testing.assert_close(gram(feat)[0], torch.tensor([[1.0, 2.0], [2.0, 4.0]]))


def test_style_loss_ignores_where_a_texture_is_but_content_loss_does_not():
    j = torch.arange(32)
    stripes = ((j // 2) % 2).float().view(1, 1, 1, 32).expand(1, 1, 32, 32)
    shifted = torch.roll(stripes, 2, -1)  # half a period: every pixel flips
    turned = stripes.transpose(-1, -2)  # another texture
    net = RandomFeatureNet()
    a = feature_losses(net, shifted, stripes, stripes)
    b = feature_losses(net, turned, stripes, stripes)
    assert a["style_loss"] < 0.02 * b["style_loss"]
    assert a["content_loss"] > 0.05 * b["content_loss"]


def test_feature_losses_vanish_for_identical_images_and_the_net_is_seeded():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert feature_losses(RandomFeatureNet(), x, x, x) == {"content_loss": 0.0, "style_loss": 0.0}
    assert torch.equal(RandomFeatureNet().w2, RandomFeatureNet().w2)
    assert not torch.equal(RandomFeatureNet(seed=1).w2, RandomFeatureNet().w2)
    assert RandomFeatureNet().state_dict() == {}  # fixed kernels are not saved state


def test_seam_ratio_is_one_for_a_ramp_and_grows_with_a_per_patch_offset():
    j = torch.arange(28, dtype=torch.float32)
    ramp = (0.01 * j).view(1, 1, 1, 28).expand(2, 1, 28, 28)
    assert seam_ratio(ramp, 7) == pytest.approx(1.0)
    # offset b per patch column: seam jumps a + b, side jumps a (vertical jumps all 0)
    stepped = ramp + 0.03 * (j // 7).view(1, 1, 1, 28)
    assert seam_ratio(stepped, 7) == pytest.approx((0.01 + 0.03) / 0.01, rel=1e-4)
    assert math.isnan(seam_ratio(torch.zeros(1, 1, 28, 28), 7))
    with pytest.raises(ValueError, match="patch_px"):
        seam_ratio(ramp, 28)


def test_printed_targets_are_one_glyph_per_label():
    t = printed_targets(torch.tensor([1, 8, 1]))
    assert t.shape == (3, 1, 28, 28) and torch.equal(t[0], t[2])
    assert t[0].sum() < 0.7 * t[1].sum()  # a "1" has less ink than an "8"


def test_glyph_match_names_each_glyph_whatever_its_brightness_and_offset():
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4, 1])
    glyphs = printed_targets(labels)
    assert torch.equal(glyph_match(glyphs), labels)
    dim = 0.2 * glyphs + 0.05  # a dim camera with an offset: same correlation
    assert torch.equal(glyph_match(dim), labels)
    noisy = glyphs + 0.05 * torch.randn(glyphs.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(glyph_match(noisy), labels)
    swapped = printed_targets((labels + 1) % 10)  # each image is the next digit's glyph
    assert not torch.any(glyph_match(swapped) == labels)


# ------------------------------------------------------------------ patch chip
def test_patchwise_output_is_each_patch_reconstructed_on_its_own(chips):
    ps, _ = chips["patch"]
    x, _ = _digits(2)
    out = patchwise_reconstruct(ps, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out[1, :, 7:14, 21:28], reconstruct(ps, x[1:2, :, 7:14, 21:28])[0])


# ------------------------------------------------------------------ runs
def test_digit_transfer_writes_grid_and_scores_the_untouched_input_as_baseline(chips, tmp_path):
    x, y = _digits()
    rep = run_digit_transfer(chips["global"], chips["patch"], tmp_path, images=x, labels=y)
    on_disk = json.loads((tmp_path / "digits.json").read_text())
    assert on_disk["methods"].keys() == {"input", "global", "patchwise"}
    assert rep["methods"]["input"]["content_loss"] == 0.0
    assert on_disk["seams_between_pixels"] == [[6, 7], [13, 14], [20, 21]]
    assert (tmp_path / "digits.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.json", "digits.png"]


def test_style_transfer_report_has_transfer_baseline_and_control(chips, tmp_path):
    x = make_shapes(5, size=12, seed=9)[0]
    rep = run_style_transfer(*chips["mosaic"], tmp_path, images=x, control=chips["plain"])
    assert rep["style"] == "mosaic" and rep["n"] == 5
    assert rep["baseline"]["content_loss"] == 0.0
    for key in ("transfer", "baseline", "styled_input", "control"):
        assert set(rep[key]) == {"psnr_db", "ssim", "content_loss", "style_loss"}
    assert json.loads((tmp_path / "style.json").read_text())["style"] == "mosaic"
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "style.png").shape[0] > 3 * 12 * 8  # 4 rows, upscaled 8x


@pytest.mark.parametrize(
    "kind, kwargs, word",
    [
        ("plain", {}, "not on a styled set"),
        ("mosaic", {"style": "painterly"}, "style='painterly'"),
        ("mosaic", {"images": torch.rand(2, 1, 16, 16)}, r"\(batch, 1, 12, 12\)"),
        ("mosaic", {"images": torch.full((2, 1, 12, 12), math.nan)}, "finite"),
        ("mosaic", {"images": torch.full((2, 1, 12, 12), 3.0)}, r"\[0, 1\]"),
        ("mosaic", {"control": "mosaic"}, "plain data"),
    ],
)
def test_bad_style_input_raises_and_writes_nothing(chips, tmp_path, kind, kwargs, word):
    if kwargs.get("control") == "mosaic":
        kwargs = {"control": chips["mosaic"], "images": torch.rand(2, 1, 12, 12)}
    with pytest.raises(ValueError, match=word):
        run_style_transfer(*chips[kind], tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "swap, kwargs, word",
    [
        ("patch-as-global", {}, "global checkpoint"),
        ("global-as-patch", {}, "patch checkpoint"),
        ("none", {"labels": torch.tensor([0, 12])}, "0-9"),
        ("none", {"labels": None}, "labels must be"),
    ],
)
def test_bad_digit_input_raises_and_writes_nothing(chips, tmp_path, swap, kwargs, word):
    g, p = chips["global"], chips["patch"]
    if swap == "patch-as-global":
        g = p
    elif swap == "global-as-patch":
        p = g
    x = torch.rand(2, 1, 28, 28)
    args = {"images": x, "labels": torch.tensor([0, 1]), **kwargs}
    with pytest.raises(ValueError, match=word):
        run_digit_transfer(g, p, tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ CLI
def test_style_commands_write_reports_and_refuse_a_plain_chip(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_DATA", str(tmp_path))  # empty: digits fall back to printed
    res = runner.invoke(
        app,
        [
            "style-digits",
            "--global-checkpoint",
            str(runs["global"]),
            "--patch-checkpoint",
            str(runs["patch"]),
            "--n",
            "4",
            "--out",
            str(tmp_path / "d"),
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "d" / "digits.json").read_text())
    assert rep["content"] == "printed-digits+elastic" and rep["n"] == 4
    res = runner.invoke(
        app,
        ["style", "--checkpoint", str(runs["mosaic"]), "--n", "4", "--out", str(tmp_path / "s")],
    )
    assert res.exit_code == 0, res.output
    assert (
        json.loads((tmp_path / "s" / "style.json").read_text())["content"] == "shapes (test split)"
    )
    res = runner.invoke(
        app, ["style", "--checkpoint", str(runs["plain"]), "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2 and "not on a styled set" in " ".join(res.output.split())
    assert not (tmp_path / "x").exists()


class _AlwaysThree(torch.nn.Module):
    """A 'classifier' that answers 3 for every image."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 10)
        logits[:, 3] = 1
        return logits + 0 * self.w


def test_class_accuracy_is_the_fraction_of_labels_the_classifier_gets(chips, tmp_path):
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([3, 3, 3, 7])
    rep = run_digit_transfer(
        chips["global"], chips["patch"], tmp_path, images=x, labels=y, classifier=_AlwaysThree()
    )
    for m in rep["methods"].values():
        assert m["class_accuracy"] == 0.75
        assert 0 <= m["glyph_accuracy"] <= 1
    assert rep["target_class_accuracy"] == 0.75
    assert rep["chip_on_target"]["global"]["content_loss"] > 0


def test_style_npy_holds_input_output_and_target_rows_in_manifest_order(chips, tmp_path):
    import numpy as np

    x = make_shapes(3, size=12, seed=9)[0]
    rep = run_style_transfer(*chips["mosaic"], tmp_path, images=x, fmt="npy")
    arr = np.load(rep["files"]["npy"])
    rows = json.loads((tmp_path / "style-manifest.json").read_text())["images"]
    assert arr.shape == (9, 1, 12, 12) and len(rows) == 9
    assert [r["role"] for r in rows[::3]] == ["input", "chip output", "styled target"]
    assert np.allclose(arr[:3], x.numpy())  # the inputs, untouched
