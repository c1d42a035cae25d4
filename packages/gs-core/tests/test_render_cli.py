"""``gs3d render``: turntable GIF and contact-sheet PNG from a PLY, and its errors."""

from __future__ import annotations

import imageio.v3 as iio
import torch
from typer.testing import CliRunner

from gs_core import Gaussians
from gs_core.cli.main import app
from gs_core.io import save_ply

runner = CliRunner()


def _ply(tmp_path, offset=(0.0, 0.0, 0.0)):
    g = torch.Generator().manual_seed(0)
    d = torch.randn(400, 3, generator=g)
    d = d / d.norm(dim=-1, keepdim=True) * 0.5 + torch.tensor(offset)
    red = torch.tensor([[0.9, 0.1, 0.1]]).expand(400, 3)
    path = tmp_path / "scene.ply"
    save_ply(path, Gaussians.from_colors(d, red, 0.05, 0.9))
    return path


def test_turntable_gif_and_grid_png(tmp_path):
    ply = _ply(tmp_path, offset=(3.0, -1.0, 2.0))  # off-centre: framing must follow the scene
    gif, png = tmp_path / "spin.gif", tmp_path / "views.png"
    r = runner.invoke(
        app,
        [
            "render",
            str(ply),
            "--turntable",
            str(gif),
            "--frames",
            "5",
            "--resolution",
            "32",
            "--grid",
            str(png),
            "--views",
            "4",
            "--background",
            "white",
        ],
    )
    assert r.exit_code == 0, r.output
    frames = iio.imread(gif, index=None)
    assert frames.shape[:3] == (5, 32, 32)
    for f in frames:
        rgb = f[..., :3].astype(float)
        centre, corner = rgb[12:20, 12:20].mean((0, 1)), rgb[:3, :3].mean((0, 1))
        assert centre[0] > 150 and centre[1] < 100  # the red object fills the middle
        assert corner.min() > 240  # white background in the corners
    sheet = iio.imread(png)
    assert sheet.shape[0] > 64 and sheet.shape[1] > 64  # 2 x 2 tiles of 32 px plus padding


def test_errors_are_one_clear_line(tmp_path):
    ply = _ply(tmp_path)
    r = runner.invoke(app, ["render", str(ply)])
    assert r.exit_code != 0 and "--turntable" in str(r.exception)
    r = runner.invoke(app, ["render", str(ply), "--turntable", str(tmp_path / "x.avi")])
    assert r.exit_code != 0 and ".gif or .mp4" in str(r.exception)
    r = runner.invoke(
        app, ["render", str(tmp_path / "none.ply"), "--grid", str(tmp_path / "g.png")]
    )
    assert r.exit_code != 0 and "not found" in str(r.exception)
    r = runner.invoke(
        app, ["render", str(ply), "--grid", str(tmp_path / "g.png"), "--background", "teal"]
    )
    assert r.exit_code != 0 and "--background" in str(r.exception)
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        r = runner.invoke(app, ["render", str(ply), "--turntable", str(tmp_path / "t.mp4")])
        assert r.exit_code != 0 and "imageio-ffmpeg" in str(r.exception)
    (tmp_path / "exists.png").write_bytes(b"x")
    r = runner.invoke(app, ["render", str(ply), "--grid", str(tmp_path / "exists.png")])
    assert r.exit_code != 0 and "exists" in str(r.exception)
    assert (tmp_path / "exists.png").read_bytes() == b"x"


def test_backend_and_device_reach_the_renderer(tmp_path):
    from gs_core.rendering import BackendUnavailableError

    ply = _ply(tmp_path)
    grid = ["render", str(ply), "--grid", str(tmp_path / "g.png"), "--views", "2"]
    r = runner.invoke(app, [*grid, "--resolution", "16", "--backend", "torch", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*grid, "--overwrite", "--backend", "gsplat", "--device", "cpu"])
    assert isinstance(r.exception, BackendUnavailableError)
    r = runner.invoke(app, [*grid, "--overwrite", "--backend", "vulkan"])
    assert r.exit_code != 0 and "--backend: expected auto, torch, gsplat" in str(r.exception)
    r = runner.invoke(app, [*grid, "--overwrite", "--device", "gpu0"])
    assert r.exit_code != 0 and str(r.exception).startswith("--device 'gpu0'")
