"""Hardening (issue #14) of ``gs3d eval``, ``gs3d plugins`` and dataset validation, one test per
class of problem:

- eval checks protocol, split, resolution, report folder and metrics before a model loads, and
  says at once what is doubtful (a resolution above the data's, a metric without weights);
- eval reads ``gs3d fit``'s output layout and refuses missing predictions before rendering;
- bad eval options are one line naming the option;
- ``gs3d plugins --check`` exits 1 when a plugin failed;
- ``GS3D_DISABLE_PLUGINS`` / ``GS3D_LOAD_PLUGINS`` items match distribution names (any PEP 503
  spelling) without catching other distributions' entry points of that name;
- ``transforms.json`` fields of view and focal lengths out of range are refused.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gs_core import CORE_API_VERSION, Gaussians
from gs_core.cli.main import main
from gs_core.errors import WeightsNotFoundError
from gs_core.io import load_point_cloud, save_ply
from gs_core.procedural import ProceduralConfig, generate


def _run_cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, " ".join(out.err.split())


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------- eval
@pytest.fixture(scope="module")
def protocol_ds(tmp_path_factory) -> Path:
    """Two objects with the protocol views (ring15 + zero123pp), 24 px."""
    out = tmp_path_factory.mktemp("hardening-eval") / "ds"
    cfg = ProceduralConfig.preset(
        "eval", objects=2, views=3, resolution=24, points=2000, antialias=1
    )
    generate(cfg, out, workers=0, progress=False)
    return out


@pytest.fixture(scope="module")
def random_ds(tmp_path_factory) -> Path:
    """One object with three random views only: no fixed protocol can be evaluated on it."""
    out = tmp_path_factory.mktemp("hardening-random") / "ds"
    cfg = ProceduralConfig(objects=1, views=3, resolution=16, split="test", antialias=1)
    generate(cfg, out, workers=0, progress=False)
    return out


def _surface_gaussians(obj_dir: Path) -> Gaussians:
    pts, cols = load_point_cloud(obj_dir / "points.ply")
    return Gaussians.from_colors(pts, cols, scales=0.012, opacities=0.9)


@pytest.fixture
def watched_method(protocol_ds, monkeypatch):
    """A registered method ``watched`` whose construction is recorded in ``built``."""
    import gs_core.plugins.registry as reg
    from gs_core.config import Config
    from gs_core.method import GenerationOutput, Method
    from gs_core.plugins.specs import MethodSpec

    built: list[str] = []
    g = _surface_gaussians(protocol_ds / "mug_00000")

    class WatchedConfig(Config):
        presets = {"paper": {}}

    class Watched(Method):
        config_class = WatchedConfig
        name = "watched"

        def __init__(self, config):
            super().__init__(config)
            built.append("built")
            print("MODEL BUILT", file=sys.stderr)

        def generate(self, images, **kw):
            return GenerationOutput(
                gaussians=Gaussians(
                    g.means[None], g.quats[None], g.scales[None], g.opacities[None], g.sh[None]
                )
            )

    fresh = reg.Registry(discover=False)
    monkeypatch.setattr(reg, "_REGISTRY", fresh)
    fresh.register_method(
        MethodSpec(
            "watched", "test", WatchedConfig, Watched, CORE_API_VERSION,
            output_frame="world", has_weights=False,
        )
    )  # fmt: skip
    return fresh, built


@pytest.mark.parametrize(
    "case, expected",
    [
        ("protocol", "protocol 'ring15' needs a view at azimuth"),
        ("split", "split file not found"),
        ("category", "unknown category nope"),
        ("metric", "unknown metric(s) fid"),
        ("report", "results.json"),
    ],
)
def test_eval_checks_the_dataset_before_loading_the_model(
    case, expected, protocol_ds, random_ds, watched_method, tmp_path, capsys
):
    _, built = watched_method
    out = tmp_path / "report"
    data, extra = protocol_ds, []
    if case == "protocol":
        data = random_ds
    elif case == "split":
        extra = ["--split", "validation"]
    elif case == "category":
        extra = ["--categories", "nope"]
    elif case == "metric":
        extra = ["--metrics", "psnr,fid"]
    else:
        out.mkdir()
        (out / "results.json").write_text("{}")
    code, _, err = _run_cli(
        capsys, "eval", "--data", data, "--method", "watched", "--out", out, "--protocol",
        "ring15", "--resolution", 16, "--metrics", "psnr", "--no-sheets", "--device", "cpu",
        *extra,
    )  # fmt: skip
    assert code == 2 and expected in err and "Traceback" not in err
    assert built == []  # refused before the model was built
    if case != "report":
        assert not out.exists()


def test_eval_says_at_once_what_is_doubtful(protocol_ds, watched_method, tmp_path, capsys):
    """Resolution above the data's and a metric without weights: warned before the model loads."""
    from gs_core.plugins.specs import MetricSpec

    fresh, built = watched_method

    def no_weights(device):
        raise WeightsNotFoundError("weights.bin missing; download it to X")

    fresh.register_metric(MetricSpec("needs-weights", "needs weights", no_weights))
    code, out, err = _run_cli(
        capsys, "eval", "--data", protocol_ds, "--method", "watched", "--out", tmp_path / "r",
        "--protocol", "zero123pp", "--resolution", 32, "--no-sheets", "--device", "cpu",
        "--max-objects", 1,
    )  # fmt: skip
    assert code == 0, err
    resolution = err.index("warning: --resolution 32 exceeds the views of 1 of 1 object(s)")
    metric = err.index("warning: metric needs-weights unavailable: WeightsNotFoundError")
    assert max(resolution, metric) < err.index("MODEL BUILT")
    assert "(24x24)" in err and built == ["built"]
    report = json.loads((tmp_path / "r" / "results.json").read_text())
    assert "weights.bin missing" in report["unavailable_metrics"]["needs-weights"]
    # at the data's resolution there is nothing to warn about
    code, _, err = _run_cli(
        capsys, "eval", "--data", protocol_ds, "--method", "watched", "--out", tmp_path / "s",
        "--protocol", "zero123pp", "--resolution", 24, "--metrics", "psnr", "--no-sheets",
        "--device", "cpu", "--max-objects", 1,
    )  # fmt: skip
    assert code == 0 and "warning" not in err


