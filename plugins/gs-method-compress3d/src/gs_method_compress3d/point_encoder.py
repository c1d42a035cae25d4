"""PointNet with position embedding and local max pooling (Compress3D Sec. 3.1).

The paper names the ingredients and no sizes. The local pooling follows Convolutional Occupancy
Networks' local-pool PointNet (Peng et al. 2020): after each residual block the features are
max-pooled over the points sharing a cell of a coarse grid and the pooled feature is
concatenated back to every point of the cell, so each point sees its neighbourhood without a
kNN search. The position embedding is NeRF's sinusoidal embedding of xyz.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError


def position_embedding(xyz: torch.Tensor, frequencies: int) -> torch.Tensor:
    """``xyz [..., 3]`` -> ``[..., 3 + 6 * frequencies]`` = ``[xyz, sin(2^k pi xyz), cos(...)]``."""
    if frequencies == 0:
        return xyz
    freqs = (2.0 ** torch.arange(frequencies, device=xyz.device, dtype=xyz.dtype)) * math.pi
    args = (xyz[..., None, :] * freqs[:, None]).flatten(-2)
    return torch.cat([xyz, torch.sin(args), torch.cos(args)], dim=-1)


def cell_index(xyz: torch.Tensor, resolution: int) -> torch.Tensor:
    """``xyz [B, N, 3]`` in ``[-1, 1]^3`` -> flat cell index ``[B, N]`` of a ``resolution^3`` grid."""
    cell = ((xyz.clamp(-1.0, 1.0) + 1.0) * (0.5 * resolution)).long().clamp(0, resolution - 1)
    return (cell[..., 2] * resolution + cell[..., 1]) * resolution + cell[..., 0]


def local_max_pool(feats: torch.Tensor, cells: torch.Tensor, num_cells: int) -> torch.Tensor:
    """Max of ``feats [B, N, C]`` over the points of each cell, gathered back to ``[B, N, C]``."""
    b, n, c = feats.shape
    idx = cells[..., None].expand(b, n, c)
    pooled = feats.new_full((b, num_cells, c), float("-inf"))
    pooled = pooled.scatter_reduce(1, idx, feats, reduce="amax", include_self=True)
    return pooled.gather(1, idx)


class _ResBlockFC(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc0 = nn.Linear(in_dim, out_dim)
        self.fc1 = nn.Linear(out_dim, out_dim)
        self.skip = nn.Linear(in_dim, out_dim, bias=False) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.fc1(F.relu(self.fc0(F.relu(x))))


class LocalPoolPointNet(nn.Module):
    """``forward(xyz [B, N, 3] in [-1, 1], rgb [B, N, 3]) -> point features [B, N, out_dim]``."""

    def __init__(
        self,
        out_dim: int,
        hidden: int = 32,
        blocks: int = 3,
        frequencies: int = 6,
        pool_resolution: int = 32,
    ):
        super().__init__()
        self.frequencies = frequencies
        self.pool_resolution = pool_resolution
        in_dim = 3 + 6 * frequencies + 3
        self.fc_in = nn.Linear(in_dim, 2 * hidden)
        self.blocks = nn.ModuleList(_ResBlockFC(2 * hidden, hidden) for _ in range(blocks))
        self.fc_out = nn.Linear(hidden, out_dim)

    def forward(self, xyz: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        if xyz.ndim != 3 or xyz.shape[-1] != 3 or rgb.shape != xyz.shape:
            raise ValidationError(
                "points",
                "xyz and rgb of shape [B, N, 3]",
                f"{tuple(xyz.shape)}, {tuple(rgb.shape)}",
            )
        x = torch.cat([position_embedding(xyz, self.frequencies), rgb], dim=-1)
        h = self.fc_in(x)
        cells = cell_index(xyz, self.pool_resolution)
        cells_n = self.pool_resolution**3
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i < len(self.blocks) - 1:
                h = torch.cat([h, local_max_pool(h, cells, cells_n)], dim=-1)
        return self.fc_out(h)


__all__ = ["LocalPoolPointNet", "cell_index", "local_max_pool", "position_embedding"]
