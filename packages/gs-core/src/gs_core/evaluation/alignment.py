"""Automatic azimuth alignment of a prediction to its input view.

Methods that treat the input's azimuth as a hidden variable (DD3G, DreamGaussian and LGM in
DD3G's comparison) generate objects whose front need not face azimuth 0. DD3G's paper rotates
each sample by hand "to align their 0-degree view with the input image" (Sec. IV-A); here the
rotation is searched instead: the prediction is rendered at the input camera rotated about the
vertical axis by every candidate offset, each render is compared with the input image (mean
squared error of the colours composited on one background, inside and outside the object), and
the offset with the lowest error wins. A coarse grid (``coarse_step_deg``) is refined once
around its best offset (``fine_step_deg``). Every protocol camera is then rotated by the same
offset, so the scores measure the object and not where its front happened to land.

Rotating the cameras by ``+delta`` in azimuth about the world's y axis is the same as rotating
the object by ``-delta``; the input is compared at its own elevation and radius.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError


def rotate_about_y(cameras: Cameras, offset_deg: float | torch.Tensor) -> Cameras:
    """``cameras`` orbited by ``offset_deg`` about the world's y axis (azimuth + offset)."""
    a = torch.deg2rad(torch.as_tensor(offset_deg, dtype=torch.float64))
    c, s = torch.cos(a), torch.sin(a)
    rot = torch.zeros(4, 4, dtype=torch.float64)
    # world -> world rotation R_y(a); c2w' = R c2w  <=>  w2c' = w2c R^-1 = w2c R^T
    rot[0, 0], rot[0, 2], rot[2, 0], rot[2, 2] = c, s, -s, c
    rot[1, 1] = rot[3, 3] = 1.0
    vm = cameras.viewmats.to(torch.float64) @ rot.T.to(cameras.viewmats.device)
    return Cameras(
        viewmats=vm.to(cameras.viewmats.dtype),
        Ks=cameras.Ks,
        width=cameras.width,
        height=cameras.height,
    )


@dataclass
class Alignment:
    """The chosen ``offset_deg`` and the input-view error of every candidate tried."""

    offset_deg: float
    error: float
    candidates: list[tuple[float, float]]


def _candidates(start: float, stop: float, step: float) -> list[float]:
    n = max(1, int(math.floor((stop - start) / step + 1e-9)))
    return [start + k * step for k in range(n)]


def search_azimuth_offset(
    render_fn: Callable[[Cameras], torch.Tensor],
    input_camera: Cameras,
    input_rgb: torch.Tensor,
    *,
    coarse_step_deg: float = 10.0,
    fine_step_deg: float = 1.0,
    batch: int = 12,
) -> Alignment:
    """The azimuth offset whose render best matches the input view.

    Args:
        render_fn: ``render_fn(cameras [K])`` -> colours ``[K, H, W, 3]`` in [0, 1] of the
            prediction, composited on the background ``input_rgb`` uses.
        input_camera: the input view's camera ``[1]`` (in the prediction's frame).
        input_rgb: the input image ``[H, W, 3]`` in [0, 1] at the render size.
        coarse_step_deg / fine_step_deg: the grid over [-180, 180) and its refinement
            (``fine`` steps within one coarse step either side of the coarse best).
        batch: cameras per ``render_fn`` call.
    """
    if input_rgb.ndim != 3 or input_rgb.shape[-1] != 3:
        raise ValidationError("input_rgb", "[H, W, 3] in [0, 1]", str(tuple(input_rgb.shape)))
    if not 0 < fine_step_deg <= coarse_step_deg <= 360:
        raise ValidationError(
            "coarse_step_deg / fine_step_deg",
            "0 < fine <= coarse <= 360",
            f"{coarse_step_deg} / {fine_step_deg}",
        )
    base = input_camera if input_camera.viewmats.ndim == 3 else input_camera[None]
    if base.viewmats.shape[0] != 1:
        raise ValidationError("input_camera", "one camera", str(base.viewmats.shape[0]))
    tried: dict[float, float] = {}

    def score(offsets: list[float]) -> None:
        for i in range(0, len(offsets), batch):
            chunk = offsets[i : i + batch]
            cams = [rotate_about_y(base, o) for o in chunk]
            stacked = Cameras(
                viewmats=torch.cat([c.viewmats for c in cams]),
                Ks=torch.cat([c.Ks for c in cams]),
                width=base.width,
                height=base.height,
            )
            with torch.no_grad():
                imgs = render_fn(stacked).float()
            target = input_rgb.to(imgs.device, torch.float32)
            err = (imgs - target).square().flatten(1).mean(1)
            for o, e in zip(chunk, err.tolist(), strict=True):
                tried[round(o, 6)] = e

    score(_candidates(-180.0, 180.0, coarse_step_deg))
    best = min(tried, key=tried.get)
    fine = [
        best + d
        for d in _candidates(-coarse_step_deg, coarse_step_deg + fine_step_deg, fine_step_deg)
        if round(best + d, 6) not in tried
    ]
    score(fine)
    best = min(tried, key=tried.get)
    wrapped = (best + 180.0) % 360.0 - 180.0
    return Alignment(offset_deg=wrapped, error=tried[best], candidates=sorted(tried.items()))


__all__ = ["Alignment", "rotate_about_y", "search_azimuth_offset"]
