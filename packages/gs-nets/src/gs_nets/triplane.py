"""Triplanes and their bilinear feature lookup.

A triplane is ``planes [..., 3, C, R, R]`` holding the planes ``xy``, ``yz``, ``zx`` (the names
Compress3D uses) in that order. Plane ``p`` spans the coordinate pair ``TRIPLANE_AXES[p] = (u, v)``
with ``u`` along the width (last dim) and ``v`` along the height, exactly as
:func:`torch.nn.functional.grid_sample` reads a 2D grid; points live in ``[-1, 1]^3``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gs_core.errors import ValidationError

# (u, v) coordinate indices of the planes xy, yz, zx; u -> width, v -> height.
TRIPLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (2, 0))


def _check_planes(planes: torch.Tensor) -> None:
    if planes.ndim < 4 or planes.shape[-4] != 3:
        raise ValidationError("planes", "shape [..., 3, C, H, W]", f"shape {tuple(planes.shape)}")


def sample_triplane(
    planes: torch.Tensor,
    xyz: torch.Tensor,
    align_corners: bool = False,
    padding_mode: str = "border",
) -> torch.Tensor:
    """Bilinearly sample each plane at the projected points and concatenate the features.

    Args:
        planes: ``[..., 3, C, H, W]`` planes ``xy, yz, zx`` (see :data:`TRIPLANE_AXES`).
        xyz: ``[..., N, 3]`` points in ``[-1, 1]^3`` (same leading dims as ``planes``).
        align_corners, padding_mode: as in :func:`torch.nn.functional.grid_sample`; with the
            default ``align_corners=False`` the value -1 / +1 is the outer edge of the border
            texels (EG3D / AGG convention).

    Returns:
        ``[..., N, 3 * C]`` features, plane ``xy`` first (AGG Sec. 3.2: "concatenates
        interpolated features").
    """
    _check_planes(planes)
    lead = planes.shape[:-4]
    if xyz.shape[-1] != 3 or tuple(xyz.shape[:-2]) != tuple(lead):
        raise ValidationError(
            "xyz",
            f"shape [{', '.join(map(str, lead)) + ', ' if lead else ''}N, 3]",
            f"shape {tuple(xyz.shape)}",
        )
    c, h, w = planes.shape[-3:]
    n = xyz.shape[-2]
    b = math.prod(lead)
    # plain indexing, no index tensor: a host-to-device copy would break CUDA graph capture
    grids = torch.stack(
        [torch.stack([xyz[..., i], xyz[..., j]], dim=-1) for i, j in TRIPLANE_AXES], dim=-3
    )  # [..., 3, N, 2]
    grids = grids.reshape(b * 3, 1, n, 2).to(planes.dtype)
    out = F.grid_sample(
        planes.reshape(b * 3, c, h, w),
        grids,
        mode="bilinear",
        padding_mode=padding_mode,
        align_corners=align_corners,
    )  # [B*3, C, 1, N]
    out = out.reshape(b, 3, c, n).permute(0, 3, 1, 2).reshape(*lead, n, 3 * c)
    return out


__all__ = ["TRIPLANE_AXES", "sample_triplane"]
