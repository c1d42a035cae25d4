"""Normalised trilinear splatting of point features into a feature volume (Compress3D Eq. 1-2).

Each point spreads its feature over the 8 grid vertices of the cell it falls in with trilinear
weights ``w_i = (1 - |dx|)(1 - |dy|)(1 - |dz|)`` (distances in cell units, Eq. 1); every vertex
is then divided by the sum of the weights it received (Eq. 2), so a dense and a sparse region
with the same features give the same volume. Vertices no point reached stay zero.

Layout: ``volume [B, C, r, r, r]`` indexed ``[z, y, x]`` (depth = z, height = y, width = x, as
:func:`torch.nn.functional.grid_sample` reads a volume); vertex ``k`` of an axis sits at
``-1 + 2k / (r - 1)`` (the corners of ``[-1, 1]^3`` are grid vertices).
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError

_EPS = 1e-8


def splat_trilinear(
    xyz: torch.Tensor, feats: torch.Tensor, resolution: int, normalize: bool = True
) -> torch.Tensor:
    """Splat point features into a volume.

    Args:
        xyz: ``[B, N, 3]`` points in ``[-1, 1]^3`` (clamped to it).
        feats: ``[B, N, C]`` point features.
        resolution: ``r``, vertices per axis (at least 2).
        normalize: divide by the accumulated weights (Eq. 2); ``False`` returns Eq. 1's sums.

    Returns:
        ``[B, C, r, r, r]`` volume indexed ``[z, y, x]``.
    """
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValidationError("xyz", "shape [B, N, 3]", f"shape {tuple(xyz.shape)}")
    if feats.ndim != 3 or feats.shape[:2] != xyz.shape[:2]:
        raise ValidationError(
            "feats", f"shape [{xyz.shape[0]}, {xyz.shape[1]}, C]", f"shape {tuple(feats.shape)}"
        )
    if resolution < 2:
        raise ValidationError("resolution", "at least 2 vertices per axis", str(resolution))
    b, n, c = feats.shape
    r = resolution
    # accumulate in fp32 whatever the autocast dtype: thousands of points may share a vertex
    feats = feats.float()
    g = (xyz.clamp(-1.0, 1.0) + 1.0) * (0.5 * (r - 1))  # continuous vertex coordinates
    base = g.floor().clamp(0, r - 2)
    frac = g - base  # in [0, 1]
    base = base.long()
    sums = feats.new_zeros(b, r * r * r, c)
    weights = feats.new_zeros(b, r * r * r, 1)
    for corner in range(8):
        offset = torch.tensor(
            [(corner >> 0) & 1, (corner >> 1) & 1, (corner >> 2) & 1], device=xyz.device
        )
        w = torch.where(offset.bool(), frac, 1.0 - frac).prod(-1, keepdim=True).to(feats.dtype)
        idx = base + offset  # [B, N, 3] as (x, y, z)
        flat = (idx[..., 2] * r + idx[..., 1]) * r + idx[..., 0]  # [B, N]
        sums.scatter_add_(1, flat[..., None].expand(b, n, c), w * feats)
        weights.scatter_add_(1, flat[..., None], w)
    if normalize:
        sums = sums / weights.clamp_min(_EPS)
    return sums.transpose(1, 2).reshape(b, c, r, r, r)


__all__ = ["splat_trilinear"]
