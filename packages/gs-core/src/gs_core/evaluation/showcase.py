"""Pictures of predictions next to the ground truth, for people rather than metrics.

- :func:`comparison_views`: the ground-truth views of one object (input first) and the
  prediction rendered at the same cameras, expressed in the prediction's frame as
  ``gs3d eval`` expresses them;
- :func:`comparison_sheet`: those views as a labelled grid: one column per view with its
  direction as the header, a ground-truth row and a prediction row (the prediction seen from the
  input camera under the input, so no cell is empty), and a caption;
- :func:`turntable_row`: turntable frames of several objects side by side, each framed on its
  own and named.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gs_core.cameras import Cameras
from gs_core.data.spaces import azimuth_elevation, space_transform
from gs_core.data.views import load_object_views
from gs_core.gaussians import Gaussians

HEADER_PX = 40
LABEL_PX = 118
CAPTION_PX = 26
FONT_PX = 14


def label_font(size: int = FONT_PX) -> ImageFont.ImageFont:
    """Pillow's bundled scalable font at ``size`` px (its bitmap font where FreeType is missing,
    which only comes in one small size)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def comparison_views(
    gaussians: Gaussians,
    object_dir: str | Path,
    input_index: int,
    targets: Sequence[int],
    frame: str = "azimuth",
    resolution: int = 128,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Ground truth ``[1 + K, R, R, 3]``, prediction ``[1 + K, R, R, 3]`` (float in [0, 1],
    the input view first, then ``targets``) and a header per view (``"input"``, then the view's
    azimuth relative to the input and its elevation)."""
    from gs_core.rendering import render

    views = load_object_views(object_dir, resolution)
    c2w = views.cameras.camtoworlds.double().numpy()
    T = space_transform(frame, c2w[input_index])
    order = [int(input_index), *(int(t) for t in targets)]
    cams = views.cameras.select(torch.tensor(order))
    A = torch.from_numpy(np.linalg.inv(T)).float()
    cams = Cameras(cams.viewmats @ A, cams.Ks, cams.width, cams.height)
    bg = np.asarray(background, np.float32)
    rgba = views.rgba[order].astype(np.float32) / 255.0
    gt = rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:])
    g = gaussians.to("cpu") if gaussians.device.type != "cpu" else gaussians
    with torch.no_grad():
        out = render(g, cams, background=torch.tensor(bg), backend=backend)
    pred = out.rgb.clamp(0, 1).float().cpu().numpy()
    az0, _, _ = azimuth_elevation(c2w[input_index][:3, 3])
    headers = ["input"]
    for t in order[1:]:
        az, el, _ = azimuth_elevation(c2w[t][:3, 3])
        rel = (az - az0 + 180.0) % 360.0 - 180.0
        headers.append(f"az {round(rel):+d}°, el {round(el):+d}°")
    return gt, pred, headers


def _text(draw: ImageDraw.ImageDraw, xy, text: str, font, fill=(20, 20, 20)) -> None:
    draw.text(xy, text, font=font, fill=fill)


def comparison_sheet(
    gt: np.ndarray,
    pred: np.ndarray,
    headers: Sequence[str],
    row_labels: tuple[str, str] = ("ground truth", "prediction"),
    caption: str = "",
    pad: int = 4,
) -> np.ndarray:
    """``gt`` / ``pred [V, H, W, 3]`` in [0, 1] -> one uint8 sheet ``[h, w, 3]``: a header per
    column, the ground truth above the prediction, row labels on the left, ``caption`` below."""
    V, H, W, _ = gt.shape
    width = LABEL_PX + V * (W + pad) + pad
    height = HEADER_PX + 2 * (H + pad) + pad + (CAPTION_PX if caption else 0)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = label_font()
    for row, images in enumerate((gt, pred)):
        y = HEADER_PX + pad + row * (H + pad)
        _text(draw, (6, y + H // 2 - FONT_PX // 2), row_labels[row], font)
        for col in range(V):
            x = LABEL_PX + pad + col * (W + pad)
            tile = (np.clip(images[col], 0, 1) * 255 + 0.5).astype(np.uint8)
            sheet.paste(Image.fromarray(tile), (x, y))
            draw.rectangle([x - 1, y - 1, x + W, y + H], outline=(200, 200, 200))
    for col, head in enumerate(headers):
        x = LABEL_PX + pad + col * (W + pad)
        # Two lines at most: "az +72°," / "el +0°" when the tile is too narrow for one.
        lines = [head] if draw.textlength(head, font=font) <= W else head.split(", ", 1)
        for k, line in enumerate(lines):
            _text(draw, (x + 2, 4 + k * (FONT_PX + 3)), line, font)
    if caption:
        _text(draw, (6, height - CAPTION_PX + 5), caption, font)
    return np.asarray(sheet)


def turntable_row(
    scenes: Sequence[Gaussians],
    labels: Sequence[str],
    frames: int = 24,
    resolution: int = 256,
    elevation: float = 15.0,
    backend: str = "auto",
    gap: int = 4,
    progress=None,
) -> list[np.ndarray]:
    """``frames`` uint8 images ``[resolution + header, n * (resolution + gap) - gap, 3]``:
    each scene orbiting (framed on its own, as ``gs3d render`` frames one), its label above."""
    from gs_core.rendering.turntable import orbit_azimuths, render_orbit

    per_scene = []
    for scene in scenes:
        done = len(per_scene) * frames

        def report(k, n, done=done):
            if progress is not None:
                progress(done + k, len(scenes) * frames)

        per_scene.append(
            render_orbit(
                scene,
                orbit_azimuths(frames),
                elevation=elevation,
                resolution=resolution,
                backend=backend,
                progress=report,
            )
        )
    font = label_font()
    n = len(scenes)
    header = FONT_PX + 10
    out = []
    for f in range(frames):
        img = Image.new("RGB", (n * (resolution + gap) - gap, resolution + header), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        for i in range(n):
            x = i * (resolution + gap)
            tile = (np.clip(per_scene[i][f], 0, 1) * 255 + 0.5).astype(np.uint8)
            img.paste(Image.fromarray(tile), (x, header))
            _text(draw, (x + 4, 4), labels[i], font)
        out.append(np.asarray(img))
    return out


__all__ = ["comparison_sheet", "comparison_views", "label_font", "turntable_row"]
