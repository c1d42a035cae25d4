"""The CLI as a person meets it: outputs never replaced or doubled up, text printed as written,
CPU threads chosen deliberately, progress also in log files, and ``--json`` results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from gs_core import CORE_API_VERSION, Gaussians
from gs_core.config import Config
from gs_core.errors import GS3DError, ValidationError
from gs_core.imaging import save_image
from gs_core.io import save_ply
from gs_core.method import GenerationOutput, Method


def cli(*args, **env):
    from gs_core.cli.main import app

    return CliRunner().invoke(app, list(map(str, args)), env=env or None)


class BlobConfig(Config):
    count: int = 200
    presets = {"paper": {}}


class Blob(Method):
    """A deterministic method: a small ball of Gaussians in the input's mean colour."""

    config_class = BlobConfig
    name = "blob"
    built = 0

    def __init__(self, config):
        super().__init__(config)
        Blob.built += 1

    def generate(self, images, seed=None, **kwargs):
        self.check_images(images)
        gen = torch.Generator().manual_seed(0)
        n = self.config.count
        means = torch.randn(n, 3, generator=gen) * 0.2
        colors = images[:, :3].mean((2, 3)).expand(n, 3)
        g = Gaussians.from_colors(means, colors, 0.05, 0.9)
        batched = Gaussians(*(t[None] for t in (g.means, g.quats, g.scales, g.opacities, g.sh)))
        return GenerationOutput(gaussians=batched, timings={"blob": 0.001})


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    from gs_core.procedural import ProceduralConfig, generate

    out = tmp_path_factory.mktemp("examples") / "ds"
    cfg = ProceduralConfig.preset(
        "eval", objects=2, views=3, resolution=16, points=500, antialias=1, split="test"
    )
    generate(cfg, out, workers=0, progress=False)
    return out


@pytest.fixture
def registry(monkeypatch, examples):
    import gs_core.plugins.registry as reg
    from gs_core.plugins.specs import MethodSpec

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    fresh.register_method(
        MethodSpec(
            "blob",
            "test",
            config_class=BlobConfig,
            factory=Blob,
            core_api=CORE_API_VERSION,
            has_weights=False,
            examples_dir=str(examples),
            output_frame="world",
        )
    )
    Blob.built = 0
    return fresh


@pytest.fixture
def image(tmp_path):
    img = np.zeros((24, 24, 4), np.float32)
    img[6:18, 6:18] = (0.2, 0.6, 0.9, 1.0)
    path = tmp_path / "in.png"
    save_image(path, img)
    return path


@pytest.fixture
def scene(tmp_path):
    g = Gaussians.from_colors(torch.randn(64, 3) * 0.3, torch.rand(64, 3), 0.05, 0.9)
    return save_ply(tmp_path / "scene.ply", g)


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# ------------------------------------------------------------------ nothing replaced


def test_demo_refuses_to_replace_an_earlier_demo_before_any_work(registry, tmp_path):
    out = tmp_path / "demo"
    args = ("demo", "--method", "blob", "--out", out, "--resolution", 16, "--device", "cpu")
    first = cli(*args)
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert {"results.json", "results.md", "turntable.gif"} <= set(_tree(out))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    built = Blob.built

    again = cli(*args)
    assert isinstance(again.exception, GS3DError), again.output
    assert "--overwrite" in str(again.exception) and str(out) in str(again.exception)
    assert Blob.built == built  # refused before the model was built
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    forced = cli(*args, "--overwrite")
    assert forced.exit_code == 0, forced.output + repr(forced.exception)


