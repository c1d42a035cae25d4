"""Asymmetric procedural objects, the teacher camera layouts and the eval-hard preset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gs_core.procedural import CATEGORIES, make_object
from gs_core.procedural.generator import (
    EVAL_HARD_SEED,
    ProceduralConfig,
    camera_angles,
    generate,
)
from gs_core.procedural.surface import procedural_reference
from gs_core.procedural.textures import Texture


def _occupancy_grid(obj, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    r = obj.radius
    g = np.linspace(-r, r, n)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return pts, obj.inside(obj.to_object(pts))


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_asymmetric_keeps_the_base_shape_and_adds_markers(category):
    base = make_object(category, np.random.default_rng([7, 3, 0]))
    asym = make_object(category, np.random.default_rng([7, 3, 0]), asymmetric=True)
    n = len(base.parts)
    assert [p.name for p in asym.parts[:n]] == [p.name for p in base.parts]
    for a, b in zip(asym.parts[:n], base.parts, strict=True):
        assert type(a.shape) is type(b.shape)
        np.testing.assert_array_equal(a.shape.center, b.shape.center)
    assert any(p.texture.kind == "angular" for p in asym.parts)
    assert any(p.name.startswith("marker") for p in asym.parts[n:])


@pytest.mark.parametrize("category", ["bottle", "mug", "table", "dumbbell"])
def test_asymmetric_objects_are_not_mirror_symmetric(category):
    """Occupancy differs from its reflection in both vertical mirror planes of the templates
    (a symmetric bottle is equal to both reflections: the check can fail)."""
    for asymmetric, expect_symmetric in ((False, category == "bottle"), (True, False)):
        obj = make_object(category, np.random.default_rng([1, 2, 0]), asymmetric=asymmetric)
        pts, occ = _occupancy_grid(obj)
        for axis in (0, 2):
            mirrored = pts.copy()
            mirrored[:, axis] *= -1
            occ_m = obj.inside(obj.to_object(mirrored))
            differs = int((occ != occ_m).sum())
            if expect_symmetric:
                assert differs <= 0.002 * occ.sum() + 2, (category, axis, differs)
            elif asymmetric:
                assert differs > 0, (category, axis)


def test_angular_texture_turns_once_and_breaks_mirrors():
    tex = Texture(kind="angular", color_a=(1.0, 0.0, 0.0), color_b=(0.0, 0.0, 1.0), axis=1)
    ang = np.linspace(-np.pi + 0.1, np.pi - 0.1, 9)
    x, z = np.sin(ang).astype(np.float32), np.cos(ang).astype(np.float32)
    y = np.zeros_like(x)
    col = tex.albedo(x, y, z)
    assert np.all(np.diff(col[:, 2]) > 0)  # blue grows monotonically once around the axis
    mirrored = tex.albedo(-x, y, z)
    assert np.abs(col - mirrored).max() > 0.5
    with pytest.raises(Exception, match="Texture.kind"):
        Texture(kind="spiral")


def test_zero123pp_layout_sets():
    cfg = ProceduralConfig(views=14, camera_layout="zero123pp", objects=1)
    az, el, groups = camera_angles(cfg, 0)
    assert len(az) == 14 and groups[:7] == ["input"] + ["zero123pp"] * 6
    for s in range(2):
        a0 = az[7 * s]
        rel = (az[7 * s + 1 : 7 * s + 7] - a0) % 360
        np.testing.assert_allclose(rel, [30, 90, 150, 210, 270, 330], atol=1e-9)
        np.testing.assert_allclose(el[7 * s + 1 : 7 * s + 7], [30, -20] * 3)
    assert az[0] != az[7]  # each set has its own random input pose (a random yaw)


def test_ring24_layout():
    cfg = ProceduralConfig(views=24, camera_layout="ring24", objects=1)
    az, el, groups = camera_angles(cfg, 0)
    assert len(az) == 24 and set(groups) == {"ring24"}
    np.testing.assert_allclose(np.diff(np.unwrap(np.radians(az))), np.radians(15.0), atol=1e-9)
    assert np.ptp(el) == 0 and cfg.elevation_range[0] <= el[0] <= cfg.elevation_range[1]


def test_eval_hard_dataset_and_exact_reference(tmp_path):
    cfg = ProceduralConfig.preset("eval-hard").model_copy(
        update={"objects": 1, "views": 1, "resolution": 16, "points": 64, "antialias": 1}
    )
    assert cfg.seed == EVAL_HARD_SEED and cfg.asymmetric
    generate(cfg, tmp_path / "ds", workers=0, progress=False)
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["name"] == (
        "procedural-eval-hard"
    )
    obj_dir = next(p for p in (tmp_path / "ds").iterdir() if p.is_dir() and "_" in p.name)
    meta = json.loads((obj_dir / "transforms.json").read_text())
    assert meta["gs3d"]["asymmetric"] is True
    ref = procedural_reference(obj_dir, points=256)
    assert any(p.name.startswith("marker") for p in ref.object.parts)


def test_set_layout_frames_record_their_set(tmp_path):
    cfg = ProceduralConfig(
        objects=1, views=14, resolution=16, points=0, camera_layout="zero123pp", antialias=1
    )
    generate(cfg, tmp_path / "ds", workers=0, progress=False)
    obj_dir = next(p for p in (tmp_path / "ds").iterdir() if p.is_dir() and "_" in p.name)
    frames = json.loads((obj_dir / "transforms.json").read_text())["frames"]
    assert [f["set"] for f in frames] == [0] * 7 + [1] * 7
    assert "asymmetric" not in json.loads((obj_dir / "transforms.json").read_text())["gs3d"]
