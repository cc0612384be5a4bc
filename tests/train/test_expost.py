import json
import math

import pytest
import torch

from lightgen.train.expost import (
    GaussianMixture,
    check_sampler_options,
    fit_gmm,
    latents_to_real,
    load_density,
    real_to_latents,
    resolve_sampler,
    save_density,
)


def _two_component_data(n=6000, seed=0):
    """A known 2-D mixture: 30 % at (-3, 0) with a tilted covariance, 70 % at (4, 2)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor([0.3, 0.7], dtype=torch.float64)
    m = torch.tensor([[-3.0, 0.0], [4.0, 2.0]], dtype=torch.float64)
    c = torch.tensor([[[1.0, 0.6], [0.6, 0.8]], [[0.5, -0.2], [-0.2, 1.5]]], dtype=torch.float64)
    truth = GaussianMixture(w, m, c, "full")
    return truth.sample(n, g), truth


def _sorted(gmm):
    order = gmm.means[:, 0].argsort()
    return gmm.weights[order], gmm.means[order], gmm.covariances[order]


def test_em_recovers_weights_means_and_covariances_of_a_known_two_component_mixture():
    x, truth = _two_component_data()
    gmm, rep = fit_gmm(x, 2, "full", seed=0)
    w, m, c = _sorted(gmm)
    assert rep.converged
    assert torch.allclose(w, truth.weights, atol=0.02)
    assert torch.allclose(m, truth.means, atol=0.08)
    assert torch.allclose(c, truth.covariances, atol=0.1)
    # the fitted density explains the data at least as well as the truth (maximum likelihood)
    assert rep.log_likelihood >= truth.log_likelihood(x) - 1e-9


def test_diagonal_em_recovers_per_dimension_variances_and_ignores_the_correlation():
    x, truth = _two_component_data()
    gmm, _ = fit_gmm(x, 2, "diag", seed=1)
    w, m, var = _sorted(gmm)
    assert var.shape == (2, 2)
    assert torch.allclose(w, truth.weights, atol=0.02)
    assert torch.allclose(m, truth.means, atol=0.08)
    assert torch.allclose(var, torch.diagonal(truth.covariances, dim1=-2, dim2=-1), atol=0.1)


def test_full_covariance_samples_have_the_fitted_covariance():
    x, _ = _two_component_data(n=3000)
    gmm, _ = fit_gmm(x, 2, "full", seed=0)
    for k in range(2):
        s = gmm.sample(40_000, torch.Generator().manual_seed(k), component=k)
        assert torch.allclose(s.mean(0), gmm.means[k], atol=0.03)
        assert torch.allclose(torch.cov(s.T), gmm.covariances[k], atol=0.04)


def test_component_log_prob_matches_torch_multivariate_normal():
    x, truth = _two_component_data(n=50)
    ours = truth.component_log_prob(x)
    for k in range(2):
        ref = torch.distributions.MultivariateNormal(truth.means[k], truth.covariances[k]).log_prob(
            x
        ) + math.log(truth.weights[k])
        assert torch.allclose(ours[:, k], ref, atol=1e-9)


def test_fit_is_seeded_and_repeatable():
    x, _ = _two_component_data(n=800)
    a, _ = fit_gmm(x, 5, "full", seed=3)
    b, _ = fit_gmm(x, 5, "full", seed=3)
    assert all(torch.equal(a.tensors()[k], b.tensors()[k]) for k in a.tensors())


def test_covariance_regularisation_keeps_a_component_on_repeated_points_invertible():
    x = torch.cat(
        [torch.zeros(20, 3), torch.randn(200, 3, generator=torch.Generator().manual_seed(0))]
    )
    gmm, rep = fit_gmm(x.double(), 4, "full", seed=0)
    assert rep.reg > 0
    assert torch.linalg.eigvalsh(gmm.covariances).min() >= rep.reg * (1 - 1e-9)
    assert math.isfinite(gmm.log_likelihood(x.double()))


def test_complex_latents_round_trip_through_real_pairs():
    z = torch.randn(7, 5, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    x = latents_to_real(z)
    assert x.shape == (7, 10) and x[0, 0] == z[0, 0].real and x[0, 1] == z[0, 0].imag
    assert torch.equal(real_to_latents(x, True), z)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_saved_density_reloads_bit_exact(tmp_path, covariance):
    x, _ = _two_component_data(n=500)
    gmm, rep = fit_gmm(x, 3, covariance, seed=0)
    save_density(
        tmp_path / "d", gmm, {"rule": "test", "fit_log_likelihood_per_image": rep.log_likelihood}
    )
    back, meta = load_density(tmp_path / "d.safetensors")
    assert back.covariance == covariance and meta["n_components"] == 3
    assert all(torch.equal(gmm.tensors()[k], back.tensors()[k]) for k in gmm.tensors())
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(gmm.sample(10, g1), back.sample(10, g2))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 501}, "n_components"),
        ({"n_components": 2, "covariance": "spherical"}, "covariance='spherical'"),
        ({"n_components": 2, "reg_covar": 0.0}, "reg_covar"),
    ],
)
def test_bad_fit_options_are_refused_by_name(kwargs, named):
    x, _ = _two_component_data(n=500)
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        fit_gmm(x, **kwargs)


def test_complex_points_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="latents_to_real"):
        fit_gmm(torch.randn(10, 2, dtype=torch.complex64), 2)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("gan", None, None), "sampler='gan'"),
        (("prior", 50, None), "gmm_components"),
        (("prior", None, "diag"), "gmm_covariance"),
        (("expost-gmm", 0, None), "gmm_components"),
        (("expost-gmm", 10, "tied"), "covariance='tied'"),
        (("expost-class", 10, None), "gmm_components=10"),
        (("expost-class", None, "tied"), "covariance='tied'"),
    ],
)
def test_bad_sampler_options_are_refused_by_name(args, named):
    with pytest.raises(ValueError, match=named):
        check_sampler_options(*args)


def test_sampler_defaults_are_ten_full_covariance_components():
    assert check_sampler_options("expost-gmm", None, None) == ("expost-gmm", 10, "full")


def test_expost_sampler_is_fitted_once_saved_with_the_checkpoint_and_drives_the_fibers(
    tiny_chip_run,
):
    from lightgen.tasks.generate import sample
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(tiny_chip_run)
    s, rec = resolve_sampler(tiny_chip_run, system, cfg, "expost-gmm", 3, "diag")
    saved = sorted((tiny_chip_run / "checkpoints").glob("step-*/expost/gmm-diag-k3-seed0.*"))
    assert [p.suffix for p in saved] == [".json", ".safetensors"]
    meta = json.loads(saved[0].read_text())
    assert meta["data"]["n_images"] == 64 and meta["data"]["split"] == "train"
    assert meta["n_components"] == 3 and "Ghosh" in meta["rule"]
    assert rec["sampler"] == "expost-gmm" and math.isfinite(rec["fit_log_likelihood_per_image"])
    mtime = saved[1].stat().st_mtime_ns
    s2, _ = resolve_sampler(tiny_chip_run, system, cfg, "expost-gmm", 3, "diag")
    assert saved[1].stat().st_mtime_ns == mtime  # reused, not refitted
    assert all(torch.equal(s.gmm.tensors()[k], s2.gmm.tensors()[k]) for k in s.gmm.tensors())
    imgs, z = sample(system, 6, seed=0, sampler=s)
    assert z.is_complex() and z.shape == (6, system.free_dim)
    assert imgs.shape[0] == 6 and torch.isfinite(imgs).all()


def test_expost_class_sampler_fits_one_gaussian_per_class_of_the_training_split(tiny_chip_run):
    from lightgen.train.data import train_split
    from lightgen.train.expost import encode_means, latents_to_real
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(tiny_chip_run)
    assert check_sampler_options("expost-class", None, None) == ("expost-class", 0, "full")
    s, rec = resolve_sampler(tiny_chip_run, system, cfg, "expost-class", None, "diag")
    saved = sorted((tiny_chip_run / "checkpoints").glob("step-*/expost/class-diag.*"))
    assert [p.suffix for p in saved] == [".json", ".safetensors"]
    ds = train_split(cfg, cfg.dataset, cfg.chip_config().image_size)
    assert rec["sampler"] == "expost-class" and rec["n_components"] == ds.n_classes > 1
    # component c is class c: its mean is the mean encoded latent of that class's images
    x = latents_to_real(encode_means(system, ds.images))
    c = int(ds.labels[0])
    assert torch.allclose(s.gmm.means[c], x[ds.labels == c].mean(0), atol=1e-5)
    z = s.sample(4, torch.Generator().manual_seed(0), component=c)
    assert z.is_complex() and z.shape == (4, system.free_dim)


def test_expost_class_sampler_takes_a_loaded_split_and_its_means(tiny_chip_run):
    from lightgen.train.data import train_split
    from lightgen.train.expost import encode_means, expost_class_sampler
    from lightgen.train.trainer import load_trained

    system, cfg = load_trained(tiny_chip_run)
    ds = train_split(cfg, cfg.dataset, cfg.chip_config().image_size)
    mu = encode_means(system, ds.images)
    own = expost_class_sampler(tiny_chip_run, system, cfg, "diag", refit=True)
    given = expost_class_sampler(tiny_chip_run, system, cfg, "diag", True, train=ds, means=mu)
    assert torch.allclose(own.gmm.means, given.gmm.means, atol=1e-12)
    shifted = expost_class_sampler(
        tiny_chip_run, system, cfg, "diag", True, train=ds, means=mu + 1.0
    )  # the given means are used, not re-encoded
    assert not torch.allclose(own.gmm.means, shifted.gmm.means)
    expost_class_sampler(tiny_chip_run, system, cfg, "diag", refit=True)  # the run's own again
    with pytest.raises(ValueError, match="means has 3 rows"):
        expost_class_sampler(tiny_chip_run, system, cfg, "diag", True, train=ds, means=mu[:3])


@pytest.fixture(scope="module")
def tiny_chip_run(tmp_path_factory):
    from lightgen.data.procedural import make_printed_digits
    from lightgen.train.config import TrainConfig
    from lightgen.train.trainer import Trainer

    run = tmp_path_factory.mktemp("tiny-expost")
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(preset="tiny", steps=2, batch_size=8, checkpoint_every=2, train_limit=64)
    Trainer(cfg, run, images, progress=False).run()
    return run


def test_class_gaussians_are_each_class_sample_mean_and_covariance():
    from lightgen.train.expost import fit_class_gaussians

    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 3, generator=g, dtype=torch.float64) * 0.5 + 4.0
    b = torch.randn(200, 3, generator=g, dtype=torch.float64) @ torch.diag(
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    )
    x = torch.cat([b, a])
    labels = torch.cat([torch.zeros(200), torch.ones(400)]).long()
    gmm = fit_class_gaussians(x, labels, 2, reg_covar=0.0)
    assert gmm.weights.tolist() == pytest.approx([1 / 3, 2 / 3])
    assert torch.allclose(gmm.means[1], a.mean(0))
    assert torch.allclose(gmm.covariances[0], torch.cov(b.T, correction=0))
    with pytest.raises(ValueError, match="class 2 has 0"):
        fit_class_gaussians(x, labels, 3)
