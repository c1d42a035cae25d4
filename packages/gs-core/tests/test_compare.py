"""``gs3d compare``: several methods under one protocol in one report, with failures as rows.

A toy method (magenta Gaussians on a sphere), one that raises, one that needs weights it does
not ship and a name nothing provides run on a tiny procedural dataset; the report must hold a
row for each with its reason, parse, refuse to overwrite, and draw in a real browser.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import gs_core.plugins.registry as reg
from gs_core import CORE_API_VERSION, Gaussians
from gs_core.config import Config
from gs_core.method import GenerationOutput, Method
from gs_core.plugins.specs import MethodSpec
from gs_core.procedural import ProceduralConfig, generate

pytestmark = pytest.mark.usefixtures("one_thread")

MAGENTA = (1.0, 0.0, 1.0)


class ToyConfig(Config):
    radius: float = 0.25
    presets = {"paper": {}}


class Toy(Method):
    """Magenta Gaussians on a sphere at the origin; the seed moves them a little."""

    config_class = ToyConfig
    name = "toy"

    def generate(self, images, *, seed=None, **kwargs):
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        d = torch.randn(300, 3, generator=gen)
        means = d / d.norm(dim=-1, keepdim=True) * self.config.radius
        colors = torch.tensor(MAGENTA).expand(300, 3)
        return GenerationOutput(gaussians=Gaussians.from_colors(means[None], colors[None], 0.06))


class Broken(Toy):
    def generate(self, images, *, seed=None, **kwargs):
        raise RuntimeError("toy failure for the comparison test")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "ds"
    cfg = ProceduralConfig.preset(
        "eval", objects=2, views=3, resolution=32, points=3000, antialias=2
    )
    generate(cfg, out, workers=0, progress=False)
    return out


@pytest.fixture
def registry(monkeypatch):
    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    common = dict(config_class=ToyConfig, core_api=CORE_API_VERSION, output_frame="world")
    fresh.register_method(MethodSpec("toy", "test", method_class=Toy, has_weights=False, **common))
    fresh.register_method(
        MethodSpec("broken", "test", method_class=Broken, has_weights=False, **common)
    )
    fresh.register_method(MethodSpec("untrained", "test", method_class=Toy, **common))
    return fresh


def _compare(dataset, out, *args):
    from gs_core.cli.main import app

    base = ["compare", "--data", dataset, "--out", out, "--device", "cpu", "--resolution", 32,
            "--geometry-points", 400]  # fmt: skip
    return CliRunner().invoke(app, list(map(str, [*base, *args])))


@pytest.fixture
def report(dataset, registry, tmp_path):
    out = tmp_path / "report"
    r = _compare(dataset, out, "--methods", "toy,broken,untrained,ghost")
    assert r.exit_code == 0, r.output + repr(r.exception)
    return out, r.output


def test_report_has_a_row_per_method_with_reasons(report, dataset):
    out, output = report
    data = json.loads((out / "results.json").read_text())
    by_name = {m["name"]: m for m in data["methods"]}
    assert list(by_name) == ["toy", "broken", "untrained", "ghost"]
    assert [by_name[n]["status"] for n in by_name] == [
        "ok",
        "failed",
        "no weights",
        "unknown method",
    ]
    ids = data["objects"]
    assert len(ids) == 2 and data["protocol"] == "gso" and data["summary_group"] == "all"
    toy = by_name["toy"]
    assert toy["source"].startswith("preset paper")
    summary = toy["summary"]
    assert 0 < summary["psnr"] < 60 and 0 < summary["ssim"] <= 1
    # the exact procedural geometry is there, so the toy's sphere gets geometry scores
    assert data["geometry"] and summary["geometry:chamfer"] > 0
    assert 0 <= summary["geometry:fscore"] <= 1
    assert summary["seconds"] > 0 and summary["memory"] > 0 and toy["peak_memory_bytes"] > 0
    assert toy["report"]["num_objects"] == 2 and toy["report"]["config"]["frame"] == "world"
    broken = by_name["broken"]
    assert broken["reason"] == f"on {ids[0]}: RuntimeError: toy failure for the comparison test"
    assert broken["summary"]["psnr"] is None and broken["images"] == {}
    assert "ships no default checkpoint" in by_name["untrained"]["reason"]
    assert by_name["ghost"]["reason"].startswith("unknown method 'ghost'")
    # every picture the page refers to exists and is a small PNG
    for oid in ids:
        paths = [data["images"][oid]["input"], data["images"][oid]["ground_truth"]]
        paths.append(toy["images"][oid])
        for rel in paths:
            with Image.open(out / rel) as im:
                assert im.format == "PNG" and max(im.size) <= 512
    md = (out / "results.md").read_text()
    for line in ("| toy | ok (preset paper", "| broken | failed: on ", "| untrained | no weights"):
        assert line in md
    assert "| ghost | unknown method 'ghost'" in md
    # the no-3D references, under the table, with the harness's values
    copied = toy["report"]["references"]["input_copied"]["psnr"]["all"]
    ref_line = next(n for n in data["notes"] if n.startswith("no-3D references"))
    assert f"the input copied to every target: PSNR (dB) {copied:.2f}" in ref_line
    assert ref_line in md and "the blank background: PSNR (dB)" in ref_line
    page = (out / "index.html").read_text()
    assert "toy failure for the comparison test" in page and "http" not in page
    assert f'src="images/{ids[0]}/0-toy.png"' in page
    # progress lines and one line per method while it ran
    text = " ".join(output.split())
    assert "[1/4] toy: 2/2" in text and "[2/4] broken: failed: on" in text


def test_refuses_a_non_empty_out_without_overwrite(report, dataset):
    out, _ = report
    before = (out / "results.json").read_text()
    r = _compare(dataset, out, "--methods", "toy")
    assert r.exit_code != 0 and "already exists" in str(r.exception)
    assert (out / "results.json").read_text() == before
    r = _compare(dataset, out, "--methods", "toy", "--overwrite")
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert [m["name"] for m in json.loads((out / "results.json").read_text())["methods"]] == ["toy"]
    assert not (
        out / "images" / next(iter(json.loads(before)["objects"])) / "1-broken.png"
    ).exists()


def test_default_is_every_installed_method_and_an_empty_out_is_taken(dataset, registry, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    r = _compare(dataset, out, "--limit", 1, "--seeds", 2)
    assert r.exit_code == 0, r.output + repr(r.exception)
    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["methods"]] == ["broken", "toy", "untrained"]
    assert data["seeds"] == [0, 1] and len(data["objects"]) == 1
    toy = next(m for m in data["methods"] if m["name"] == "toy")
    assert toy["report"]["seeds"] == [0, 1] and "psnr" in toy["summary_std"]
    assert "±" in (out / "results.md").read_text()


def test_plugin_failures_are_rows_and_bad_options_one_line(dataset, registry, tmp_path):
    from gs_core.comparison import choose_methods, parse_methods

    registry.failures.append(reg.PluginFailure("gone", "gs-method-gone", "ImportError: no x"))
    choices = {c.name: c for c in choose_methods(None, registry)}
    assert choices["gone"].status == "plugin failed"
    assert "gs-method-gone failed to load: ImportError: no x" in choices["gone"].reason
    assert parse_methods(" toy, toy ,broken") == ["toy", "broken"]
    r = _compare(dataset, tmp_path / "x", "--methods", " , ")
    assert r.exit_code != 0 and "--methods: expected comma-separated" in str(r.exception)
    (tmp_path / "file").write_text("x")
    r = _compare(dataset, tmp_path / "file", "--methods", "toy")
    assert r.exit_code != 0 and "expected a directory path" in str(r.exception)
    r = _compare(dataset, tmp_path / "y", "--methods", "toy", "--protocol", "nope")
    assert r.exit_code != 0 and "--protocol" in str(r.exception)
    assert not (tmp_path / "y").exists()


def test_peak_memory_sees_an_allocation():
    from gs_core.comparison.machine import RSS_MEASURE, measure_peak, memory_measure

    if memory_measure(torch.device("cpu")) != RSS_MEASURE:
        pytest.skip("this system cannot reset the peak RSS of a process")
    with measure_peak(torch.device("cpu")) as small:
        pass
    with measure_peak(torch.device("cpu")) as big:
        x = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del x
    assert big.bytes - small.bytes > 48 * 2**20


def test_page_draws_in_headless_chromium(report, tmp_path):
    from gs_core.testing.browser import require_chromium, screenshot

    require_chromium()
    out, _ = report
    png = screenshot(
        (out / "index.html").resolve().as_uri(), tmp_path / "page.png", size=(1400, 1100),
        wait_ms=500,
    )  # fmt: skip
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.float32)
    assert img.std() > 20  # text, table rules and pictures, not a blank page
    # the toy's strips: magenta pixels, which nothing else on the page is
    magenta = (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] > 180)
    assert magenta.sum() > 300
    rows = np.nonzero(magenta.any(1))[0]
    assert rows.min() > 150  # below the score table, where the object rows are
