"""Decode an object's views once: RGBA at a chosen resolution, cameras, optional points.

Resizing happens on premultiplied colour (so transparent pixels do not bleed a dark fringe into
the object's edge) with an anti-aliased bilinear filter, and the result is stored as straight
RGBA uint8, the same representation as the files; at the native resolution nothing is resampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_core.cameras import Cameras
from gs_core.data.transforms import Frame, ObjectRecord, read_transforms
from gs_core.errors import FileFormatError

RGB_WITHOUT_ALPHA_HELP = (
    "it is RGB without an alpha channel, and gs3d needs each view's object mask. Options: "
    "(1) re-render with a transparent background (Blender: Render > Film > Transparent) so the "
    "PNGs are RGBA; (2) add a per-frame 'mask_file_path' to transforms.json pointing at a "
    "greyscale mask (white = object); (3) if the images have a known solid background colour, "
    "derive alpha from it: alpha_from_background=(r, g, b) in [0, 1] "
    "(CLI: --alpha-from-background 1,1,1)"
)


@dataclass
class ObjectViews:
    """All views of one object: ``rgba [V, H, W, 4]`` uint8 (straight alpha), ``cameras`` and,
    when loaded, ``depth [V, H, W]`` float32 camera-space z (0 = background)."""

    record: ObjectRecord
    rgba: np.ndarray
    cameras: Cameras
    depth: np.ndarray | None = None

    @property
    def object_id(self) -> str:
        return self.record.object_id

    @property
    def category(self) -> str:
        return self.record.category

    @property
    def num_views(self) -> int:
        return self.rgba.shape[0]

    def nbytes(self) -> int:
        return int(self.rgba.nbytes) + (int(self.depth.nbytes) if self.depth is not None else 0)


def _read_rgba(frame: Frame, alpha_from_background, bg_tolerance: float) -> np.ndarray:
    """Straight RGBA uint8 ``[H, W, 4]`` of one frame (any image mode, see ``load_image``)."""
    from gs_core.imaging import load_image

    img = load_image(frame.image_path, what=f"image of frames[{frame.index}]", dtype=np.uint8)
    if img.shape[-1] == 4 and frame.mask_path is None:
        return img
    rgb = img[..., :3]
    if frame.mask_path is not None:
        what = f"mask of frames[{frame.index}]"
        alpha = load_image(frame.mask_path, "L", what, dtype=np.uint8)[..., 0]
        if alpha.shape != rgb.shape[:2]:
            raise FileFormatError(
                frame.mask_path,
                f"mask is {alpha.shape[1]}x{alpha.shape[0]} but its image is {rgb.shape[1]}x{rgb.shape[0]}",
            )
    elif alpha_from_background is not None:
        bg = np.asarray(alpha_from_background, np.float32) * 255
        diff = np.abs(rgb.astype(np.float32) - bg).max(-1)
        alpha = np.where(diff > bg_tolerance * 255, 255, 0).astype(np.uint8)
    else:
        raise FileFormatError(frame.image_path, f"frames[{frame.index}]: {RGB_WITHOUT_ALPHA_HELP}")
    return np.concatenate([rgb, alpha[..., None]], -1)


def resize_rgba(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize straight RGBA uint8 ``[V, H, W, 4]`` through premultiplied colour."""
    V, H, W = rgba.shape[:3]
    if (width, height) == (W, H):
        return rgba
    x = torch.from_numpy(rgba).float().div_(255).permute(0, 3, 1, 2)
    a = x[:, 3:4]
    prem = torch.cat([x[:, :3] * a, a], 1)
    out = torch.nn.functional.interpolate(
        prem, size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )
    out = out.clamp_(0, 1)
    a = out[:, 3:4]
    rgb = torch.where(
        a > 1e-6, out[:, :3] / a.clamp_min(1e-6), torch.zeros_like(out[:, :3])
    ).clamp_(0, 1)
    res = torch.cat([rgb, a], 1).permute(0, 2, 3, 1).mul_(255).add_(0.5).floor_().to(torch.uint8)
    return res.numpy()