def test_eval_reads_fit_output_and_refuses_missing_predictions_up_front(
    protocol_ds, tmp_path, capsys
):
    """``gs3d fit DATA`` writes DATA/<object>/gaussians.ply: ``--predictions DATA`` reads them."""
    import shutil

    from gs_core.evaluation import EvalConfig, PlyFolderPredictor, evaluate

    data, flat = tmp_path / "ds", tmp_path / "flat"
    shutil.copytree(protocol_ds, data)
    flat.mkdir()
    for oid in ("mug_00000", "table_00001"):
        save_ply(data / oid / "gaussians.ply", _surface_gaussians(data / oid))
        shutil.copy(data / oid / "gaussians.ply", flat / f"{oid}.ply")
    args = ["eval", "--data", data, "--predictions", data, "--protocol", "ring15",
            "--resolution", 24, "--metrics", "psnr", "--no-sheets", "--device", "cpu"]  # fmt: skip
    code, out, err = _run_cli(capsys, *args, "--out", tmp_path / "r")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "results.json").read_text())
    cfg = EvalConfig(protocol="ring15", resolution=24, metrics=["psnr"], sheets=False)
    ref = evaluate(PlyFolderPredictor(flat), data, "test", cfg)  # the <object>.ply layout
    assert report["num_objects"] == 2
    assert report["mean"]["psnr"]["ring15"] == pytest.approx(ref["mean"]["psnr"]["ring15"])
    # one object without a prediction: refused before the first object is rendered
    (data / "table_00001" / "gaussians.ply").unlink()
    code, out, err = _run_cli(capsys, *args, "--out", tmp_path / "s")
    assert code == 2
    assert "no prediction for object 'table_00001'" in err and "gaussians.ply" in err
    assert "[1/2]" not in out and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--protocol", "ring16", "--protocol: expected 'ring15', 'zero123pp', 'gso', 'random'"),
        ("--frame", "up", "--frame: expected 'world', 'azimuth' or 'camera', got 'up'"),
        ("--background", "pink", "--background: expected 'white', 'black' or 'gray'"),
    ],
)
def test_eval_bad_option_is_one_line_naming_it(
    option, value, expected, protocol_ds, tmp_path, capsys
):
    code, _, err = _run_cli(
        capsys, "eval", "--data", protocol_ds, "--predictions", tmp_path, "--out",
        tmp_path / "r", "--device", "cpu", option, value,
    )  # fmt: skip
    assert code == 2 and err.startswith(f"error: {expected}")
    assert "pydantic" not in err and "\n" not in err.strip()


# ------------------------------------------------------------------------------- plugins
def _dist(site: Path, name: str, groups: dict[str, dict[str, str]]) -> None:
    """A distribution as importlib.metadata reads it: a ``*.dist-info`` folder on the path."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    text = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
        for group, entries in groups.items()
    )
    (info / "entry_points.txt").write_text(text)


COMMAND_MODULE = """
from gs_core.plugins.hookspecs import hookimpl

@hookimpl
def gs3d_register_commands(cli):
    @cli.command("twin-cmd")
    def twin():
        print("twin from {dist}")
"""


SITE_DISTS = ("gs3d-twin-one", "gs3d-twin-two", "gs3d-hard-broken")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Two distributions declaring the same plugin and command names, and a broken one."""
    site = tmp_path_factory.mktemp("hardening-site")
    for dist, module in (("gs3d-twin-one", "gs3d_twin_one"), ("gs3d-twin-two", "gs3d_twin_two")):
        (site / f"{module}.py").write_text(textwrap.dedent(COMMAND_MODULE.format(dist=dist)))
        _dist(site, dist, {"gs3d": {"twin": module}, "gs3d.commands": {"twin-cmd": module}})
    (site / "gs3d_hard_broken.py").write_text("raise ImportError('broken on purpose')\n")
    _dist(site, "gs3d-hard-broken", {"gs3d": {"hard-broken": "gs3d_hard_broken"}})
    return site


