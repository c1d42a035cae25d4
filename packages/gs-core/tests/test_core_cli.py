import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from gs_core import Gaussians
from gs_core.cli.main import app
from gs_core.io import load_splat, save_ply

runner = CliRunner()


def test_help_does_not_import_plugins_or_gsplat():
    code = (
        "import sys; from gs_core.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in sys.modules if m.startswith(('gsplat', 'gs_method', 'gs_losses', 'gs_encoders', 'diffusers', 'timm', 'open_clip', 'trimesh'))]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "plugins" in r.stdout


def test_info_and_convert(tmp_path):
    g = Gaussians.from_colors(torch.randn(7, 3), torch.rand(7, 3), 0.05, 0.5)
    save_ply(tmp_path / "a.ply", g)
    r = runner.invoke(app, ["info", str(tmp_path / "a.ply")])
    out = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "7 Gaussians" in out and "SH degree 0" in out
    r = runner.invoke(app, ["convert", str(tmp_path / "a.ply"), str(tmp_path / "a.splat")])
    assert r.exit_code == 0, r.stdout
    assert load_splat(tmp_path / "a.splat").num_gaussians == 7
    r = runner.invoke(app, ["convert", str(tmp_path / "a.ply"), str(tmp_path / "a.splat")])
    assert r.exit_code != 0  # exists and no --overwrite


def test_bad_file_gives_one_clear_line(tmp_path):
    (tmp_path / "bad.ply").write_bytes(b"nope")
    r = subprocess.run(
        [sys.executable, "-m", "gs_core.cli.main", "info", str(tmp_path / "bad.ply")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "bad.ply: not a PLY file" in r.stderr and "Traceback" not in r.stderr


def test_plugins_json_lists_without_import():
    r = runner.invoke(app, ["plugins", "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert all(p["status"] != "loaded" for p in data["plugins"])


def test_lazy_exports_refuse_a_name_shadowed_by_its_submodule():
    from gs_core.lazy_exports import lazy_exports

    with pytest.raises(ValueError, match="decimate"):
        lazy_exports("gs_core.meshing", {"decimate": "gs_core.meshing.decimate"})


def test_meshing_names_are_functions_whatever_was_imported_first():
    import gs_core.meshing.pipeline  # noqa: F401  imports every meshing submodule
    from gs_core import meshing

    for name in meshing.__all__:
        assert callable(getattr(meshing, name)) and not isinstance(
            getattr(meshing, name), type(meshing)
        ), name
