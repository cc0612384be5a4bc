import json
import math
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch

from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.denoise import (
    DEFAULT_SIGMAS,
    add_gaussian_noise,
    denoise,
    denoise_scores,
    load_digits,
    run_denoise,
)
from lightgen.tasks.generate import reconstruct

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def digits():
    return make_printed_digits(16, size=12, seed=7)[0]


def test_zero_noise_leaves_the_input_clean_so_pbmp_before_is_zero(tiny, digits):
    system, _ = tiny
    (lv,) = denoise(system, digits, sigmas=[0.0])
    assert torch.equal(lv["noisy"], digits)
    assert lv["pbmp_before_pct"] == 0 and lv["psnr_before_db"] == math.inf
    assert lv["pbmp_relative_reduction_pct"] is None  # nothing to reduce


def test_bad_pixel_fraction_of_gaussian_noise_is_the_normal_tail_probability():
    # mid-grey: clipping at 0/1 is 5 sigma away, so P(|sigma n| > delta) = erfc(delta/(sigma sqrt 2))
    clean = torch.full((64, 1, 12, 12), 0.5)
    sigma, delta = 0.1, 35 / 255
    noisy = add_gaussian_noise(clean, sigma, torch.Generator().manual_seed(0))
    s = denoise_scores(clean, noisy, clean)
    expected = 100 * math.erfc(delta / (sigma * math.sqrt(2)))  # 17.1 %
    assert s["pbmp_before_pct"] == pytest.approx(expected, abs=2.0)  # 9216 px: sd 0.4 %
    assert (noisy - clean).std().item() == pytest.approx(sigma, rel=0.03)
    assert s["pbmp_after_pct"] == 0 and s["pbmp_relative_reduction_pct"] == 100


def test_noisy_images_are_clipped_to_the_unit_range():
    clean = torch.cat([torch.zeros(8, 1, 12, 12), torch.ones(8, 1, 12, 12)])
    noisy = add_gaussian_noise(clean, 0.4, torch.Generator().manual_seed(1))
    assert noisy.min() >= 0 and noisy.max() <= 1
    # half the noise pushes black pixels below 0 -> clipped back to exactly 0
    assert (noisy[:8] == 0).float().mean().item() == pytest.approx(0.5, abs=0.06)


def test_noise_levels_share_one_draw_so_deviations_scale_with_sigma(tiny):
    system, _ = tiny
    clean = torch.full((4, 1, 12, 12), 0.5)
    a, b = denoise(system, clean, sigmas=[0.02, 0.04], seed=3)
    torch.testing.assert_close(b["noisy"] - clean, 2 * (a["noisy"] - clean), atol=1e-6, rtol=0)


def test_scores_on_a_hand_made_example():
    clean = torch.zeros(1, 1, 10, 10)
    noisy, out = clean.clone(), clean.clone()
    noisy.view(-1)[:10] = 1.0  # 10 % bad, MSE 0.1 -> 10 dB
    out.view(-1)[:5] = 1.0  # 5 % bad, MSE 0.05 -> 13.01 dB
    out.view(-1)[5:10] = 30 / 255  # below delta = 35/255: not bad
    s = denoise_scores(clean, noisy, out)
    assert s["pbmp_before_pct"] == pytest.approx(10) and s["pbmp_after_pct"] == pytest.approx(5)
    assert s["pbmp_relative_reduction_pct"] == pytest.approx(50)
    assert s["psnr_before_db"] == pytest.approx(10.0)
    mse_after = (5 * 1 + 5 * (30 / 255) ** 2) / 100
    assert s["psnr_after_db"] == pytest.approx(-10 * math.log10(mse_after))


def test_output_is_the_chip_reconstruction_of_the_noisy_input(tiny, digits):
    system, _ = tiny
    (lv,) = denoise(system, digits, sigmas=[0.3], seed=2)
    torch.testing.assert_close(lv["output"], reconstruct(system, lv["noisy"]).cpu())


def test_run_denoise_writes_report_and_grid(tiny, tmp_path):
    system, cfg = tiny
    rep = run_denoise(system, cfg, tmp_path, n=12, dataset="printed-digits", n_show=5)
    saved = json.loads((tmp_path / "denoise.json").read_text())
    assert saved["dataset"] == "printed-digits" and saved["n"] == 12
    assert [lv["sigma"] for lv in saved["levels"]] == list(DEFAULT_SIGMAS)
    assert rep["best_relative_pbmp_reduction_pct"] == max(
        lv["pbmp_relative_reduction_pct"] for lv in saved["levels"]
    )
    grid = iio.imread(tmp_path / "denoise.png")
    up = 6  # ceil(64 / 12)
    assert grid.shape[:2] == ((12 * 13 + 1) * up, (5 * 13 + 1) * up)  # 3 rows x 4 levels, 5 cols
    assert not list(tmp_path.glob(".tmp-*"))


def test_missing_mnist_falls_back_to_printed_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGEN_DATA", str(tmp_path))  # a data root without mnist/
    images, name = load_digits(12, 8)
    assert name == "printed-digits" and images.shape == (8, 1, 12, 12)


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="shared MNIST not present")
def test_mnist_test_split_is_used_when_present():
    images, name = load_digits(12, 8, data_root=str(SHARED_DATA))
    assert name == "mnist" and images.shape == (8, 1, 12, 12)


@pytest.mark.parametrize(
    ("sigmas", "match"),
    [([-0.1], r"sigmas\[0\]=-0.1"), ([0.1, math.nan], r"sigmas\[1\]=nan"), ([], "empty")],
)
def test_bad_noise_levels_are_refused(tiny, digits, sigmas, match):
    with pytest.raises(ValueError, match=match):
        denoise(tiny[0], digits, sigmas)


def test_negative_sigma_in_add_noise_is_refused():
    with pytest.raises(ValueError, match=r"sigma=-1\.0"):
        add_gaussian_noise(torch.zeros(1, 1, 4, 4), -1)


def test_images_of_the_wrong_size_are_refused(tiny):
    with pytest.raises(ValueError, match=r"\(3, 1, 13, 13\).*size=12"):
        denoise(tiny[0], torch.zeros(3, 1, 13, 13), [0.1])


def test_zero_images_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        run_denoise(*tiny, tmp_path, n=0, dataset="printed-digits")
