"""The procedural world: ray-cast views against analytic projections, determinism, generator."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gs_core.cameras import Cameras
from gs_core.errors import GS3DError
from gs_core.io import OutputExistsError, load_point_cloud
from gs_core.procedural import (
    CATEGORIES,
    Ellipsoid,
    Part,
    ProceduralConfig,
    ProceduralObject,
    Texture,
    generate,
    make_object,
    render_views,
    sample_surface,
)
from gs_core.procedural.shading import lambert


def _cams(az, el, size=64, radius=2.0, fov=40.0):
    c = Cameras.orbit(
        az, el, radius=radius, fov_deg=fov, width=size, height=size, dtype=torch.float64
    )
    return c, c.camtoworlds.numpy(), c.Ks.numpy()


def _sphere_object(r=0.3, center=(0.0, 0.0, 0.0), color=(1.0, 1.0, 1.0)):
    part = Part(
        "ball", Ellipsoid(radii=(r, r, r), center=np.asarray(center)), Texture("solid", color)
    )
    return ProceduralObject(
        "ball", (part,), scale=1.0, offset=(0.0, 0.0, 0.0), radius=float(np.linalg.norm(center) + r)
    )


def test_sphere_silhouette_matches_projected_disc():
    """Coverage = the analytic area of the sphere's projection (a disc for a centred sphere)."""
    r, d, fov, size = 0.3, 2.0, 40.0, 96
    obj = _sphere_object(r)
    _, c2w, K = _cams([10.0, 200.0], [15.0, -40.0], size=size, radius=d, fov=fov)
    out = render_views(obj, c2w, K, size, size, antialias=4)
    f = K[0, 0, 0]
    # Tangent cone half-angle asin(r/d); its image is a disc of radius f tan(asin(r/d)).
    disc = math.pi * (f * math.tan(math.asin(r / d))) ** 2
    cover = out.rgba[..., 3].astype(np.float64).sum(axis=(1, 2)) / 255
    assert np.allclose(cover, disc, rtol=0.01)
    # Without anti-aliasing the pixel count is a coarser estimate of the same area.
    hard = render_views(obj, c2w, K, size, size, antialias=1).rgba[..., 3]
    assert set(np.unique(hard)) <= {0, 255}
    assert np.allclose((hard > 0).sum(axis=(1, 2)), disc, rtol=0.04)
    # Anti-aliased alpha has fractional edge values.
    assert ((out.rgba[..., 3] > 0) & (out.rgba[..., 3] < 255)).any()


def test_depth_normals_and_shading_of_a_sphere():
    r, d, size = 0.3, 2.0, 65  # odd size: a pixel centre on the optical axis
    obj = _sphere_object(r, color=(0.8, 0.6, 0.4))
    cams, c2w, K = _cams([0.0], [0.0], size=size, radius=d, fov=40.0)
    out = render_views(obj, c2w, K, size, size, antialias=1)
    c = size // 2
    assert out.depth[0, c, c] == pytest.approx(d - r, abs=1e-5)
    assert out.depth[0, 0, 0] == 0 and out.rgba[0, 0, 0, 3] == 0
    # z-depth: every hit satisfies |X - centre| = r for X back-projected through its pixel.
    ys, xs = np.nonzero(out.rgba[0, ..., 3])
    z = out.depth[0, ys, xs].astype(np.float64)
    xc = (xs + 0.5 - K[0, 0, 2]) / K[0, 0, 0] * z
    yc = (ys + 0.5 - K[0, 1, 2]) / K[0, 1, 1] * z
    Pc = np.stack([xc, yc, z, np.ones_like(z)], 1)
    Pw = (c2w[0] @ Pc.T).T[:, :3]
    assert np.abs(np.linalg.norm(Pw, axis=1) - r).max() < 1e-4
    n = out.normals[0, ys, xs]
    assert np.allclose(n, Pw / r, atol=1e-3)
    # Colour = Lambert shading of the albedo with that normal (8-bit quantised).
    expect = lambert(np.tile(np.float32([0.8, 0.6, 0.4]), (len(n), 1)), n[:, 0], n[:, 1], n[:, 2])
    assert np.abs(out.rgba[0, ys, xs, :3] / 255 - expect).max() <= 0.5 / 255 + 1e-6


