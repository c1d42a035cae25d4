"""Point-voxel convolution (PVCNN, Liu et al. NeurIPS 2019; mit-han-lab/pvcnn ``modules/pvconv.py``).

``PVConv`` = voxel branch (voxelise -> [Conv3d(k), BatchNorm3d(eps 1e-4), LeakyReLU(0.1)] x 2
-> optional squeeze-excitation -> trilinear devoxelise) + point branch (shared MLP), summed.
Points are ``[B, N, C]`` features with ``[B, N, 3]`` coordinates throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gs_nets.voxelization import Voxelization, trilinear_devoxelize


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last (channel) dim of a ``[..., C]`` tensor of any rank."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(shape)


class SharedMLP(nn.Sequential):
    """Per-point ``[Linear, BatchNorm, ReLU]`` layers (PVCNN's ``SharedMLP``, Conv1d k=1).

    ``[..., Cin]`` -> ``[..., out_channels[-1]]``.
    """

    def __init__(self, in_channels: int, out_channels: int | Sequence[int]):
        widths = [out_channels] if isinstance(out_channels, int) else list(out_channels)
        layers: list[nn.Module] = []
        for oc in widths:
            layers += [nn.Linear(in_channels, oc), ChannelBatchNorm(oc), nn.ReLU(inplace=True)]
            in_channels = oc
        super().__init__(*layers)
        self.out_channels = in_channels


class SE3d(nn.Module):
    """Squeeze-excitation on a voxel grid (PVCNN ``modules/se.py``, reduction 8)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, grid: torch.Tensor) -> torch.Tensor:  # [B, C, r, r, r]
        w = self.fc(grid.mean(dim=(2, 3, 4)))
        return grid * w[:, :, None, None, None]


class PVConv(nn.Module):
    """Point-voxel convolution.

    ``forward(feats [B, N, Cin], xyz [B, N, 3])`` -> ``[B, N, Cout]``. Permutation-equivariant in
    ``N`` (voxel averages and trilinear lookups do not depend on the point order).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resolution: int,
        kernel_size: int = 3,
        with_se: bool = False,
        normalize: bool = True,
        eps: float = 0.0,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.voxelization = Voxelization(resolution, normalize=normalize, eps=eps)
        pad = kernel_size // 2
        layers: list[nn.Module] = [
            nn.Conv3d(in_channels, out_channels, kernel_size, padding=pad),
            nn.BatchNorm3d(out_channels, eps=1e-4),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv3d(out_channels, out_channels, kernel_size, padding=pad),
            nn.BatchNorm3d(out_channels, eps=1e-4),
            nn.LeakyReLU(0.1, inplace=True),
        ]
        if with_se:
            layers.append(SE3d(out_channels))
        self.voxel_layers = nn.Sequential(*layers)
        self.point_features = SharedMLP(in_channels, out_channels)

    def forward(self, feats: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        grid, coords = self.voxelization(feats, xyz)
        voxel = trilinear_devoxelize(self.voxel_layers(grid), coords)
        point = self.point_features(feats)
        return voxel.to(point.dtype) + point


__all__ = ["ChannelBatchNorm", "PVConv", "SE3d", "SharedMLP"]