def _gs3d(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GS3D_")}
    # Only this site's distributions: the workspace's own plugins would make --check slow and
    # tie its exit code to them.
    full.update(PYTHONPATH=str(site), COLUMNS="200", GS3D_LOAD_PLUGINS=",".join(SITE_DISTS))
    full.update(env)
    code = f"from gs_core.cli.main import main; main({list(args)!r})"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300
    )


def test_plugins_check_exits_1_when_a_plugin_failed(site):
    r = _gs3d(site, "plugins", "--check", "--json")
    assert r.returncode == 1, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)["plugins"]}
    assert rows["hard-broken"]["status"] == "failed"
    assert _gs3d(site, "plugins", "--check").returncode == 1
    assert _gs3d(site, "plugins", "--json").returncode == 0  # listing imports nothing
    r = _gs3d(site, "plugins", "--check", GS3D_DISABLE_PLUGINS="gs3d-hard-broken,gs3d-twin-two")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "disable, off",
    [
        ("gs3d-twin-two", {"gs3d-twin-two"}),
        ("GS3D_Twin.Two", {"gs3d-twin-two"}),  # PEP 503: the same distribution
        ("gs3d-twin-two:twin", {"gs3d-twin-two"}),
        ("twin", {"gs3d-twin-one", "gs3d-twin-two"}),  # an entry name: every distribution's
    ],
)
def test_disable_plugins_matches_distribution_names(site, monkeypatch, disable, off):
    from gs_core.plugins.registry import Registry

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("GS3D_DISABLE_PLUGINS", disable)
    monkeypatch.delenv("GS3D_LOAD_PLUGINS", raising=False)
    twins = {e.distribution: e for e in Registry().entry_points() if e.name == "twin"}
    assert {d for d, e in twins.items() if e.disabled} == off
    assert all(disable in e.disabled for d, e in twins.items() if d in off)
    monkeypatch.delenv("GS3D_DISABLE_PLUGINS")
    monkeypatch.setenv("GS3D_LOAD_PLUGINS", disable)
    twins = {e.distribution: e for e in Registry().entry_points() if e.name == "twin"}
    assert {d for d, e in twins.items() if not e.disabled} == off


def test_disabling_one_distribution_resolves_a_duplicate_command(site):
    r = _gs3d(site, "twin-cmd")
    assert r.returncode == 2
    assert "GS3D_DISABLE_PLUGINS=gs3d-twin-two" in " ".join(r.stderr.split())
    r = _gs3d(site, "twin-cmd", GS3D_DISABLE_PLUGINS="gs3d-twin-two")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "twin from gs3d-twin-one"


# ---------------------------------------------------------------------- dataset validation
def _object(root: Path, top: dict, frame: dict | None = None) -> Path:
    obj = root / "obj"
    obj.mkdir(parents=True, exist_ok=True)
    fr = {"file_path": "images/000.png", "transform_matrix": [
        [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]]}  # fmt: skip
    fr.update(frame or {})
    (obj / "transforms.json").write_text(json.dumps({"w": 16, "h": 16, **top, "frames": [fr]}))
    return obj


@pytest.mark.parametrize(
    "top, frame, field",
    [
        ({"camera_angle_x": 0.0}, None, "camera_angle_x"),
        ({"camera_angle_x": -0.7}, None, "camera_angle_x"),
        ({"camera_angle_x": math.pi}, None, "camera_angle_x"),
        ({"camera_angle_x": 0.7, "camera_angle_y": 4.0}, None, "camera_angle_y"),
        ({"fl_x": 0}, None, "fl_x"),
        ({"fl_x": -20.0}, None, "fl_x"),
        ({"fl_x": 20.0, "fl_y": 0.0}, None, "fl_y"),
        ({"camera_angle_x": 0.7}, {"fl_x": -5.0}, "frames[0].fl_x"),
        ({"camera_angle_x": 0.7, "w": 0}, None, "w"),
    ],
)
def test_data_check_refuses_nonpositive_field_of_view(tmp_path, capsys, top, frame, field):
    obj = _object(tmp_path, top, frame)
    code, _, err = _run_cli(capsys, "data", "check", obj)
    assert code == 2
    assert f"transforms.json: field '{field}': expected" in err and "Traceback" not in err


def test_data_check_accepts_valid_intrinsics(tmp_path, capsys):
    obj = _object(tmp_path, {"camera_angle_x": 0.7}, {"fl_x": 20.0, "cx": -3.0})
    code, out, err = _run_cli(capsys, "data", "check", obj)
    assert code in (0, None), err
    assert "OK" in out + err
