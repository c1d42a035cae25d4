"""The six-view adapter between G and LGM: Zero123++'s six cameras, relative to the input view,
Plücker rays, and the views resized to LGM's input size.

The cameras are :func:`gs_priors.zero123plus.zero123plus_cameras` in gs3d's azimuth frame (the
input camera at azimuth 0): azimuths 30, 90, ..., 330, absolute elevations 30 / -20 (v1.1), at
the reconstructor's radius and field of view. LGM normalises its four input poses so that the
first is canonical; none of the six Zero123++ views is the input view, so the Gaussians are
predicted directly in the azimuth frame, where evaluation places its cameras (our choice,
documented in the README).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_nets.splatter_unet import splatter_unet_input
from gs_priors.zero123plus import NUM_VIEWS, zero123plus_cameras


def six_view_cameras(
    version: str, radius: float, fov_deg: float, size: int, device=None
) -> Cameras:
    """The six Zero123++ cameras ``[6]`` (azimuth frame) at ``size x size`` pixels."""
    cams = zero123plus_cameras(version, 0.0, radius=radius, fov_deg=fov_deg, size=size)
    return cams.to(device) if device is not None else cams


def resize_views(views: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, V, 3, h, w]`` -> ``[B, V, 3, size, size]`` (bilinear, antialiased when shrinking)."""
    if views.ndim != 5:
        raise ValidationError("views", "[B, V, 3, h, w]", str(tuple(views.shape)))
    b, v = views.shape[:2]
    if views.shape[-2:] == (size, size):
        return views
    flat = F.interpolate(
        views.flatten(0, 1),
        (size, size),
        mode="bilinear",
        align_corners=False,
        antialias=views.shape[-1] > size,
    )
    return flat.reshape(b, v, *flat.shape[1:])


def adapter_input(views: torch.Tensor, cameras: Cameras, size: int) -> torch.Tensor:
    """LGM's input ``[B, 6, 9, size, size]`` from G's views ``[B, 6, 3, h, w]`` in ``[0, 1]`` and
    the six cameras (batch ``[]`` or ``[B]``, e.g. jittered)."""
    if views.ndim != 5 or views.shape[1] != NUM_VIEWS or views.shape[2] != 3:
        raise ValidationError("views", f"[B, {NUM_VIEWS}, 3, h, w]", str(tuple(views.shape)))
    if (cameras.width, cameras.height) != (size, size):
        cameras = cameras.resized(size, size)
    return splatter_unet_input(resize_views(views, size), cameras.to(views.device))


__all__ = ["adapter_input", "resize_views", "six_view_cameras"]
