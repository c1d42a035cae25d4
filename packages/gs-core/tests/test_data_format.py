"""transforms.json format: writer/reader round trip, conventions, and one clear error per bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gs_core.cameras import Cameras
from gs_core.data import (
    list_objects,
    load_object_views,
    read_split,
    read_transforms,
    split_ids,
    write_object,
    write_splits,
)
from gs_core.data.writer import decode_normals, depth_scale_for
from gs_core.errors import FileFormatError, GS3DError
from gs_core.io import OutputExistsError


def _cams(n=5, size=24):
    return Cameras.orbit(
        np.linspace(0, 300, n),
        np.linspace(-20, 30, n),
        radius=1.7,
        fov_deg=49.1,
        width=size,
        height=size,
    )


def _rgba(n=5, size=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 4), dtype=np.uint8)


@pytest.fixture()
def obj(tmp_path):
    cams = _cams()
    rgba = _rgba()
    depth = np.random.default_rng(1).uniform(0, 2.5, (5, 24, 24)).astype(np.float32)
    n = np.random.default_rng(2).standard_normal((5, 24, 24, 3)).astype(np.float32)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    K = cams.Ks[0].double()
    d = write_object(
        tmp_path / "obj",
        rgba,
        cams.camtoworlds_opengl().double().numpy(),
        fl_x=float(K[0, 0]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        depth=depth,
        normals=n,
        points=np.random.default_rng(3).uniform(-0.5, 0.5, (100, 3)),
        point_colors=np.random.default_rng(4).uniform(0, 1, (100, 3)),
        meta={"category": "thing"},
    )
    return d, cams, rgba, depth, n


def test_round_trip_cameras_images_maps(obj):
    d, cams, rgba, depth, normals = obj
    rec = read_transforms(d)
    assert rec.category == "thing" and len(rec.frames) == 5 and rec.points_path is not None
    back = rec.cameras()
    assert (back.width, back.height) == (24, 24)
    assert torch.allclose(back.viewmats, cams.viewmats, atol=1e-6)
    assert torch.allclose(back.Ks, cams.Ks, atol=1e-5)
    views = load_object_views(d)
    assert np.array_equal(views.rgba, rgba)
    # Depth: 16-bit PNG in units of depth_unit_scale_factor.
    unit = rec.depth_unit_scale_factor
    assert unit == depth_scale_for(float(depth.max()))
    dq = np.asarray(Image.open(rec.frames[2].depth_path), dtype=np.float64) * unit
    assert np.abs(dq - depth[2]).max() <= unit / 2 + 1e-9
    n = decode_normals(np.asarray(Image.open(rec.frames[3].normal_path)))
    assert np.abs(n - normals[3]).max() < 0.02
    # Resizing the cameras scales the intrinsics with the image.
    half = rec.cameras(size=(12, 12))
    assert torch.allclose(half.Ks[0, :2], cams.Ks[0, :2] / 2, atol=1e-5)


def test_blender_style_file(tmp_path):
    """camera_angle_x only, 3x4 matrices, file paths without extension, RGBA PNGs."""
    d = tmp_path / "lego"
    (d / "train").mkdir(parents=True)
    c2w = _cams(2, 16).camtoworlds_opengl().double().numpy()
    frames = []
    for i in range(2):
        Image.fromarray(_rgba(1, 16, i)[0]).save(d / "train" / f"r_{i}.png")
        frames.append(
            {
                "file_path": f"./train/r_{i}",
                "transform_matrix": c2w[i][:3].tolist(),
                "rotation": 0.01,
            }
        )
    (d / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.6911, "frames": frames}))
    rec = read_transforms(d / "transforms.json")
    assert rec.frames[0].image_path.name == "r_0.png"
    assert rec.frames[0].extras == {"rotation": 0.01}
    cams = rec.cameras()
    assert cams.Ks[0, 0, 0].item() == pytest.approx(8 / math.tan(0.6911 / 2), rel=1e-5)
    assert cams.Ks[0, 0, 2].item() == 8
    assert load_object_views(d, 8).rgba.shape == (2, 8, 8, 4)


def _write_json(d, doc):
    (d / "transforms.json").write_text(json.dumps(doc) if not isinstance(doc, str) else doc)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda doc: "{not json", "not valid JSON"),
        (lambda doc: [1, 2], "JSON object"),
        (lambda doc: {**doc, "frames": []}, "'frames': the list is empty"),
        (lambda doc: {k: v for k, v in doc.items() if k != "frames"}, "'frames'"),
        (
            lambda doc: _frame(doc, 1, transform_matrix=[[1, 0, 0], [0, 1, 0]]),
            r"frames\[1\].transform_matrix.*shape \(2, 3\)",
        ),
        (
            lambda doc: _frame(doc, 0, transform_matrix=np.diag([2.0, 2, 2, 1]).tolist()),
            "not a proper rotation",
        ),
        (
            lambda doc: _frame(doc, 0, transform_matrix=[[1, 0, 0, 0]] * 4),
            r"frames\[0\].transform_matrix",
        ),
        (lambda doc: _frame(doc, 1, transform_matrix="eye"), r"frames\[1\].transform_matrix"),
        (lambda doc: _frame(doc, 0, file_path=None), r"frames\[0\].file_path"),
        (lambda doc: {**doc, "fl_x": "big"}, "'fl_x': expected a finite number"),
        (
            lambda doc: {
                k: v
                for k, v in doc.items()
                if k not in ("fl_x", "fl_y", "camera_angle_x", "camera_angle_y")
            },
            "no intrinsics",
        ),
        (
            lambda doc: _frame(doc, 0, _drop="transform_matrix"),
            r"frames\[0\].transform_matrix': missing",
        ),
    ],
)
def test_malformed_transforms_name_the_field(obj, mutate, match):
    d = obj[0]
    doc = json.loads((d / "transforms.json").read_text())
    _write_json(d, mutate(doc))
    with pytest.raises(FileFormatError, match=match) as e:
        read_transforms(d)
    assert "transforms.json" in str(e.value)


def _frame(doc, i, _drop=None, **kw):
    doc = json.loads(json.dumps(doc))
    if _drop:
        del doc["frames"][i][_drop]
    for k, v in kw.items():
        if v is None:
            del doc["frames"][i][k]
        else:
            doc["frames"][i][k] = v
    return doc


def test_missing_and_corrupt_images(obj):
    d = obj[0]
    (d / "images" / "001.png").unlink()
    with pytest.raises(FileFormatError, match=r"001\.png: image of frames\[1\] not found"):
        load_object_views(d)
    (d / "images" / "001.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(
        FileFormatError, match=r"001\.png: image of frames\[1\]: not a readable image"
    ):
        load_object_views(d)


def test_mismatched_sizes(obj):
    d = obj[0]
    Image.fromarray(_rgba(1, 20)[0]).save(d / "images" / "002.png")
    with pytest.raises(FileFormatError, match="declares w x h = 24x24"):
        load_object_views(d)


def test_rgb_without_alpha_explains_options(obj):
    d = obj[0]
    rgb = np.full((24, 24, 3), 255, np.uint8)
    rgb[8:16, 8:16] = (200, 30, 30)
    for i in range(5):
        Image.fromarray(rgb).save(d / "images" / f"{i:03d}.png")
    with pytest.raises(FileFormatError, match="without an alpha channel") as e:
        load_object_views(d)
    msg = str(e.value)
    assert (
        "000.png" in msg
        and "mask_file_path" in msg
        and "alpha_from_background" in msg
        and "Transparent" in msg
    )
    # Option 3: a known solid background.
    v = load_object_views(d, alpha_from_background=(1.0, 1.0, 1.0))
    assert v.rgba[0, 10, 10, 3] == 255 and v.rgba[0, 0, 0, 3] == 0
    # Option 2: per-frame masks.
    doc = json.loads((d / "transforms.json").read_text())
    mask = np.zeros((24, 24), np.uint8)
    mask[4:20, 4:20] = 255
    for i, fr in enumerate(doc["frames"]):
        Image.fromarray(mask).save(d / f"mask_{i}.png")
        fr["mask_file_path"] = f"mask_{i}.png"
    _write_json(d, doc)
    v = load_object_views(d)
    assert v.rgba[1, 5, 5, 3] == 255 and v.rgba[1, 2, 2, 3] == 0


def test_resize_is_premultiplied(tmp_path):
    """A red square on transparent black must not get a dark fringe when downsampled."""
    rgba = np.zeros((1, 32, 32, 4), np.uint8)
    rgba[0, 8:24, 8:24] = (255, 0, 0, 255)
    cams = _cams(1, 32)
    d = write_object(
        tmp_path / "o",
        rgba,
        cams.camtoworlds_opengl().double().numpy(),
        fl_x=float(cams.Ks[0, 0, 0]),
    )
    v = load_object_views(d, 8)
    a = v.rgba[0, ..., 3]
    edge = (a > 0) & (a < 255)
    assert edge.any()
    assert (v.rgba[0, ..., 0][a > 0] >= 250).all()  # straight colour stays pure red
    # Area is preserved: mean alpha of the downsampled image = covered fraction.
    assert a.mean() / 255 == pytest.approx(0.25, abs=0.01)


def test_write_object_refuses_to_overwrite(obj):
    d, cams, rgba, *_ = obj
    with pytest.raises(OutputExistsError):
        write_object(d, rgba, cams.camtoworlds_opengl().double().numpy(), fl_x=30.0)
    write_object(
        d, rgba[:2], cams.camtoworlds_opengl().double().numpy()[:2], fl_x=30.0, overwrite=True
    )
    assert len(read_transforms(d).frames) == 2 and not (d / "depth").exists()


def test_splits_and_errors(tmp_path, obj):
    root = obj[0].parent
    for name in ("b", "c"):
        shutil.copytree(obj[0], root / name)
    assert list_objects(root) == ["b", "c", "obj"]
    assert read_split(root, "all") == ["b", "c", "obj"]
    with pytest.raises(
        FileFormatError,
        match=r"splits/train.txt: split file not found \(splits in this dataset: none",
    ):
        read_split(root, "train")
    write_splits(root, {"train": ["b", "obj"], "val": [], "test": ["c", "ghost"]})
    assert read_split(root, "train") == ["b", "obj"]
    with pytest.raises(FileFormatError, match="split 'val' lists no objects"):
        read_split(root, "val")
    with pytest.raises(FileFormatError, match="ghost"):
        read_split(root, "test")
    with pytest.raises(GS3DError, match="unknown category"):
        read_split(root, "train", ["chairs"])
    parts = split_ids(
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
        {"val": 0.1, "test": 0.2, "train": 0.7},
        seed=3,
    )
    assert sorted(sum(parts.values(), [])) == list("abcdefghij")
    assert [len(parts[k]) for k in ("val", "test", "train")] == [1, 2, 7]
    assert parts == split_ids(list("jihgfedcba"), {"val": 0.1, "test": 0.2, "train": 0.7}, seed=3)
    with pytest.raises(FileFormatError, match="no object folders"):
        read_split(tmp_path / "obj" / "images", "all")
