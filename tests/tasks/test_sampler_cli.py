import json

from typer.testing import CliRunner

from lightgen.cli import app

runner = CliRunner()


def _text(res) -> str:
    return " ".join(res.output.split())


def test_eval_with_an_expost_mixture_records_it_and_the_copying_control(
    tiny_run, tmp_path, monkeypatch
):
    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "eval.json"
    args = ["eval", "--checkpoint", str(tiny_run), "--n", "64", "--out", str(out)]
    res = runner.invoke(app, [*args, "--sampler", "expost-gmm", "--gmm-components", "3"])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["sampler"]["sampler"] == "expost-gmm"
    assert r["sampler"]["n_components"] == 3 and r["sampler"]["covariance"] == "full"
    assert r["sampler"]["data"]["dataset"] == "printed-digits"
    assert r["precision"] >= 0 and r["recall"] >= 0
    assert r["nearest_train_l2_median_generated"] > 0
    assert r["nearest_train_l2_median_held_out"] >= 0 and "nearest_train_l2_ratio" in r
    # the rendered-space control: samples and held-out renderings against rendered training
    assert r["nearest_rendered_train_l2_median_generated"] > 0
    assert r["nearest_rendered_train_l2_median_held_out"] > 0
    assert "training images" in r["nearest_rendered_train_rule"]


def test_generate_with_an_expost_mixture_writes_its_record_beside_the_grid(tiny_run, tmp_path):
    res = runner.invoke(
        app,
        [
            *("generate", "--checkpoint", str(tiny_run), "--n", "8", "--out", str(tmp_path)),
            *("--sampler", "expost-gmm", "--gmm-components", "2", "--gmm-covariance", "diag"),
        ],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "sampler.json").read_text())
    assert rec["sampler"] == "expost-gmm" and rec["covariance"] == "diag" and rec["n"] == 8
    assert (tmp_path / "samples.png").is_file()


def test_mixture_options_without_the_expost_sampler_are_refused_by_name(tiny_run, tmp_path):
    res = runner.invoke(
        app, ["eval", "--checkpoint", str(tiny_run), "--gmm-components", "50", "--n", "8"]
    )
    assert res.exit_code == 2 and "gmm_components only apply to sampler='expost-gmm'" in _text(res)


def test_an_unknown_sampler_is_refused_with_the_choices(tiny_run, tmp_path):
    res = runner.invoke(app, ["generate", "--checkpoint", str(tiny_run), "--sampler", "vampprior"])
    assert res.exit_code == 2 and "'prior'" in _text(res) and "'expost-gmm'" in _text(res)


def test_eval_refine_fits_its_own_expost_mixture_on_the_finer_grids_latents(
    tiny_run, tmp_path, monkeypatch
):
    """The fine grid's encoder puts images elsewhere: its ex-post fit is its own file, and the
    own-grid fit is neither reused there nor overwritten by it."""
    import torch
    from safetensors.torch import load_file

    monkeypatch.setenv("LIGHTGEN_CACHE", str(tmp_path / "cache"))
    base = ["eval", "--checkpoint", str(tiny_run), "--n", "16", "--sampler", "expost-gmm"]
    base += ["--gmm-components", "2", "--gmm-covariance", "diag"]
    for r in (1, 2):
        res = runner.invoke(app, [*base, "--refine", str(r), "--out", str(tmp_path / f"{r}.json")])
        assert res.exit_code == 0, res.output
    (own,) = (tiny_run / "checkpoints").glob("step-*/expost/gmm-diag-k2-seed0.json")
    fine = own.with_name("gmm-diag-k2-seed0-refined2.json")
    assert "refine" not in json.loads(own.read_text())["data"]
    assert json.loads(fine.read_text())["data"]["refine"] == 2
    a, b = (load_file(p.with_suffix(".safetensors")) for p in (own, fine))
    assert any(not torch.allclose(a[k], b[k]) for k in a)  # fitted on other latents
    rec = json.loads((tmp_path / "2.json").read_text())["sampler"]
    assert rec["path"].endswith("gmm-diag-k2-seed0-refined2.safetensors")
