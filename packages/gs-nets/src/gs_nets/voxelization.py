"""PVCNN voxelisation (average per voxel) and trilinear devoxelisation, in pure PyTorch.

Follows mit-han-lab/pvcnn ``modules/voxelization.py`` and ``modules/functional``:

* coordinates are centred on their mean; with ``normalize=True`` they are divided by twice the
  largest distance to the centre (plus ``eps``) and shifted by 0.5 so the bounding sphere fits
  ``[0, 1]^3``; otherwise ``[-1, 1]`` is mapped to ``[0, 1]`` by ``(x + 1) / 2``;
* scaled by the resolution ``r`` and clamped to ``[0, r - 1]``: these continuous coordinates are
  kept for devoxelisation; rounding them gives each point's voxel;
* a voxel's feature is the mean of its points' features (0 where empty);
* devoxelisation trilinearly interpolates the 8 voxels around the continuous coordinate.

Grids are ``[B, C, r, r, r]`` indexed ``[x, y, z]`` like PVCNN's ``x * r^2 + y * r + z``. The
CUDA ops are replaced by ``index_add`` (scatter) and a gather of the 8 corners.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_core.points import gather_points


def _check_points(feats: torch.Tensor | None, xyz: torch.Tensor) -> None:
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValidationError("xyz", "shape [B, N, 3]", f"shape {tuple(xyz.shape)}")
    if feats is not None and (feats.ndim != 3 or feats.shape[:2] != xyz.shape[:2]):
        raise ValidationError(
            "feats",
            f"shape [B, N, C] with [B, N] = {tuple(xyz.shape[:2])}",
            f"shape {tuple(feats.shape)}",
        )


def _check_resolution(resolution: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValidationError("resolution", "an int >= 2", repr(resolution))


def normalize_voxel_coords(
    xyz: torch.Tensor, resolution: int, normalize: bool = True, eps: float = 0.0
) -> torch.Tensor:
    """Continuous voxel coordinates in ``[0, r - 1]`` (PVCNN's ``Voxelization``), no gradient.

    ``xyz [B, N, 3]`` -> ``[B, N, 3]`` float32.
    """
    _check_points(None, xyz)
    _check_resolution(resolution)
    with torch.no_grad():
        p = xyz.detach().float()
        p = p - p.mean(dim=1, keepdim=True)
        if normalize:
            radius = p.norm(dim=-1, keepdim=True).amax(dim=1, keepdim=True)
            # coincident points (a collapsed prediction) have radius 0: centre them, not 0/0
            radius = radius.clamp_min(torch.finfo(p.dtype).tiny)
            p = p / (radius * 2.0 + eps) + 0.5
        else:
            p = (p + 1.0) / 2.0
        return (p * resolution).clamp(0, resolution - 1)


def avg_voxelize(feats: torch.Tensor, voxel_idx: torch.Tensor, resolution: int) -> torch.Tensor:
    """Average the features of the points falling in each voxel.

    Args:
        feats: ``[B, N, C]``.
        voxel_idx: ``[B, N, 3]`` integer voxel coordinates in ``[0, r - 1]``.

    Returns:
        ``[B, C, r, r, r]`` indexed ``[x, y, z]``; empty voxels are 0. Accumulated in float32,
        returned in ``feats.dtype``.
    """
    _check_points(feats, voxel_idx)
    _check_resolution(resolution)
    b, n, c = feats.shape
    r = resolution
    vi = voxel_idx.long()
    flat = (vi[..., 0] * r + vi[..., 1]) * r + vi[..., 2]
    flat = (flat + torch.arange(b, device=flat.device).unsqueeze(1) * r**3).reshape(-1)
    src = feats.reshape(b * n, c).float()
    sums = src.new_zeros(b * r**3, c).index_add(0, flat, src)
    counts = src.new_zeros(b * r**3).index_add(0, flat, src.new_ones(b * n))
    grid = sums / counts.clamp_min(1.0).unsqueeze(-1)
    return grid.view(b, r, r, r, c).permute(0, 4, 1, 2, 3).to(feats.dtype)


def trilinear_devoxelize(grid: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Trilinearly interpolate ``grid [B, C, r, r, r]`` at ``coords [B, N, 3]`` in ``[0, r-1]``.

    Voxel centres sit at integer coordinates; coordinates outside are clamped to the border.
    Returns ``[B, N, C]`` in ``grid.dtype``.
    """
    if grid.ndim != 5 or not (grid.shape[2] == grid.shape[3] == grid.shape[4]):
        raise ValidationError("grid", "shape [B, C, r, r, r]", f"shape {tuple(grid.shape)}")
    _check_points(None, coords)
    b, c, r = grid.shape[0], grid.shape[1], grid.shape[2]
    _check_resolution(r)
    with torch.no_grad():
        # float32 weights: in bf16 a coordinate near 31 would be off by up to 1/8 of a voxel
        p = coords.detach().float().clamp(0, r - 1)
        lo = p.floor().clamp_(max=r - 2)
        t = (p - lo).unsqueeze(2)  # [B, N, 1, 3]
        corner = torch.arange(8, device=grid.device)
        corner = torch.stack([corner // 4, (corner // 2) % 2, corner % 2], dim=-1)  # [8, 3]
        ijk = lo.long().unsqueeze(2) + corner  # [B, N, 8, 3]
        flat = (ijk[..., 0] * r + ijk[..., 1]) * r + ijk[..., 2]  # [B, N, 8]
        w = torch.where(corner.bool(), t, 1 - t).prod(-1)  # [B, N, 8]
    # Channels-last rows gathered for all 8 corners at once: one parallel gather over every
    # (point, corner, channel), where grid_sample runs one thread per point over all channels.
    rows = grid.permute(0, 2, 3, 4, 1).reshape(b, r**3, c)
    vals = gather_points(rows, flat)  # [B, N, 8, C]
    return (vals * w.unsqueeze(-1)).sum(2).to(grid.dtype)


class Voxelization(nn.Module):
    """``forward(feats [B, N, C], xyz [B, N, 3])`` -> ``(grid [B, C, r, r, r], coords [B, N, 3])``.

    ``coords`` are the continuous voxel coordinates to pass to :func:`trilinear_devoxelize`.
    """

    def __init__(self, resolution: int, normalize: bool = True, eps: float = 0.0):
        super().__init__()
        _check_resolution(resolution)
        self.resolution = resolution
        self.normalize = normalize
        self.eps = eps

    def forward(self, feats: torch.Tensor, xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_points(feats, xyz)
        coords = normalize_voxel_coords(xyz, self.resolution, self.normalize, self.eps)
        grid = avg_voxelize(feats, torch.round(coords).long(), self.resolution)
        return grid, coords

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, normalize={self.normalize}, eps={self.eps}"


__all__ = ["Voxelization", "avg_voxelize", "normalize_voxel_coords", "trilinear_devoxelize"]
