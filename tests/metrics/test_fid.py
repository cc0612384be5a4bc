"""FID, KID and precision/recall against closed forms and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgen.metrics.classifier import SmallCNN
from lightgen.metrics.fid import (
    frechet_distance,
    frechet_distance_from_moments,
    generative_scores,
    kernel_inception_distance,
    mmd2_unbiased,
    precision_recall,
    torchscript_features,
)


def _gauss(n, d, seed, mean=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(mean, scale, size=(n, d))


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = _gauss(300, 8, 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_equals_closed_form_on_sample_moments():
    # Correlated Gaussians so Sigma1 Sigma2 is far from diagonal.
    rng = np.random.default_rng(1)
    a = _gauss(500, 6, 2) @ rng.normal(size=(6, 6))
    b = _gauss(400, 6, 3) @ rng.normal(size=(6, 6)) + 0.7
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real  # the textbook (non-symmetric) route
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_diagonal_gaussians_matches_analytic_value():
    # FD = ||mu1 - mu2||^2 + sum_i (sigma1_i - sigma2_i)^2 for diagonal covariances.
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 0.5]), np.array([0.5, 1.0, 0.0, -0.5])
    sd1, sd2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([1.5, 1.0, 0.5, 2.0])
    analytic = np.sum((mu1 - mu2) ** 2) + np.sum((sd1 - sd2) ** 2)
    exact = frechet_distance_from_moments(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2))
    assert exact == pytest.approx(analytic, rel=1e-12)
    a = _gauss(40_000, 4, 4) * sd1 + mu1
    b = _gauss(40_000, 4, 5) * sd2 + mu2
    assert frechet_distance(a, b) == pytest.approx(analytic, rel=0.03)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 40))
def test_translating_a_set_adds_exactly_the_squared_shift(seed, n):
    # Holds for any covariance, including singular ones (here n may be < d = 16).
    x = _gauss(n, 16, seed)
    c = np.random.default_rng(seed + 1).normal(size=16)
    assert frechet_distance(x, x + c) == pytest.approx(float(c @ c), rel=1e-6, abs=1e-6)


def test_few_sample_route_agrees_with_the_covariance_route():
    # n < D takes the SVD-of-centred-data route; the moments route must give the same.
    a, b = _gauss(12, 30, 21), _gauss(9, 30, 22, mean=0.2, scale=1.5)
    moments = frechet_distance_from_moments(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert frechet_distance(a, b) == pytest.approx(moments, rel=1e-8)


def test_frechet_distance_is_symmetric_and_accepts_tensors():
    a, b = _gauss(200, 5, 6), _gauss(150, 5, 7, scale=2.0)
    fab = frechet_distance(torch.from_numpy(a).float(), b)
    assert fab == pytest.approx(frechet_distance(b, a), rel=1e-5)


def test_mmd2_matches_a_brute_force_double_sum():
    x, y = _gauss(7, 3, 8), _gauss(5, 3, 9, mean=0.3)

    def k(p, q):
        return (p @ q / 3 + 1) ** 3

    sxx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    syy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    sxy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert mmd2_unbiased(x, y) == pytest.approx(sxx + syy - 2 * sxy, rel=1e-10)


def test_kid_of_samples_from_one_distribution_is_zero_within_noise():
    mean, std = kernel_inception_distance(
        _gauss(1000, 10, 10), _gauss(1000, 10, 11), n_subsets=30, subset_size=300
    )
    assert abs(mean) < 3 * std


def test_kid_of_shifted_distributions_is_clearly_positive():
    mean, std = kernel_inception_distance(
        _gauss(1000, 10, 12), _gauss(1000, 10, 13, mean=0.5), n_subsets=30, subset_size=300
    )
    assert mean > 10 * std and mean > 0


def test_kid_is_reproducible_for_a_seed():
    a, b = _gauss(200, 4, 14), _gauss(200, 4, 15)
    assert kernel_inception_distance(a, b, 5, 50, seed=3) == kernel_inception_distance(
        a, b, 5, 50, seed=3
    )


def test_kid_with_precomputed_kernels_equals_kid_per_subset():
    a, b = _gauss(120, 6, 23), _gauss(100, 6, 24, mean=0.3)
    fast = kernel_inception_distance(a, b, 8, 50, seed=1, precompute=True)
    slow = kernel_inception_distance(a, b, 8, 50, seed=1, precompute=False)
    assert fast == pytest.approx(slow, rel=1e-9)


def test_precision_and_recall_of_identical_sets_are_one():
    x = _gauss(200, 5, 16)
    assert precision_recall(x, x) == (1.0, 1.0)


def test_precision_and_recall_of_far_disjoint_sets_are_zero():
    x = _gauss(200, 5, 17)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_mode_collapse_keeps_precision_but_halves_recall():
    # real: two far clusters; fake: only one of them (a collapsed generator)
    real = np.concatenate([_gauss(200, 4, 18), _gauss(200, 4, 19) + 50.0])
    fake = _gauss(200, 4, 20)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.9
    assert recall == pytest.approx(0.5, abs=0.06)


def test_precision_recall_counts_points_on_the_ball_surface_as_inside():
    # 1-D: real {0, 1, 2}, k=1 radii = 1; fake 3.0 lies exactly on the ball around 2.
    real = np.array([[0.0], [1.0], [2.0]])
    fake = np.array([[3.0], [3.5], [10.0]])
    precision, _ = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (frechet_distance, (np.zeros(5), np.zeros((5, 1))), "2-D"),
        (frechet_distance, (np.zeros((5, 2)), np.zeros((5, 3))), "same feature network"),
        (frechet_distance, (np.zeros((1, 2)), np.zeros((5, 2))), "at least 2 rows"),
        (frechet_distance, (np.full((3, 2), np.nan), np.zeros((3, 2))), "NaN"),
        (precision_recall, (np.zeros((4, 2)), np.zeros((4, 2)), 4), "k must"),
        (kernel_inception_distance, (np.zeros((4, 2)), np.zeros((4, 2)), 0), "n_subsets"),
    ],
)
def test_bad_feature_inputs_raise_naming_the_problem(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_generative_scores_reports_every_score_and_the_feature_space():
    torch.manual_seed(0)
    real = torch.rand(60, 1, 28, 28)
    model = SmallCNN(1, 10, 28)
    model.dataset_name = "toy"
    scores = generative_scores(real, real.clone(), model, kid_subsets=5, kid_subset_size=30)
    assert scores["features"] == "SmallCNN(toy) penultimate 1152-d"
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    assert (scores["n_real"], scores["n_fake"]) == (60, 60)
    assert model.training  # the caller's mode is restored


def test_generative_scores_with_a_plain_function_and_a_shifted_fake_set():
    real = torch.rand(80, 1, 8, 8)
    fake = real + 1.0

    def flat(x):
        return x.flatten(1)

    scores = generative_scores(real, fake, flat, kid_subsets=5, kid_subset_size=40)
    assert scores["fid"] == pytest.approx(64.0, rel=1e-6)  # shift of 1 in 64 dims
    assert scores["features"] == "flat"
    with pytest.raises(ValueError, match="fake_images"):
        generative_scores(real, fake[0], flat)


def test_torchscript_features_load_a_user_file_and_never_download(tmp_path):
    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    path = tmp_path / "tiny.pt"
    with pytest.warns(DeprecationWarning):  # torch >= 2.10 deprecates TorchScript
        torch.jit.save(torch.jit.script(Tiny()), str(path))
    fn = torchscript_features(str(path), input_size=16, input_scale=255.0)
    out = fn(torch.full((2, 1, 8, 8), 0.5))
    torch.testing.assert_close(out, torch.full((2, 3), 127.5))  # grey -> 3 channels, x255
    assert "tiny.pt" in fn.description and "16px" in fn.description
    with pytest.raises(ValueError, match="path="):
        torchscript_features(str(tmp_path / "inception.pt"))


def test_exported_program_files_are_accepted_too(tmp_path):
    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x.amax(dim=(2, 3))

    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(Tiny(), (torch.rand(2, 3, 8, 8),)), str(path))
    out = torchscript_features(str(path))(torch.full((2, 3, 8, 8), 0.25))
    torch.testing.assert_close(out, torch.full((2, 3), 0.25))


def test_torchscript_features_warns_in_its_docstring_that_loading_runs_the_files_code():
    from lightgen.metrics.fid import torchscript_features

    doc = " ".join(torchscript_features.__doc__.split())
    assert "loading this file runs its code" in doc and "trust" in doc