def test_world_convention_x_right_y_up():
    """An off-centre sphere at +x appears right of centre from azimuth 0; at +y above centre."""
    size = 64
    _, c2w, K = _cams([0.0], [0.0], size=size)
    for center, axis, sign in (((0.4, 0, 0), 1, +1), ((0, 0.4, 0), 0, -1)):
        obj = _sphere_object(0.1, center=center)
        a = render_views(obj, c2w, K, size, size, antialias=1).rgba[0, ..., 3].astype(float)
        coords = np.nonzero(a)[axis].mean() + 0.5
        assert sign * (coords - size / 2) > 5


def test_all_categories_build_inside_the_ball_and_render():
    _, c2w, K = _cams(np.arange(0, 360, 90.0), [20.0] * 4, size=32, radius=1.5, fov=49.1)
    assert len(CATEGORIES) >= 8
    for k, cat in enumerate(CATEGORIES):
        obj = make_object(cat, np.random.default_rng(k), radius=0.5)
        pts, cols, nrm = sample_surface(obj, 3000, np.random.default_rng(k))
        assert np.linalg.norm(pts, axis=1).max() <= 0.5 + 1e-5, cat
        assert pts.shape == cols.shape == nrm.shape == (3000, 3)
        assert cols.min() >= 0 and cols.max() <= 1
        out = render_views(obj, c2w, K, 32, 32, antialias=2)
        assert out.rgba[..., 3].mean() > 10, f"{cat} barely visible"
        # Nothing touches the border: the object fits in the view at the default camera.
        border = np.concatenate(
            [
                out.rgba[:, 0, :, 3],
                out.rgba[:, -1, :, 3],
                out.rgba[:, :, 0, 3],
                out.rgba[:, :, -1, 3],
            ]
        )
        assert border.max() == 0, cat


