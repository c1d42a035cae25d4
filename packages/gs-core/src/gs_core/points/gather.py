"""Batched gathers of per-point rows: the neighbourhood tensors of point networks.

One flat ``index_select`` serves every index shape, so no ``[B, *S, C]`` index tensor is
materialised (``torch.gather`` would need one) and gradients flow to the gathered values.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError


def gather_points(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of each cloud at integer indices: ``x [B, N, C]``, ``idx [B, *S]`` -> ``[B, *S, C]``."""
    if x.ndim != 3 or idx.ndim < 1 or idx.shape[0] != x.shape[0]:
        raise ValidationError(
            "gather_points", "x [B, N, C] and idx [B, ...]", f"{tuple(x.shape)}, {tuple(idx.shape)}"
        )
    b, n, c = x.shape
    offset = (torch.arange(b, device=idx.device) * n).view(b, *([1] * (idx.ndim - 1)))
    flat = (idx.long() + offset).reshape(-1)
    return x.reshape(b * n, c).index_select(0, flat).reshape(*idx.shape, c)


def group_points(
    feats: torch.Tensor | None, xyz: torch.Tensor, centers: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """Neighbourhoods for set abstraction: coordinates relative to their centre, then features.

    ``feats [B, N, C] | None``, ``xyz [B, N, 3]``, ``centers [B, M, 3]``, ``idx [B, M, k]``
    -> ``[B, M, k, 3 + C]`` = ``[xyz_j - center_i, feats_j]`` (``[B, M, k, 3]`` without feats).
    """
    rel = gather_points(xyz, idx) - centers.unsqueeze(2)
    if feats is None:
        return rel
    return torch.cat([rel, gather_points(feats, idx)], dim=-1)


__all__ = ["gather_points", "group_points"]
