"""The run report: one self-contained HTML page (parsed here; tests/tasks/test_report_browser.py
opens it in a real browser)."""

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from lightgen.cli import app
from lightgen.data.procedural import make_printed_digits
from lightgen.tasks.report import SECTIONS, NotARunError, find_run, write_report
from lightgen.train.config import TrainConfig
from lightgen.train.trainer import Trainer

runner = CliRunner()


class PageParser(HTMLParser):
    """Section ids, every src/href, every <img>, and tags that would load something."""

    def __init__(self):
        super().__init__()
        self.sections, self.urls, self.imgs, self.loaders, self.text = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        for key in ("src", "href", "srcset", "data", "poster"):
            if key in a:
                self.urls.append(a[key])
        if tag == "img":
            self.imgs.append(a)
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.loaders.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(path) -> PageParser:
    p = PageParser()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def mixture_run(tmp_path_factory):
    """A tiny chip with a 10-component mixture prior (labels exist: per-class grid), with an
    eval JSON and its per-class PNG beside it."""
    run = tmp_path_factory.mktemp("mixture-run")
    images = make_printed_digits(64, size=12, seed=0)[0]
    cfg = TrainConfig(
        preset="tiny", steps=3, batch_size=8, checkpoint_every=3, prior="mixture", n_components=10
    )
    Trainer(cfg, run, images, progress=False).run()
    (run / "eval-printed-digits.json").write_text(
        json.dumps({"dataset": "printed-digits", "fid": 12.5, "kid_mean": 0.01, "nested": {"x": 1}})
    )
    return run


@pytest.fixture(scope="module")
def page(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(tiny_run, out)


def test_report_page_has_every_section_and_no_failed_part(page):
    assert page.errors == {}, page.errors
    assert page.missing == []
    assert parse(page.path).sections == list(SECTIONS)


def test_report_page_loads_nothing_from_outside_the_file(page):
    p = parse(page.path)
    assert p.loaders == []  # no <script>, <link>, <iframe>: style and images are inline
    for url in p.urls:
        assert url.startswith(("data:", "#")), url
    text = page.path.read_text()
    assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}/", text.replace("data:", ""))
    assert "@import" not in text and "url(" not in text


def test_report_images_are_png_data_uris_that_decode(page):
    imgs = parse(page.path).imgs
    assert len(imgs) >= 8  # drawing, curves, samples, reconstructions, strip, planes, maps, OLS
    for img in imgs:
        head, data = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        arr = iio.imread(io.BytesIO(base64.b64decode(data, validate=True)), extension=".png")
        assert arr.shape[0] > 0 and arr.shape[1] > 0
        assert img.get("alt")


def test_report_names_the_run_and_its_numbers(page):
    text = " ".join(parse(page.path).text)
    for fact in ("tiny", "9,216", "PSNR", "TOPS", "TOPS/W", "energy per image", "band kept"):
        assert fact in text, fact
    assert "generator diffraction efficiency" in text


def test_report_has_a_per_class_grid_and_the_eval_metrics(mixture_run, tmp_path):
    res = write_report(mixture_run, tmp_path / "r.html")
    assert res.errors == {}, res.errors
    text = " ".join(parse(res.path).text)
    assert "eval-printed-digits.json" in text and "fid" in text and "12.5" in text
    assert "one row per class" in text  # no per-class PNG beside the JSON: the page makes its own


def test_report_command_writes_the_page_beside_the_run_by_default(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert (run / "report.html").is_file()


def test_report_of_a_folder_that_is_not_a_run_is_a_named_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2
    assert "is not a lightgen run" in " ".join(res.output.split())
    res = runner.invoke(app, ["report", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "is not a folder" in " ".join(res.output.split())
    with pytest.raises(NotARunError, match=r"config\.json, log\.csv"):
        find_run(tmp_path)


def test_report_of_a_run_without_log_says_so_on_the_page(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "log.csv").unlink()
    res = write_report(run)
    assert res.errors == {}
    assert any("log.csv" in m for m in res.missing)
    p = parse(res.path)
    assert p.sections == list(SECTIONS)
    assert "No training log (log.csv)" in " ".join(p.text)


def test_report_of_a_run_without_checkpoints_says_so_on_the_page(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "checkpoints")
    res = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    p = parse(tmp_path / "r.html")
    text = " ".join(p.text)
    assert p.sections == list(SECTIONS)
    assert "No checkpoint in this run" in text
    assert "diffractive neurons" in text and "TOPS" in text  # design and hardware from config


def test_report_of_a_demo_folder_uses_its_run(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "run")
    assert find_run(tmp_path).path == tmp_path / "run"


def test_a_failing_section_shows_its_error_and_the_page_is_kept(tiny_run, tmp_path, monkeypatch):
    import lightgen.tasks.report as report

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    monkeypatch.setattr(report, "hardware_section", lambda run: 1 / 0)
    res = write_report(run)
    assert set(res.errors) == {"hardware"}
    p = parse(res.path)
    assert p.sections == list(SECTIONS)
    assert "This section could not be made: ZeroDivisionError" in " ".join(p.text)


def test_report_shows_the_energy_curve_of_eval_input_power_w(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "eval-energy-printed-digits.json").write_text(
        json.dumps({"dataset": "printed-digits", "curve": [], "n_reconstructed": 16})
    )
    iio.imwrite(run / "eval-energy-printed-digits.png", np.full((8, 8, 3), 127, dtype=np.uint8))
    res = write_report(run, tmp_path / "r.html")
    alts = [a.get("alt", "") for a in parse(res.path).imgs]
    assert any("optical energy per image" in a for a in alts)
