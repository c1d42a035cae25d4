"""Per-object 3DGS fitting on tiny procedural objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gs_core.cameras import Cameras
from gs_core.data import load_object_views
from gs_core.errors import FileFormatError, ValidationError
from gs_core.fitting import (
    FitConfig,
    evaluate,
    fit_gaussians,
    fit_object,
    holdout_split,
    scene_scale,
)
from gs_core.fitting.fit import _gaussians
from gs_core.fitting.init import knn_mean_distance, raw_params
from gs_core.io import OutputExistsError, load_ply, load_point_cloud
from gs_core.procedural import ProceduralConfig, generate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "ds"
    cfg = ProceduralConfig.preset(
        "tiny", objects=2, views=16, resolution=32, points=1500, categories=["snowman", "mug"]
    )
    generate(cfg, out, workers=0, progress=False)
    return out


def test_holdout_split_and_scene_scale():
    train, held = holdout_split(16, 8)
    assert held == [7, 15] and sorted(train + held) == list(range(16))
    assert holdout_split(5, 0) == ([0, 1, 2, 3, 4], [])
    cams = Cameras.orbit([0, 120, 240], [0, 0, 0], radius=1.5)
    assert scene_scale(cams) == pytest.approx(1.65, rel=1e-5)


def test_knn_and_initial_parameters():
    pts = torch.rand(300, 3)
    d = knn_mean_distance(pts, k=3, chunk=64)
    full = torch.cdist(pts, pts) + torch.eye(300) * 1e9
    ref = full.topk(3, largest=False).values.mean(1)
    assert torch.allclose(d, ref, atol=1e-6)
    p = raw_params(pts, torch.rand(300, 3), sh_degree=2, opacity=0.1)
    assert p["shN"].shape == (300, 8, 3) and torch.allclose(
        torch.sigmoid(p["opacities"]), torch.full((300,), 0.1)
    )
    assert torch.allclose(torch.exp(p["scales"][:, 0]), ref, atol=1e-6)
    g = _gaussians(p)
    assert g.sh_degree == 2 and torch.allclose(
        g.colors, p["sh0"][:, 0] * 0.28209479177387814 + 0.5, atol=1e-5
    )
    with pytest.raises(ValidationError, match="at least one point"):
        raw_params(torch.zeros(0, 3), torch.zeros(0, 3), 0, 0.1)


def test_fit_improves_held_out_views_and_writes_ply(ds, tmp_path):
    obj = ds / "snowman_00000"
    cfg = FitConfig.preset(
        "tiny", iterations=60, views_per_step=2, refine_every=15, holdout_every=4
    )
    views = load_object_views(obj, 32)
    rgba = torch.from_numpy(views.rgba).float() / 255
    train, held = holdout_split(16, 4)
    pts, cols = load_point_cloud(obj / "points.ply")
    init = _gaussians(raw_params(pts, cols, 0, cfg.init_opacity))
    before = evaluate(init, rgba[held], views.cameras.select(torch.tensor(held)))
    res = fit_object(obj, cfg, out=tmp_path / "g.ply")
    assert res.steps == 60 and res.history and res.history[-1]["step"] == 60
    assert res.metrics["psnr"] > before["psnr"] + 2
    assert res.metrics["ssim"] > before["ssim"]
    g = load_ply(tmp_path / "g.ply")
    assert torch.allclose(g.means, res.gaussians.means, atol=1e-6)
    assert torch.allclose(g.opacities, res.gaussians.opacities, atol=1e-5)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        fit_object(obj, cfg, out=tmp_path / "g.ply")


def test_densification_and_random_init(ds):
    views = load_object_views(ds / "mug_00001", 32)
    rgba = torch.from_numpy(views.rgba).float() / 255
    cfg = FitConfig.preset(
        "tiny",
        iterations=40,
        init="random",
        init_random_count=300,
        refine_every=10,
        refine_start=0.0,
        grow_grad2d=1e-6,
        lambda_dssim=0.0,
    )
    res = fit_gaussians(rgba, views.cameras, cfg)
    # Every Gaussian with any image-plane gradient is cloned or split: the count grows.
    assert len(res.gaussians) > 300
    assert res.metrics == {}  # no held-out views given
    frozen = fit_gaussians(rgba, views.cameras, cfg.with_overrides({"densify": False}))
    assert len(frozen.gaussians) == 300


def test_bad_inputs(ds, tmp_path):
    import shutil

    views = load_object_views(ds / "mug_00001", 32)
    rgba = torch.from_numpy(views.rgba).float() / 255
    with pytest.raises(ValidationError, match="rgba cameras"):
        fit_gaussians(rgba[:3], views.cameras, FitConfig.preset("tiny"))
    with pytest.raises(ValidationError, match="RGBA views"):
        fit_gaussians(rgba[..., :3], views.cameras, FitConfig.preset("tiny"))
    shutil.copytree(ds / "mug_00001", tmp_path / "m")
    (tmp_path / "m" / "points.ply").unlink()
    with pytest.raises(FileFormatError, match="points.ply: not found; init='points'"):
        fit_object(tmp_path / "m", FitConfig.preset("tiny", init="points"), out="")


def test_cli_fit_dataset(ds, tmp_path):
    import shutil

    from gs_core.cli.main import main

    root = tmp_path / "copy"
    shutil.copytree(ds, root)
    args = [
        "fit",
        str(root),
        "--split",
        "all",
        "--preset",
        "tiny",
        "--set",
        "iterations=5",
        "--device",
        "cpu",
    ]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    assert (root / "mug_00001" / "gaussians.ply").is_file() and (
        root / "snowman_00000" / "gaussians.ply"
    ).is_file()
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2  # refuses to overwrite
    with pytest.raises(SystemExit) as e:
        main([*args, "--skip-existing"])
    assert e.value.code == 0


def test_cli_fit_backend_and_device(ds, tmp_path):
    from typer.testing import CliRunner

    from gs_core.cli.main import app
    from gs_core.rendering import BackendUnavailableError

    obj = ds / "mug_00001"
    args = ["fit", str(obj), "--preset", "tiny", "--set", "iterations=2", "--quiet"]
    out = tmp_path / "g.ply"
    r = CliRunner().invoke(
        app, [*args, "--out", str(out), "--backend", "gsplat", "--device", "cpu"]
    )
    assert isinstance(r.exception, BackendUnavailableError) and not out.exists()
    r = CliRunner().invoke(app, [*args, "--out", str(out), "--backend", "torch", "--device", "cpu"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert out.is_file()
    r = CliRunner().invoke(app, [*args, "--out", str(out), "--device", "cuda:x"])
    assert r.exit_code != 0 and str(r.exception).startswith("--device 'cuda:x'")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_gpu_with_gsplat(ds):
    cfg = FitConfig.preset("small", iterations=300, resolution=32, backend="auto")
    res = fit_object(ds / "snowman_00000", cfg, out="", device="cuda")
    assert res.gaussians.device.type == "cuda"
    assert res.metrics["psnr"] > 20
    assert np.isfinite(res.metrics["ssim"])