def test_demo_into_a_file_or_a_folder_of_other_files(registry, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("keep")
    r = cli("demo", "--method", "blob", "--out", blocker, "--device", "cpu")
    assert isinstance(r.exception, GS3DError) and "expected a folder" in str(r.exception)
    assert blocker.read_text() == "keep" and Blob.built == 0
    # A folder that holds unrelated files only is fine: nothing of the demo's would be replaced.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    r = cli("demo", "--method", "blob", "--out", other, "--resolution", 16, "--device", "cpu")
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert (other / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "args, field",
    [
        (("render", "{scene}", "--turntable", "{d}/a.gif", "--grid", "{d}/a.gif"), "--grid"),
        (("render", "{scene}", "--grid", "{d}/x/../a.png", "--turntable", "{d}/a.png"), "--grid"),
        (("render", "{scene}", "--grid", "{scene}", "--overwrite"), "--grid"),
        (
            (
                "generate",
                "{image}",
                "--method",
                "blob",
                "-o",
                "{d}/x.ply",
                "--turntable",
                "{d}/x.ply",
            ),
            "--turntable",
        ),  # fmt: skip
        (("generate", "{image}", "--method", "blob", "-o", "{image}", "--overwrite"), "--out"),
    ],
)
def test_an_output_equal_to_another_output_or_an_input_is_refused_first(
    registry, scene, image, tmp_path, args, field
):
    d = tmp_path / "outs"
    d.mkdir()
    (d / "x").mkdir()
    scene_bytes, image_bytes = scene.read_bytes(), image.read_bytes()
    r = cli(*(a.format(scene=scene, image=image, d=d) for a in args), "--device", "cpu")
    assert isinstance(r.exception, ValidationError), r.output + repr(r.exception)
    assert str(r.exception).startswith(f"{field}: expected a path different from")
    assert _tree(d) == ["x"] and Blob.built == 0
    assert scene.read_bytes() == scene_bytes and image.read_bytes() == image_bytes


def test_fit_refuses_an_output_that_is_one_of_the_objects_inputs(examples, tmp_path):
    from gs_core.fitting import FitConfig, fit_object

    obj = next(p for p in examples.iterdir() if (p / "transforms.json").is_file())
    before = (obj / "transforms.json").read_bytes()
    with pytest.raises(ValidationError, match=r"^out: expected a path different from the input"):
        fit_object(obj, FitConfig.preset("tiny"), out=obj / "transforms.json", overwrite=True)
    r = cli("fit", obj, "--out", obj / "points.ply", "--overwrite", "--preset", "tiny")
    assert isinstance(r.exception, ValidationError) and "points.ply" in str(r.exception)
    assert (obj / "transforms.json").read_bytes() == before


def test_fit_of_a_dataset_checks_every_destination_before_fitting(examples, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(examples, root)
    first, second = sorted(p for p in root.iterdir() if (p / "transforms.json").is_file())
    (second / "gaussians.ply").write_text("an earlier fit")
    r = cli("fit", root, "--split", "all", "--preset", "tiny", "--device", "cpu")
    assert r.exception is not None and "gaussians.ply: already exists" in str(r.exception)
    assert not (first / "gaussians.ply").exists()  # refused before the first object was fitted
    assert (second / "gaussians.ply").read_text() == "an earlier fit"


# ------------------------------------------------------------------ text printed as written


def test_help_texts_keep_their_brackets():
    from gs_core.cli.help_text import escape_help_markup

    app = typer.Typer()

    @app.command()
    def run(
        checkpoint: str = typer.Option("x", help="Checkpoint [default: the bundled one]."),
    ) -> None:
        """Needs pip install 'gs3d-core[cuda]'."""

    @app.command()
    def other() -> None:
        """Second command, so that the app is a group."""

    escape_help_markup(app)
    r = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "Checkpoint [default: the bundled one]." in r.output
    assert "pip install 'gs3d-core[cuda]'" in r.output


def test_every_gs3d_help_text_renders_verbatim():
    """The wiring: after main's escaping, no help text of the real command tree loses text."""
    from rich.text import Text

    from gs_core.cli.main import app

    def walk(cmd):
        yield cmd.help or ""
        for p in cmd.params:
            yield getattr(p, "help", None) or ""
        for sub in getattr(cmd, "commands", {}).values():
            yield from walk(sub)

    texts = list(walk(typer.main.get_command(app)))
    assert len(texts) > 50
    for text in texts:
        assert Text.from_markup(text).plain == text.replace("\\[", "["), text


def test_user_text_with_brackets_is_printed_as_written(registry, image, tmp_path):
    out = tmp_path / "[red]x[/]" / "scan[cuda].ply"
    r = cli("generate", image, "--method", "blob", "-o", out, "--device", "cpu")
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert f"-> {out}" in r.output


# ------------------------------------------------------------------ CPU threads


def test_set_cpu_threads_default_and_explicit(monkeypatch):
    import gs_core.devices as devices

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(devices, "available_cores", lambda: 2)
    assert devices.set_cpu_threads(None) == 1  # measured default on a 2-core machine
    torch.set_num_threads(3)
    assert devices.set_cpu_threads(0) == 3  # 0 keeps torch's own choice
    monkeypatch.setattr(devices, "available_cores", lambda: 16)
    assert devices.set_cpu_threads(None) == 3  # unmeasured machines keep torch's choice
    monkeypatch.setattr(devices, "available_cores", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert devices.set_cpu_threads(None) == 3  # the user's OMP_NUM_THREADS wins
    assert devices.set_cpu_threads(2) == 2
    with pytest.raises(GS3DError, match="--threads"):
        devices.set_cpu_threads(-1)


@pytest.mark.parametrize("command", ["fit", "render", "generate", "eval", "demo"])
def test_every_computing_command_takes_threads(command):
    r = cli(command, "--help", COLUMNS="200")
    assert "--threads" in r.output


def test_threads_option_reaches_torch(scene, tmp_path):
    torch.set_num_threads(2)
    r = cli("render", scene, "--grid", tmp_path / "g.png", "--resolution", 16, "--views", 2,
            "--threads", 1, "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert torch.get_num_threads() == 1


# ------------------------------------------------------------------ progress


def test_progress_lines_when_not_on_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    import gs_core.cli.progress as progress_mod

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, markup=False, width=200)
    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: float(next(clock)))
    with progress_mod.progress(console, "rendering turntable", 36) as update:
        for k in range(1, 37):
            update(k)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "rendering turntable: 0/36"
    assert lines[-1].startswith("rendering turntable: 36/36 (100%)")
    assert 5 <= len(lines) <= 14  # every ~10 % or 5 s, not one line per frame
    with progress_mod.progress(console, "quiet", 10, enabled=False) as update:
        update(5)
    assert "quiet" not in buf.getvalue()


def test_turntable_and_fit_show_progress_in_logs(registry, image, examples, tmp_path):
    r = cli("generate", image, "--method", "blob", "-o", tmp_path / "g.ply", "--turntable",
            tmp_path / "t.gif", "--frames", 4, "--size", 16, "--device", "cpu")  # fmt: skip
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "rendering turntable: 4/4 (100%)" in r.stderr
    obj = next(p for p in examples.iterdir() if (p / "transforms.json").is_file())
    r = cli("fit", obj, "--out", tmp_path / "f.ply", "--preset", "tiny", "--device", "cpu",
            "--set", "densify=false", "--set", "iterations=12")  # fmt: skip
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert f"fitting {obj.name}: 12/12 (100%)" in r.stderr


# ------------------------------------------------------------------ --json


def test_generate_info_and_fit_print_json_on_stdout(registry, image, examples, tmp_path):
    out = tmp_path / "g.ply"
    r = cli("generate", image, "--method", "blob", "-o", out, "--device", "cpu", "--json")
    assert r.exit_code == 0, r.output + repr(r.exception)
    doc = json.loads(r.stdout)
    assert doc["output"] == str(out) and doc["num_gaussians"] == 200 and doc["method"] == "blob"

    r = cli("info", out, "--json")
    assert r.exit_code == 0, r.output + repr(r.exception)
    doc = json.loads(r.stdout)
    assert doc["num_gaussians"] == 200 and doc["sh_degree"] == 0
    assert set(doc["attributes"]) >= {"bounds_x", "scale", "opacity", "diffuse_colour"}

    obj = next(p for p in examples.iterdir() if (p / "transforms.json").is_file())
    r = cli("fit", obj, "--out", tmp_path / "f.ply", "--preset", "tiny", "--device", "cpu",
            "--set", "densify=false", "--set", "iterations=5", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output + repr(r.exception)
    doc = json.loads(r.stdout)
    (entry,) = doc["objects"]
    assert entry["object"] == obj.name and entry["steps"] == 5 and entry["output"].endswith("f.ply")
    assert doc["threads"] == torch.get_num_threads()


def test_training_lines_between_logged_steps(monkeypatch, capsys):
    """Slow training steps in a log file: a line at least every LINE_EVERY_S seconds."""
    import gs_core.training.progress as tp

    now = [0.0]
    monkeypatch.setattr(tp.time, "perf_counter", lambda: now[0])
    display = tp.ProgressDisplay("lines", total=100, start=0)
    for step in range(1, 7):
        now[0] += 4.0  # 4 s a step, logged every 10 steps: silent for 40 s without the timer
        display.update(step, 0.25, {"loss": 1.0}, False)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" |")[0] for line in lines] == ["step 3/100", "step 6/100"]
    display.update(10, 0.25, {"loss": 1.0}, True)
    assert capsys.readouterr().err.startswith("step 10/100")