def test_points_project_inside_the_silhouettes():
    obj = make_object("chair", np.random.default_rng(5))
    cams, c2w, K = _cams([30.0, 150.0, 260.0], [20.0, -10.0, 40.0], size=96, radius=1.5, fov=49.1)
    # Anti-aliased, so thin legs (about a pixel wide) still cover the pixels they cross.
    out = render_views(obj, c2w, K, 96, 96, antialias=4)
    pts, _, _ = sample_surface(obj, 4000, np.random.default_rng(0))
    P = np.concatenate([pts, np.ones((len(pts), 1))], 1).astype(np.float64)
    for i in range(3):
        pc = (cams.viewmats[i].numpy() @ P.T).T
        u = K[i, 0, 0] * pc[:, 0] / pc[:, 2] + K[i, 0, 2]
        v = K[i, 1, 1] * pc[:, 1] / pc[:, 2] + K[i, 1, 2]
        a = out.rgba[i, np.clip(v.astype(int), 0, 95), np.clip(u.astype(int), 0, 95), 3]
        assert (a > 0).mean() > 0.99
        # Points on grazing silhouettes may cover less than one of the 16 sub-samples of their
        # pixel; then a neighbour is covered.
        full = out.rgba[i, ..., 3]
        grown = np.max(
            [np.roll(np.roll(full, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0
        )
        assert (
            grown[np.clip(v.astype(int), 0, 95), np.clip(u.astype(int), 0, 95)] > 0
        ).mean() > 0.999


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_cfg():
    return ProceduralConfig.preset("tiny", objects=3, categories=["mug", "car", "tree"])


def test_same_seed_same_bytes_any_worker_count(tmp_path, tiny_cfg):
    a = generate(tiny_cfg, tmp_path / "a", workers=0, progress=False)
    generate(tiny_cfg, tmp_path / "b", workers=2, progress=False)
    assert a["views"] == 3 * tiny_cfg.views
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db
    assert {
        "dataset.json",
        "splits/train.txt",
        "categories/mug.txt",
        "mug_00000/transforms.json",
        "mug_00000/points.ply",
        "mug_00000/images/000.png",
        "mug_00000/depth/000.png",
        "mug_00000/normals/000.png",
    } <= set(da)
    generate(tiny_cfg.with_overrides({"seed": 1}), tmp_path / "c", workers=0, progress=False)
    dc = _digest(tmp_path / "c")
    assert dc["mug_00000/images/000.png"] != da["mug_00000/images/000.png"]


def test_generator_metadata_splits_and_overwrite(tmp_path, tiny_cfg):
    cfg = tiny_cfg.with_overrides(
        {"objects": 12, "categories": ["mug", "lamp"], "split": "auto", "points": 0}
    )
    out = tmp_path / "ds"
    summary = generate(cfg, out, workers=0, progress=False)
    splits = {
        s: (out / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")
    }
    ids = sorted(sum(splits.values(), []))
    assert ids == sorted(p.name for p in out.iterdir() if (p / "transforms.json").is_file())
    assert len(ids) == 12 and summary["splits"] == {k: len(v) for k, v in splits.items()}
    assert len(splits["train"]) == 10  # 6 per category -> round(4.8) = 5 each
    assert not (out / "mug_00000" / "points.ply").exists()
    meta = json.loads((out / "mug_00000" / "transforms.json").read_text())
    assert meta["gs3d"]["category"] == "mug" and meta["w"] == 32
    fr = meta["frames"][0]
    assert {
        "azimuth",
        "elevation",
        "radius",
        "group",
        "depth_file_path",
        "normal_file_path",
    } <= set(fr)
    lo, hi = cfg.elevation_range
    assert all(lo <= f["elevation"] <= hi for f in meta["frames"])
    with pytest.raises(OutputExistsError, match="--overwrite"):
        generate(cfg, out, workers=0, progress=False)
    generate(cfg.with_overrides({"objects": 2}), out, overwrite=True, workers=0, progress=False)
    assert len([p for p in out.iterdir() if (p / "transforms.json").is_file()]) == 2


def test_generator_lists_its_dataset_folder_once_not_once_per_object(tmp_path, monkeypatch):
    """Each object used to list every object written before it (atomic_path's stale-temp
    cleaning), time quadratic in the objects: 30,000 ran at a quarter of 3,000's views/s."""
    import gs_core.io.atomic as atomic

    listed = []
    real = atomic.clean_stale_temps
    monkeypatch.setattr(atomic, "clean_stale_temps", lambda p: listed.append(p) or real(p))
    counts = {}
    for n in (1, 4):
        listed.clear()
        cfg = ProceduralConfig.preset("tiny", objects=n, categories=["mug"], points=0)
        generate(cfg, tmp_path / f"ds{n}", workers=0, progress=False)
        assert len(list((tmp_path / f"ds{n}").glob("mug_*/transforms.json"))) == n
        assert not [p for p in listed if p.name.startswith("mug_")]  # no object folder's
        counts[n] = len(listed)
    assert counts[1] == counts[4]  # the dataset folder's own writes only


def test_protocol_layout_and_point_cloud(tmp_path):
    cfg = ProceduralConfig.preset(
        "eval", objects=1, views=2, resolution=16, points=500, antialias=1
    )
    generate(cfg, tmp_path / "ev", workers=0, progress=False)
    meta = json.loads((tmp_path / "ev" / "mug_00000" / "transforms.json").read_text())
    groups = [f["group"] for f in meta["frames"]]
    assert groups == ["input"] + ["ring15"] * 15 + ["zero123pp"] * 6 + ["random"] * 2
    assert meta["frames"][0]["azimuth"] == 0 and meta["frames"][0]["elevation"] == 0
    assert [f["elevation"] for f in meta["frames"][16:22]] == [30, -20, 30, -20, 30, -20]
    assert (tmp_path / "ev" / "splits" / "test.txt").read_text().split() == ["mug_00000"]
    pts, cols = load_point_cloud(tmp_path / "ev" / "mug_00000" / "points.ply")
    assert pts.shape == (500, 3) and cols.shape == (500, 3)
    assert json.loads((tmp_path / "ev" / "dataset.json").read_text())["name"] == "procedural-eval"


def test_config_validation():
    with pytest.raises(Exception, match="categories"):
        ProceduralConfig(categories=["spaceship"])
    with pytest.raises(Exception, match="elevation_range"):
        ProceduralConfig(elevation_range=(40, 10))
    with pytest.raises(Exception, match="inside the object"):
        ProceduralConfig(radius=0.4)
    with pytest.raises(GS3DError, match="unknown procedural category"):
        make_object("spaceship", np.random.default_rng(0))
