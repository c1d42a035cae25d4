"""Write one object folder in the ``transforms.json`` format (see :mod:`gs_core.data.transforms`).

Files: ``images/NNN.png`` (RGBA, straight alpha), optionally ``depth/NNN.png`` (16-bit,
``value * depth_unit_scale_factor`` = camera-space z, 0 = background), ``normals/NNN.png``
(8-bit RGB world normals ``(n + 1) / 2``, black = background), ``points.ply``. The folder is
written under a temporary name and renamed into place, so it appears complete or not at all.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from gs_core.data.transforms import POINTS_NAME, TRANSFORMS_NAME, transforms_dict
from gs_core.errors import ValidationError
from gs_core.io.atomic import atomic_path, check_overwrite

# zlib level 1: the views are flat-shaded with large empty areas and compress well even at the
# fastest level, and encoding speed bounds the procedural generator's throughput.
PNG_COMPRESS_LEVEL = 1
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+A, RGB, RGBA)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(arr: np.ndarray) -> bytes:
    """Encode uint8 ``[H, W]``/``[H, W, 1|2|3|4]`` or uint16 ``[H, W]`` as PNG bytes.

    A direct encoder (signature, IHDR, one IDAT, IEND; PNG spec sec. 11) with the "Up" filter on
    every row, computed with numpy; several times faster than going through Pillow for small
    images, and deterministic.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in _PNG_COLOR_TYPES or a.dtype not in (np.uint8, np.uint16):
        raise ValidationError(
            "png image", "uint8 [H, W, 1-4] or uint16 [H, W]", f"{a.dtype} shape {a.shape}"
        )
    if a.dtype == np.uint16 and a.shape[-1] != 1:
        raise ValidationError("png image", "uint16 images with one channel", f"shape {a.shape}")
    h, w, c = a.shape
    depth = 8 if a.dtype == np.uint8 else 16
    rows = np.ascontiguousarray(a.astype(">u2") if depth == 16 else a).view(np.uint8).reshape(h, -1)
    # Filter type 2 (Up): each byte minus the byte above it, modulo 256.
    up = rows.copy()
    up[1:] -= rows[:-1]
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], 1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, depth, _PNG_COLOR_TYPES[c], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, PNG_COMPRESS_LEVEL))
        + _chunk(b"IEND", b"")
    )


def depth_scale_for(max_depth: float) -> float:
    """The finest power-of-ten depth unit whose 16-bit range covers ``max_depth``."""
    unit = 1e-5
    while 65535 * unit < max_depth:
        unit *= 10
    return unit


def encode_depth(depth: np.ndarray, unit: float) -> np.ndarray:
    """Depth ``[H, W]`` -> uint16 counts of ``unit`` (rounded, clipped to the 16-bit range)."""
    q = np.asarray(depth, np.float64) / unit
    return np.clip(q + 0.5, 0, 65535).astype(np.uint16)


def encode_normals(normals: np.ndarray) -> np.ndarray:
    """Unit normals ``[H, W, 3]`` -> uint8 ``(n + 1) * 127.5`` in [1, 255]; zero vectors -> 0."""
    n = np.asarray(normals, np.float32)
    enc = np.clip(n * np.float32(127.5) + np.float32(128.0), 1, 255).astype(np.uint8)
    enc[(n[..., 0] == 0) & (n[..., 1] == 0) & (n[..., 2] == 0)] = 0
    return enc


def decode_normals(enc: np.ndarray) -> np.ndarray:
    """Inverse of the normal encoding: ``[H, W, 3]`` float32 unit normals, 0 for background."""
    e = np.asarray(enc, np.float32)[..., :3]
    n = e / 127.5 - 1
    valid = e.max(-1, keepdims=True) > 0
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-8)
    return np.where(valid, n, 0).astype(np.float32)


def write_object(
    directory: str | Path,
    rgba: np.ndarray,
    c2w_gl: np.ndarray,
    fl_x: float,
    fl_y: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    depth: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    points: np.ndarray | None = None,
    point_colors: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
    frame_extras: list[dict[str, Any]] | None = None,
    overwrite: bool = False,
    clean_stale: bool = True,
) -> Path:
    """Write an object folder atomically.

    Args:
        rgba: ``[V, H, W, 4]`` uint8 views, straight (not premultiplied) alpha.
        c2w_gl: ``[V, 4, 4]`` OpenGL camera-to-world matrices.
        fl_x, fl_y, cx, cy: shared intrinsics in pixels.
        depth: optional ``[V, H, W]`` z-depth (0 = background); normals: ``[V, H, W, 3]``.
        points, point_colors: optional ``[P, 3]`` surface points and colours in [0, 1].
        clean_stale: as :func:`gs_core.io.atomic.atomic_path`'s; False for a writer filling a
            dataset folder of its own (``gs3d data procedural``), so that each object does not
            list every object written before it.
    """
    directory = Path(directory)
    check_overwrite(directory, overwrite)
    rgba = np.asarray(rgba)
    if rgba.ndim != 4 or rgba.shape[-1] != 4 or rgba.dtype != np.uint8:
        raise ValidationError(
            "rgba", "uint8 views [V, H, W, 4]", f"{rgba.dtype} shape {rgba.shape}"
        )
    V, H, W = rgba.shape[:3]
    if depth is not None and np.shape(depth) != (V, H, W):
        raise ValidationError("depth", f"shape {(V, H, W)}", f"shape {np.shape(depth)}")
    if normals is not None and np.shape(normals) != (V, H, W, 3):
        raise ValidationError("normals", f"shape {(V, H, W, 3)}", f"shape {np.shape(normals)}")
    extras = [dict(e) for e in frame_extras] if frame_extras is not None else [{} for _ in range(V)]
    if len(extras) != V:
        raise ValidationError("frame_extras", f"{V} dicts, one per view", str(len(extras)))
    unit = None
    if depth is not None:
        unit = depth_scale_for(float(np.max(depth)) if depth.size else 1.0)
    digits = max(3, len(str(V - 1)))
    names = [f"{i:0{digits}d}.png" for i in range(V)]
    with atomic_path(directory, clean_stale=clean_stale) as tmp:
        (tmp / "images").mkdir(parents=True)
        for i, name in enumerate(names):
            (tmp / "images" / name).write_bytes(png_bytes(rgba[i]))
        if depth is not None:
            (tmp / "depth").mkdir()
            for i, name in enumerate(names):
                (tmp / "depth" / name).write_bytes(png_bytes(encode_depth(depth[i], unit)))
                extras[i]["depth_file_path"] = f"depth/{name}"
        if normals is not None:
            (tmp / "normals").mkdir()
            for i, name in enumerate(names):
                (tmp / "normals" / name).write_bytes(png_bytes(encode_normals(normals[i])))
                extras[i]["normal_file_path"] = f"normals/{name}"
        doc = transforms_dict(
            c2w_gl,
            [f"images/{n}" for n in names],
            W,
            H,
            fl_x,
            fl_y,
            cx,
            cy,
            meta=meta,
            frame_extras=extras,
            depth_unit_scale_factor=unit,
        )
        (tmp / TRANSFORMS_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        if points is not None:
            from gs_core.io import save_point_cloud

            save_point_cloud(tmp / POINTS_NAME, np.asarray(points, np.float32), point_colors)
    return directory
