"""``transforms.json``: the NeRF/Blender multi-view format objects are shipped in.

One object is a folder with RGBA views and a ``transforms.json``::

    {
      "camera_angle_x": 0.8575,              # horizontal FOV in radians, or (in pixels):
      "fl_x": 140.0, "fl_y": 140.0, "cx": 64.0, "cy": 64.0, "w": 128, "h": 128,
      "depth_unit_scale_factor": 0.0001,     # optional: depth PNG value * factor = z-depth
      "gs3d": {"category": "mug", ...},      # optional object metadata
      "frames": [
        {"file_path": "images/000.png",      # relative to the folder; ".png" may be omitted
         "transform_matrix": [[...4x4...]],  # OpenGL camera-to-world (x right, y up, z back)
         "mask_file_path": "...",            # optional object mask for RGB-only images
         "depth_file_path": "...", "normal_file_path": "...",   # optional extra maps
         "fl_x": ..., ...}                   # optional per-frame intrinsics overrides
      ]
    }

beside an optional ``points.ply`` (coloured surface points) and ``gaussians.ply`` (a per-object
3DGS fit). Intrinsics of a frame are its own keys, else the file's top-level ones; ``w``/``h``
default to the image size.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs_core.cameras import Cameras, intrinsics
from gs_core.errors import FileFormatError, ValidationError

TRANSFORMS_NAME = "transforms.json"
POINTS_NAME = "points.ply"
GAUSSIANS_NAME = "gaussians.ply"
INTRINSIC_KEYS = ("camera_angle_x", "camera_angle_y", "fl_x", "fl_y", "cx", "cy", "w", "h")

# OpenGL camera axes (x right, y up, z back) -> OpenCV (x right, y down, z forward).
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Frame:
    """One view: resolved file paths, the OpenGL camera-to-world ``[4, 4]`` and intrinsics."""

    index: int
    image_path: Path
    c2w_gl: np.ndarray
    intrinsics: dict[str, float]
    mask_path: Path | None = None
    depth_path: Path | None = None
    normal_path: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def center(self) -> np.ndarray:
        return self.c2w_gl[:3, 3]


@dataclass
class ObjectRecord:
    """A parsed ``transforms.json`` and what lies beside it."""

    directory: Path
    frames: list[Frame]
    meta: dict[str, Any] = field(default_factory=dict)
    depth_unit_scale_factor: float | None = None

    @property
    def object_id(self) -> str:
        return self.directory.name

    @property
    def category(self) -> str:
        return str(self.meta.get("category", ""))

    @property
    def points_path(self) -> Path | None:
        p = self.directory / POINTS_NAME
        return p if p.is_file() else None

    @property
    def gaussians_path(self) -> Path | None:
        p = self.directory / GAUSSIANS_NAME
        return p if p.is_file() else None

    def image_size(self, frame: Frame) -> tuple[int, int]:
        """``(width, height)`` of a frame: its ``w``/``h`` or, failing that, the image header."""
        w, h = frame.intrinsics.get("w"), frame.intrinsics.get("h")
        if w is not None and h is not None:
            return int(w), int(h)
        from gs_core.imaging import image_size

        return image_size(frame.image_path, f"image of frames[{frame.index}]")

    def cameras(
        self, indices: list[int] | None = None, size: tuple[int, int] | None = None
    ) -> Cameras:
        """OpenCV :class:`Cameras` of the frames (all by default), rescaled to ``size = (W, H)``."""
        idx = list(range(len(self.frames))) if indices is None else list(indices)
        w0, h0 = self.image_size(self.frames[idx[0]])
        W, H = size if size is not None else (w0, h0)
        views, Ks = [], []
        for i in idx:
            f = self.frames[i]
            wi, hi = self.image_size(f)
            if wi * H != hi * W:
                raise FileFormatError(
                    self.directory / TRANSFORMS_NAME,
                    f"frames[{i}] is {wi}x{hi}, which does not scale to {W}x{H} without distortion",
                )
            fx, fy, cx, cy = frame_intrinsics(f, wi, hi, self.directory / TRANSFORMS_NAME)
            sx, sy = W / wi, H / hi
            Ks.append(intrinsics(fx * sx, fy * sy, cx * sx, cy * sy, dtype=torch.float64))
            views.append(torch.from_numpy(np.linalg.inv(f.c2w_gl @ GL_TO_CV)))
        return Cameras(
            viewmats=torch.stack(views).float(),
            Ks=torch.stack(Ks).float(),
            width=int(W),
            height=int(H),
        )


def frame_intrinsics(
    frame: Frame, width: int, height: int, source: Path
) -> tuple[float, float, float, float]:
    """``fx, fy, cx, cy`` in pixels of an image ``width x height``."""
    k = frame.intrinsics
    fx = k.get("fl_x")
    fy = k.get("fl_y")
    if fx is None and "camera_angle_x" in k:
        fx = 0.5 * width / math.tan(0.5 * k["camera_angle_x"])
    if fy is None and "camera_angle_y" in k:
        fy = 0.5 * height / math.tan(0.5 * k["camera_angle_y"])
    if fx is None and fy is None:
        raise FileFormatError(
            source, f"frames[{frame.index}]: no intrinsics (give camera_angle_x or fl_x)"
        )
    fx = fy if fx is None else fx
    fy = fx if fy is None else fy
    cx = k.get("cx", width / 2)
    cy = k.get("cy", height / 2)
    return float(fx), float(fy), float(cx), float(cy)


def _number(value, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FileFormatError(path, f"field '{where}': expected a finite number, got {value!r}")
    return float(value)


# Range of each intrinsic a camera can have: a field of view strictly between 0 and pi (tan of
# half of it is finite and positive), positive focal lengths and image sizes. Principal points
# may lie anywhere (off-centre crops).
_INTRINSIC_RANGES = {
    "camera_angle_x": (0.0, math.pi, "an angle in radians in (0, pi)"),
    "camera_angle_y": (0.0, math.pi, "an angle in radians in (0, pi)"),
    "fl_x": (0.0, math.inf, "a focal length in pixels > 0"),
    "fl_y": (0.0, math.inf, "a focal length in pixels > 0"),
    "w": (0.0, math.inf, "an image width in pixels > 0"),
    "h": (0.0, math.inf, "an image height in pixels > 0"),
}


def _intrinsic(value, key: str, where: str, path: Path) -> float:
    v = _number(value, where, path)
    if key in _INTRINSIC_RANGES:
        low, high, expected = _INTRINSIC_RANGES[key]
        if not low < v < high:
            raise FileFormatError(path, f"field '{where}': expected {expected}, got {value!r}")
    return v


def _matrix(value, where: str, path: Path) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise FileFormatError(path, f"field '{where}': expected a 4x4 matrix of numbers") from None
    if m.shape == (3, 4):
        m = np.concatenate([m, [[0.0, 0.0, 0.0, 1.0]]])
    if m.shape != (4, 4):
        raise FileFormatError(
            path, f"field '{where}': expected a 4x4 (or 3x4) matrix, got shape {m.shape}"
        )
    if not np.isfinite(m).all():
        raise FileFormatError(path, f"field '{where}': contains NaN/Inf")
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-6):
        raise FileFormatError(
            path, f"field '{where}': last row must be [0, 0, 0, 1], got {m[3].tolist()}"
        )
    R = m[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0:
        raise FileFormatError(
            path,
            f"field '{where}': the rotation part is not a proper rotation (scaled or mirrored camera)",
        )
    return m


def _resolve_file(directory: Path, value, where: str, path: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise FileFormatError(
            path, f"field '{where}': expected a relative file path string, got {value!r}"
        )
    p = inside_folder(directory, value, where, path)
    if not p.suffix and not p.exists():
        # Blender exports write "./train/r_0" for "./train/r_0.png".
        p = p.with_suffix(".png")
    return p


def inside_folder(directory: Path, value: str, where: str, source: Path) -> Path:
    """``directory / value`` for a relative path that stays inside ``directory``.

    A dataset names its files relative to its own folder; an absolute path or one climbing out
    with ``..`` would read files the dataset does not hold, so both are refused. The check is
    on the written path, not on resolved links: a dataset may keep its images behind a
    symbolic link to shared storage.
    """
    rel = Path(value.replace("\\", "/"))
    normal = os.path.normpath(rel)
    if rel.is_absolute() or rel.drive or normal == ".." or normal.startswith("../"):
        raise FileFormatError(
            source,
            f"field '{where}': expected a path inside {directory}, got {value!r}",
        )
    return (directory / normal).absolute()


def read_transforms(path: str | Path) -> ObjectRecord:
    """Parse and validate ``transforms.json`` (a file or the object folder holding it).

    Raises :class:`FileFormatError` naming the file and the offending field. Image files are
    resolved but not opened (see :mod:`gs_core.data.views`).
    """
    path = Path(path)
    if path.is_dir():
        path = path / TRANSFORMS_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(
            path, "not found (an object folder needs a transforms.json)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(path, f"not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise FileFormatError(
            path, f"expected a JSON object at the top level, got {type(raw).__name__}"
        )
    frames_raw = raw.get("frames")
    if not isinstance(frames_raw, list):
        raise FileFormatError(path, "field 'frames': expected a list of frames")
    if not frames_raw:
        raise FileFormatError(
            path, "field 'frames': the list is empty (an object needs at least one view)"
        )
    top = {}
    for key in INTRINSIC_KEYS:
        if key in raw:
            top[key] = _intrinsic(raw[key], key, key, path)
    directory = path.parent
    frames = []
    for i, fr in enumerate(frames_raw):
        if not isinstance(fr, dict):
            raise FileFormatError(
                path, f"field 'frames[{i}]': expected an object, got {type(fr).__name__}"
            )
        if "file_path" not in fr:
            raise FileFormatError(path, f"field 'frames[{i}].file_path': missing")
        if "transform_matrix" not in fr:
            raise FileFormatError(path, f"field 'frames[{i}].transform_matrix': missing")
        k = dict(top)
        for key in INTRINSIC_KEYS:
            if key in fr:
                k[key] = _intrinsic(fr[key], key, f"frames[{i}].{key}", path)
        if not any(key in k for key in ("camera_angle_x", "camera_angle_y", "fl_x", "fl_y")):
            raise FileFormatError(
                path, f"frames[{i}]: no intrinsics (give camera_angle_x or fl_x/fl_y/cx/cy)"
            )
        extras = {
            key: v
            for key, v in fr.items()
            if key
            not in (
                "file_path",
                "transform_matrix",
                "mask_file_path",
                "depth_file_path",
                "normal_file_path",
            )
            and key not in INTRINSIC_KEYS
        }
        opt = {}
        for key in ("mask_file_path", "depth_file_path", "normal_file_path"):
            opt[key] = (
                _resolve_file(directory, fr[key], f"frames[{i}].{key}", path) if key in fr else None
            )
        frames.append(
            Frame(
                index=i,
                image_path=_resolve_file(
                    directory, fr["file_path"], f"frames[{i}].file_path", path
                ),
                c2w_gl=_matrix(fr["transform_matrix"], f"frames[{i}].transform_matrix", path),
                intrinsics=k,
                mask_path=opt["mask_file_path"],
                depth_path=opt["depth_file_path"],
                normal_path=opt["normal_file_path"],
                extras=extras,
            )
        )
    meta = raw.get("gs3d", {})
    if not isinstance(meta, dict):
        raise FileFormatError(path, "field 'gs3d': expected an object of metadata")
    dsf = raw.get("depth_unit_scale_factor")
    return ObjectRecord(
        directory=directory,
        frames=frames,
        meta=dict(meta),
        depth_unit_scale_factor=None
        if dsf is None
        else _number(dsf, "depth_unit_scale_factor", path),
    )


def transforms_dict(
    c2w_gl: np.ndarray,
    file_paths: list[str],
    width: int,
    height: int,
    fl_x: float,
    fl_y: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    meta: dict[str, Any] | None = None,
    frame_extras: list[dict[str, Any]] | None = None,
    depth_unit_scale_factor: float | None = None,
) -> dict[str, Any]:
    """The JSON object of a ``transforms.json`` (shared intrinsics, one frame per path)."""
    c2w_gl = np.asarray(c2w_gl, np.float64)
    if c2w_gl.shape != (len(file_paths), 4, 4):
        raise ValidationError(
            "c2w_gl", f"shape ({len(file_paths)}, 4, 4), one per file path", f"shape {c2w_gl.shape}"
        )
    fl_y = fl_x if fl_y is None else fl_y
    cx = width / 2 if cx is None else cx
    cy = height / 2 if cy is None else cy
    out: dict[str, Any] = {
        "camera_angle_x": 2 * math.atan(0.5 * width / fl_x),
        "camera_angle_y": 2 * math.atan(0.5 * height / fl_y),
        "fl_x": float(fl_x),
        "fl_y": float(fl_y),
        "cx": float(cx),
        "cy": float(cy),
        "w": int(width),
        "h": int(height),
    }
    if depth_unit_scale_factor is not None:
        out["depth_unit_scale_factor"] = float(depth_unit_scale_factor)
    if meta:
        out["gs3d"] = meta
    frames = []
    for i, fp in enumerate(file_paths):
        fr: dict[str, Any] = {"file_path": fp}
        if frame_extras is not None:
            fr.update(frame_extras[i])
        # 10 significant digits: round trips float32 cameras exactly and keeps files readable.
        fr["transform_matrix"] = [[float(f"{v:.10g}") for v in row] for row in c2w_gl[i]]
        frames.append(fr)
    out["frames"] = frames
    return out
