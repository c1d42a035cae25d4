"""Set abstraction and feature propagation levels (PointNet++), as used inside PVCNN++ UNets.

* :class:`SetAbstraction`: farthest point sampling picks ``N // stride`` centres, each groups
  its ``k`` nearest points (relative coordinates + features), a shared MLP runs per neighbour
  and a max over the neighbourhood pools it (PVCNN ``PointNetSAModule``; kNN grouping instead of
  ball query, optionally limited to a radius).
* :class:`FeaturePropagation`: features of the coarse set are interpolated onto the fine set
  (inverse squared distance over 3 neighbours), concatenated with the fine set's skip features
  and passed through a shared MLP (PVCNN ``PointNetFPModule``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_core.points import farthest_point_sample, gather_points, group_points, knn
from gs_nets.interpolation import interpolate_features
from gs_nets.pvconv import SharedMLP


class SetAbstraction(nn.Module):
    """``forward(feats [B, N, C] | None, xyz [B, N, 3])`` -> ``(feats [B, M, C'], centers [B, M, 3])``.

    ``M = max(1, N // stride)``; ``C' = mlp_channels[-1]``. With ``radius`` set, neighbours
    farther than it are replaced by the nearest one (ball-query semantics: the max-pool then
    ignores them).
    """

    def __init__(
        self,
        in_channels: int,
        mlp_channels: Sequence[int],
        stride: int = 4,
        k: int = 32,
        radius: float | None = None,
    ):
        super().__init__()
        if stride < 1 or k < 1:
            raise ValidationError(
                "SetAbstraction", "stride >= 1 and k >= 1", f"stride={stride}, k={k}"
            )
        self.in_channels = in_channels
        self.stride = stride
        self.k = k
        self.radius = radius
        self.mlp = SharedMLP(in_channels + 3, mlp_channels)
        self.out_channels = self.mlp.out_channels

    def num_centers(self, n: int) -> int:
        return max(1, n // self.stride)

    def sample(self, xyz: torch.Tensor) -> torch.Tensor:
        """The centres' indices ``[B, N // stride]`` (farthest point sampling from index 0)."""
        return farthest_point_sample(xyz, self.num_centers(xyz.shape[1]))

    def forward(
        self,
        feats: torch.Tensor | None,
        xyz: torch.Tensor,
        centers_idx: torch.Tensor | None = None,
        neighbors: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``centers_idx [B, M]``: the centres' indices when already known (skips the FPS);
        ``neighbors``: their ``(dist2, idx)`` of ``knn(centers, xyz, k)`` when already known."""
        n = xyz.shape[1]
        if (feats is None) != (self.in_channels == 0) or (
            feats is not None and feats.shape[-1] != self.in_channels
        ):
            got = "None" if feats is None else f"shape {tuple(feats.shape)}"
            raise ValidationError(
                "SetAbstraction feats", f"[B, N, {self.in_channels}] (None iff 0 channels)", got
            )
        m = self.num_centers(n)
        if centers_idx is None:
            centers_idx = self.sample(xyz)
        elif centers_idx.shape != (xyz.shape[0], m):
            raise ValidationError(
                "centers_idx", f"shape [B, N // stride] = {(xyz.shape[0], m)}",
                f"shape {tuple(centers_idx.shape)}",
            )  # fmt: skip
        centers = gather_points(xyz, centers_idx)
        dist2, idx = knn(centers, xyz, min(self.k, n)) if neighbors is None else neighbors
        if self.radius is not None:
            idx = torch.where(dist2 > self.radius**2, idx[..., :1], idx)
        grouped = group_points(feats, xyz, centers, idx)  # [B, M, k, 3 + C]
        return self.mlp(grouped).amax(dim=2), centers


class FeaturePropagation(nn.Module):
    """``forward(xyz [B, N, 3], centers [B, M, 3], center_feats [B, M, C], skip [B, N, S] | None)``
    -> ``[B, N, mlp_channels[-1]]``."""

    def __init__(self, in_channels: int, skip_channels: int, mlp_channels: Sequence[int]):
        super().__init__()
        self.skip_channels = skip_channels
        self.mlp = SharedMLP(in_channels + skip_channels, mlp_channels)
        self.out_channels = self.mlp.out_channels

    def forward(
        self,
        xyz: torch.Tensor,
        centers: torch.Tensor,
        center_feats: torch.Tensor,
        skip: torch.Tensor | None = None,
        neighbors: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = interpolate_features(xyz, centers, center_feats, neighbors=neighbors)
        if skip is not None:
            x = torch.cat([x, skip.to(x.dtype)], dim=-1)
        elif self.skip_channels:
            raise ValidationError(
                "FeaturePropagation skip", f"[B, N, {self.skip_channels}] skip features", "None"
            )
        return self.mlp(x)


__all__ = ["FeaturePropagation", "SetAbstraction"]
