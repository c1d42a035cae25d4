"""MultiViewDataset options: views, backgrounds, spaces, points, determinism, collation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gs_core.data import (
    MultiViewConfig,
    MultiViewDataset,
    batch_cameras,
    load_object_views,
    sample_background,
)
from gs_core.data.spaces import azimuth_elevation
from gs_core.errors import FileFormatError, GS3DError, ValidationError
from gs_core.procedural import ProceduralConfig, generate


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("loader") / "ds"
    cfg = ProceduralConfig.preset(
        "tiny", objects=4, views=8, resolution=32, points=600, split="train"
    )
    generate(cfg, out, workers=0, progress=False)
    return out


def _project(viewmat, K, p):
    pc = p @ viewmat[:3, :3].T + viewmat[:3, 3]
    return torch.stack(
        [K[0, 0] * pc[:, 0] / pc[:, 2] + K[0, 2], K[1, 1] * pc[:, 1] / pc[:, 2] + K[1, 2]], 1
    )


def test_item_shapes_and_compositing(root):
    ds = MultiViewDataset(root, "train", resolution=32, num_target_views=3, seed=0)
    assert len(ds) == 4
    it = ds[1]
    H = 32
    assert it["input_rgba"].shape == (4, H, H) and it["input_rgb"].shape == (3, H, H)
    assert it["target_rgb"].shape == (3, H, H, 3) and it["target_alpha"].shape == (3, H, H, 1)
    assert it["target_viewmats"].shape == (3, 4, 4) and it["target_Ks"].shape == (3, 3, 3)
    assert int(it["input_index"]) not in it["target_index"].tolist()
    # White background: transparent pixels are exactly 1, and compositing matches by hand.
    views = ds.views(1)
    raw = torch.from_numpy(views.rgba[it["target_index"]]).float() / 255
    manual = raw[..., :3] * raw[..., 3:] + (1 - raw[..., 3:])
    assert torch.allclose(it["target_rgb"], manual, atol=1e-6)
    assert torch.allclose(it["target_alpha"], raw[..., 3:])
    assert torch.allclose(
        it["input_rgba"].permute(1, 2, 0),
        torch.from_numpy(views.rgba[int(it["input_index"])]).float() / 255,
    )


def test_input_view_modes_and_targets(root):
    ds = MultiViewDataset(root, "train", resolution=32, input_view="first", num_target_views=-1)
    it = ds[0]
    assert int(it["input_index"]) == 0 and it["target_index"].tolist() == list(range(1, 8))
    ds = MultiViewDataset(
        root, "train", resolution=32, input_view="front", num_target_views=2, seed=1
    )
    it = ds[0]
    c2w = ds.views(0).cameras.camtoworlds.numpy()
    scores = [min(a, 360 - a) ** 2 + e**2 for a, e, _ in (azimuth_elevation(c[:3, 3]) for c in c2w)]
    assert int(it["input_index"]) == int(np.argmin(scores))
    ds = MultiViewDataset(
        root, "train", resolution=32, num_target_views=8, targets_include_input=True, input_view=3
    )
    assert ds[0]["target_index"].tolist() == list(range(8))
    with pytest.raises(GS3DError, match="needs at least 9"):
        MultiViewDataset(root, "train", resolution=32, num_target_views=8)[0]
    with pytest.raises(ValidationError, match="input_view"):
        MultiViewDataset(root, "train", resolution=32, input_view=99)[0]


def test_seeded_sampling_is_deterministic_per_epoch(root):
    a = MultiViewDataset(root, "train", resolution=32, seed=7, background="random")
    b = MultiViewDataset(root, "train", resolution=32, seed=7, background="random")
    for i in range(4):
        assert torch.equal(a[i]["target_index"], b[i]["target_index"])
        assert torch.equal(a[i]["background"], b[i]["background"])
    first = [a[i]["target_index"].tolist() + [int(a[i]["input_index"])] for i in range(4)]
    a.set_epoch(1)
    assert first != [a[i]["target_index"].tolist() + [int(a[i]["input_index"])] for i in range(4)]


def test_backgrounds(root):
    ds = MultiViewDataset(root, "train", resolution=32, background="random", seed=3)
    it = ds[0]
    bg = it["background"]
    empty = it["target_alpha"][..., 0] == 0
    assert torch.allclose(it["target_rgb"][empty], bg.expand(int(empty.sum()), 3))
    assert torch.allclose(it["input_rgb"].permute(1, 2, 0)[it["input_rgba"][3] == 0], bg)
    ds = MultiViewDataset(root, "train", resolution=32, background=(0.2, 0.4, 0.6))
    assert torch.allclose(ds[0]["background"], torch.tensor([0.2, 0.4, 0.6]))
    with pytest.raises(Exception, match="background"):
        MultiViewConfig(background="purple")


def test_dd3g_background_distribution():
    """bgc = 1 - (1 - u)^3 (DD3G Eq. 8): the inverse map of the samples is U(0, 1)."""
    rng = np.random.default_rng(0)
    s = np.stack([sample_background("dd3g", rng) for _ in range(4000)])
    assert s.min() >= 0 and s.max() <= 1
    assert s.mean() == pytest.approx(0.75, abs=0.01)  # E[1 - (1-u)^3] = 3/4
    u = 1 - (1 - s.astype(np.float64)) ** (1 / 3)
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert np.abs(hist / u.size - 0.1).max() < 0.012
    # Channels are drawn independently (coloured, not grey).
    assert abs(np.corrcoef(s[:, 0], s[:, 1])[0, 1]) < 0.05


@pytest.mark.parametrize("space", ["azimuth", "camera"])
def test_spaces_keep_relative_poses_and_points(root, space):
    world = MultiViewDataset(
        root,
        "train",
        resolution=32,
        input_view=2,
        num_target_views=3,
        seed=0,
        load_points=True,
        num_points=300,
    )
    other = MultiViewDataset(
        root,
        "train",
        resolution=32,
        input_view=2,
        num_target_views=3,
        seed=0,
        load_points=True,
        num_points=300,
        space=space,
    )
    a, b = world[2], other[2]
    assert torch.equal(a["target_index"], b["target_index"])
    T = b["space_transform"].double()
    # Input camera in the new space: azimuth 0 (both spaces); camera space: canonical pose.
    c2w_in = torch.linalg.inv(b["input_viewmat"].double())
    az, el, r = azimuth_elevation(c2w_in[:3, 3].numpy())
    _, el_w, r_w = azimuth_elevation(torch.linalg.inv(a["input_viewmat"].double())[:3, 3].numpy())
    assert min(az, 360 - az) < 1e-3
    assert r == pytest.approx(r_w, abs=1e-4)
    if space == "azimuth":
        assert el == pytest.approx(el_w, abs=1e-3)
    else:
        assert el == pytest.approx(0, abs=1e-3)
        assert torch.allclose(
            c2w_in[:3, :3],
            torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)),
            atol=1e-5,
        )
    # Relative poses are unchanged, and points project to the same pixels in both spaces.
    rel_a = a["target_viewmats"].double() @ torch.linalg.inv(a["input_viewmat"].double())
    rel_b = b["target_viewmats"].double() @ torch.linalg.inv(b["input_viewmat"].double())
    assert torch.allclose(rel_a, rel_b, atol=1e-5)
    assert torch.allclose(
        b["points"].double(), a["points"].double() @ T[:3, :3].T + T[:3, 3], atol=1e-5
    )
    for k in range(3):
        pa = _project(
            a["target_viewmats"][k].double(), a["target_Ks"][k].double(), a["points"].double()
        )
        pb = _project(
            b["target_viewmats"][k].double(), b["target_Ks"][k].double(), b["points"].double()
        )
        assert torch.allclose(pa, pb, atol=1e-3)


def test_points_land_on_the_object(root):
    ds = MultiViewDataset(
        root, "train", resolution=32, num_target_views=4, seed=0, load_points=True, num_points=500
    )
    it = ds[3]
    assert it["points"].shape == (500, 3) and it["point_colors"].shape == (500, 3)
    for k in range(4):
        uv = (
            _project(it["target_viewmats"][k], it["target_Ks"][k], it["points"]).long().clamp(0, 31)
        )
        a = it["target_alpha"][k, uv[:, 1], uv[:, 0], 0]
        assert (a > 0).float().mean() > 0.97


def test_collate_and_batch_cameras(root):
    ds = MultiViewDataset(root, "train", resolution=32, num_target_views=2, seed=0)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["target_rgb"].shape == (2, 2, 32, 32, 3) and len(batch["object_id"]) == 2
    cams = batch_cameras(batch)
    assert cams.batch_shape == (2,) and cams.n_cameras == 2 and cams.width == 32
    assert batch_cameras(batch, "input").viewmats.shape == (2, 1, 4, 4)


def test_resolution_cache_and_fitted_points(root, monkeypatch):
    ds = MultiViewDataset(root, "train", resolution=16)
    v = ds.views(0)
    assert v.rgba.shape[1:3] == (16, 16) and v.cameras.width == 16
    full = load_object_views(root / ds.object_ids[0], 32)
    assert v.cameras.Ks[0, 0, 0] == pytest.approx(full.cameras.Ks[0, 0, 0].item() / 2)
    import gs_core.data.dataset as dmod

    calls = []
    monkeypatch.setattr(dmod, "load_object_views", lambda *a, **k: calls.append(a) or full)
    ds2 = MultiViewDataset(root, "train", resolution=32)
    ds2[0], ds2[0], ds2[1]
    assert len(calls) == 2  # decoded once per object
    with pytest.raises(FileFormatError, match="gaussians.ply: not found"):
        MultiViewDataset(root, "train", resolution=32, load_fitted=True)[0]


def test_missing_points_and_categories(root, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    (copy / "mug_00000" / "points.ply").unlink()
    ds = MultiViewDataset(copy, "train", resolution=32, load_points=True, categories=["mug"])
    assert ds.object_ids == ["mug_00000"]
    with pytest.raises(FileFormatError, match="points.ply: not found"):
        ds[0]
    assert math.isfinite(
        float(
            MultiViewDataset(copy, "train", resolution=32, categories=["lamp"])[0]["input_azimuth"]
        )
    )


def test_depth_maps_match_the_cameras(root):
    """Depth from the maps back-projects onto the object: points project to their own z."""
    ds = MultiViewDataset(
        root, "train", resolution=32, load_depth=True, load_points=True, num_points=400, seed=0
    )
    it = ds[0]
    d = it["target_depth"]
    assert d.shape == (4, 32, 32, 1)
    assert ((d[..., 0] > 0) == (it["target_alpha"][..., 0] == 1)).float().mean() > 0.9
    for k in range(4):
        V = it["target_viewmats"][k].double()
        pc = it["points"].double() @ V[:3, :3].T + V[:3, 3]
        uv = _project(V, it["target_Ks"][k].double(), it["points"].double()).long().clamp(0, 31)
        zmap = d[k, uv[:, 1], uv[:, 0], 0].double()
        visible = (zmap > 0) & ((zmap - pc[:, 2]).abs() < 0.05)
        # Most points are visible and sit at the depth of their pixel; few lie in front of it
        # (only near silhouettes, where the pixel-centre ray passes the point's part).
        assert visible.float().mean() > 0.25  # about half the surface faces each camera
        assert (pc[:, 2] < zmap - 0.05)[zmap > 0].float().mean() < 0.1
    with pytest.raises(FileFormatError, match="depth_file_path"):
        import json

        doc = json.loads((root / ds.object_ids[0] / "transforms.json").read_text())
        for f in doc["frames"]:
            f.pop("depth_file_path")
        from gs_core.data import read_transforms

        rec = read_transforms(root / ds.object_ids[0])
        rec.frames[0].depth_path = None
        load_object_views(rec, 32, depth=True)
