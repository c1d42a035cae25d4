"""Point Transformer v1 (Zhao et al., ICCV 2021): vector self-attention over kNN neighbourhoods.

For point ``i`` with neighbours ``j`` in its ``k``-NN set (itself included)::

    delta_ij = theta(p_i - p_j)                                   (relative-position MLP)
    w_ij     = softmax_j( gamma(phi(x_i) - psi(x_j) + delta_ij) )  (per channel group)
    y_i      = sum_j w_ij * (alpha(x_j) + delta_ij)

``gamma`` outputs ``C / share_planes`` weights, each shared by ``share_planes`` channels
(paper Sec. 3.2 / Pointcept ``PointTransformerLayer``). DD3G's Progressive Decoding stacks these
blocks over its output tokens with 3D positions (DD3G Sec. 3, "Progressive Decoding").

Memory is ``O(B * N * k * C)``: only the neighbourhoods are materialised (kNN itself is chunked,
see :func:`gs_core.points.knn`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_core.points import gather_points, knn
from gs_nets.pvconv import ChannelBatchNorm

NormKind = Literal["batch", "layer"]


def _norm(kind: NormKind, dim: int) -> nn.Module:
    if kind == "batch":
        return ChannelBatchNorm(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    raise ValidationError("norm", "'batch' or 'layer'", repr(kind))


def _check_tokens(x: torch.Tensor, pos: torch.Tensor, dim: int) -> None:
    if x.ndim != 3 or x.shape[-1] != dim:
        raise ValidationError("x", f"shape [B, N, {dim}]", f"shape {tuple(x.shape)}")
    if pos.shape != (*x.shape[:2], 3):
        raise ValidationError(
            "pos", f"shape [B, N, 3] = {(*x.shape[:2], 3)}", f"shape {tuple(pos.shape)}"
        )


class PointTransformerLayer(nn.Module):
    """Vector attention layer. ``forward(x [B, N, C], pos [B, N, 3], idx [B, N, k] | None)``
    -> ``[B, N, out_dim]``; ``idx`` are precomputed neighbour indices (kNN of ``pos`` if None)."""

    def __init__(
        self,
        dim: int,
        out_dim: int | None = None,
        share_planes: int = 8,
        k: int = 16,
        norm: NormKind = "batch",
    ):
        super().__init__()
        out_dim = out_dim or dim
        if out_dim % share_planes:
            raise ValidationError(
                "share_planes", f"a divisor of out_dim={out_dim}", str(share_planes)
            )
        self.dim, self.out_dim, self.share_planes, self.k = dim, out_dim, share_planes, k
        self.to_q = nn.Linear(dim, out_dim)
        self.to_k = nn.Linear(dim, out_dim)
        self.to_v = nn.Linear(dim, out_dim)
        self.pos_mlp = nn.Sequential(
            nn.Linear(3, 3), _norm(norm, 3), nn.ReLU(inplace=True), nn.Linear(3, out_dim)
        )
        g = out_dim // share_planes
        self.weight_mlp = nn.Sequential(
            _norm(norm, out_dim),
            nn.ReLU(inplace=True),
            nn.Linear(out_dim, g),
            _norm(norm, g),
            nn.ReLU(inplace=True),
            nn.Linear(g, g),
        )

    def neighbors(self, pos: torch.Tensor) -> torch.Tensor:
        """``[B, N, k]`` indices of each token's ``k`` nearest tokens (itself first)."""
        return knn(pos, pos, min(self.k, pos.shape[1]))[1]

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_tokens(x, pos, self.dim)
        if idx is None:
            idx = self.neighbors(pos)
        b, n, k = idx.shape
        q = self.to_q(x)
        key = gather_points(self.to_k(x), idx)  # [B, N, k, C]
        val = gather_points(self.to_v(x), idx)
        rel = pos.unsqueeze(2) - gather_points(pos, idx)  # p_i - p_j
        delta = self.pos_mlp(rel.to(q.dtype))
        w = self.weight_mlp(q.unsqueeze(2) - key + delta)  # [B, N, k, C / s]
        w = F.softmax(w.float(), dim=2).to(val.dtype)
        s = self.share_planes
        out = ((val + delta).view(b, n, k, s, -1) * w.unsqueeze(3)).sum(dim=2)
        return out.reshape(b, n, self.out_dim)


class PointTransformerBlock(nn.Module):
    """Point Transformer v1 residual block (Pointcept ``Bottleneck``).

    ``linear -> norm -> ReLU -> PointTransformerLayer -> norm -> ReLU -> linear -> norm``, added
    to the input, then ReLU. ``forward(x [B, N, C], pos [B, N, 3], idx | None)`` -> ``[B, N, C]``.
    Permutation-equivariant in ``N``.
    """

    def __init__(self, dim: int, share_planes: int = 8, k: int = 16, norm: NormKind = "batch"):
        super().__init__()
        self.dim = dim
        self.linear1 = nn.Linear(dim, dim, bias=False)
        self.norm1 = _norm(norm, dim)
        self.attn = PointTransformerLayer(dim, dim, share_planes, k, norm)
        self.norm2 = _norm(norm, dim)
        self.linear3 = nn.Linear(dim, dim, bias=False)
        self.norm3 = _norm(norm, dim)

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = F.relu(self.norm1(self.linear1(x)))
        h = F.relu(self.norm2(self.attn(h, pos, idx)))
        h = self.norm3(self.linear3(h))
        return F.relu(h + x)


class PointTransformerStack(nn.Module):
    """``depth`` :class:`PointTransformerBlock` sharing one kNN graph of the (fixed) positions.

    ``forward(x, pos)`` -> list of the ``depth`` block outputs, each ``[B, N, C]``, so that heads
    can read several levels (DD3G decodes each attribute from a weighted sum of adjacent blocks).
    """

    def __init__(
        self, dim: int, depth: int, share_planes: int = 8, k: int = 16, norm: NormKind = "batch"
    ):
        super().__init__()
        self.k = k
        self.blocks = nn.ModuleList(
            PointTransformerBlock(dim, share_planes, k, norm) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> list[torch.Tensor]:
        idx = knn(pos, pos, min(self.k, pos.shape[1]))[1]
        outs = []
        for blk in self.blocks:
            x = blk(x, pos, idx)
            outs.append(x)
        return outs


__all__ = ["PointTransformerBlock", "PointTransformerLayer", "PointTransformerStack"]