def target_size(record: ObjectRecord, resolution: int | tuple[int, int] | None) -> tuple[int, int]:
    """``(W, H)`` for ``resolution`` (an int is the square side; None keeps the native size)."""
    w0, h0 = record.image_size(record.frames[0])
    if resolution is None:
        return w0, h0
    if isinstance(resolution, int):
        if w0 != h0:
            raise FileFormatError(
                record.directory,
                f"views are {w0}x{h0} (not square); give the resolution as (width, height) with that aspect",
            )
        return resolution, resolution
    return int(resolution[0]), int(resolution[1])


def _read_depth(record: ObjectRecord, frame: Frame) -> np.ndarray:
    source = record.directory / "transforms.json"
    if frame.depth_path is None:
        raise FileFormatError(
            source, f"frames[{frame.index}] has no 'depth_file_path' (needed for depth)"
        )
    if record.depth_unit_scale_factor is None:
        raise FileFormatError(source, "depth maps need a top-level 'depth_unit_scale_factor'")
    from gs_core.imaging import open_image

    what = f"depth map of frames[{frame.index}]"
    with open_image(frame.depth_path, what) as im:
        im.load()
        # raw values, not colours: depth units times depth_unit_scale_factor
        depth, mode = np.asarray(im, dtype=np.float32), im.mode
    if depth.ndim != 2:
        raise FileFormatError(
            frame.depth_path, f"{what}: expected a single-channel (16-bit) image, got mode {mode}"
        )
    return depth * np.float32(record.depth_unit_scale_factor)


def load_object_views(
    obj: str | Path | ObjectRecord,
    resolution: int | tuple[int, int] | None = None,
    alpha_from_background: tuple[float, float, float] | None = None,
    bg_tolerance: float = 0.02,
    depth: bool = False,
) -> ObjectViews:
    """Read every view of an object folder, resized to ``resolution``.

    With ``depth=True`` also reads each frame's ``depth_file_path`` (16-bit PNG times
    ``depth_unit_scale_factor``), resized with nearest neighbours so no depth is invented
    across silhouettes.

    Raises :class:`FileFormatError` naming the file for missing or corrupt images, images of
    mismatched sizes, and RGB images without an alpha channel (the message lists the options).
    """
    record = obj if isinstance(obj, ObjectRecord) else read_transforms(obj)
    W, H = target_size(record, resolution)
    views = []
    size0 = None
    for f in record.frames:
        arr = _read_rgba(f, alpha_from_background, bg_tolerance)
        size = (arr.shape[1], arr.shape[0])
        declared = (f.intrinsics.get("w"), f.intrinsics.get("h"))
        if (
            declared[0] is not None
            and declared[1] is not None
            and size != (int(declared[0]), int(declared[1]))
        ):
            raise FileFormatError(
                f.image_path,
                f"image is {size[0]}x{size[1]} but transforms.json declares w x h = {int(declared[0])}x{int(declared[1])}",
            )
        if size0 is None:
            size0 = size
        elif size != size0:
            raise FileFormatError(
                f.image_path,
                f"image is {size[0]}x{size[1]} but frames[0] is {size0[0]}x{size0[1]} (views must share a size)",
            )
        views.append(arr)
    rgba = resize_rgba(np.stack(views), W, H)
    cams = record.cameras(size=(W, H))
    depth_maps = None
    if depth:
        d = np.stack([_read_depth(record, f) for f in record.frames])
        if d.shape[1:] != (size0[1], size0[0]):
            raise FileFormatError(
                record.frames[0].depth_path,
                f"depth maps are not {size0[0]}x{size0[1]} like the images",
            )
        if size0 != (W, H):
            t = torch.from_numpy(d)[:, None]
            d = torch.nn.functional.interpolate(t, size=(H, W), mode="nearest-exact")[:, 0].numpy()
        depth_maps = d
    return ObjectViews(record=record, rgba=rgba, cameras=cams, depth=depth_maps)
