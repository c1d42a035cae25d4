"""Inverse-distance interpolation from a coarse point set to a fine one (PointNet++ / PVCNN FP).

PVCNN's ``three_nearest_neighbors_interpolate`` weights the three nearest coarse points by the
inverse of their squared distance (clamped at 1e-10) and normalises the weights to sum to one.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.points import gather_points, knn


def interpolate_features(
    query_xyz: torch.Tensor,
    ref_xyz: torch.Tensor,
    ref_feats: torch.Tensor,
    k: int = 3,
    eps: float = 1e-10,
    neighbors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``query_xyz [B, M, 3]``, ``ref_xyz [B, N, 3]``, ``ref_feats [B, N, C]`` -> ``[B, M, C]``.

    Weights ``w_j = 1 / max(|q - p_j|^2, eps)`` over the ``k`` nearest reference points,
    normalised per query. Gradients flow to ``ref_feats`` (not to the coordinates, as in PVCNN).
    ``neighbors``: ``(dist2 [B, M, k], idx [B, M, k])`` of :func:`~gs_core.points.knn` when already
    known.
    """
    if ref_feats.ndim != 3 or ref_feats.shape[:2] != ref_xyz.shape[:2]:
        raise ValidationError(
            "ref_feats",
            f"shape [B, N, C] with [B, N] = {tuple(ref_xyz.shape[:2])}",
            f"shape {tuple(ref_feats.shape)}",
        )
    if neighbors is None:
        dist2, idx = knn(query_xyz, ref_xyz, min(k, ref_xyz.shape[1]))
    else:
        dist2, idx = neighbors
    w = 1.0 / dist2.detach().float().clamp_min(eps)
    w = (w / w.sum(-1, keepdim=True)).to(ref_feats.dtype)
    return (gather_points(ref_feats, idx) * w.unsqueeze(-1)).sum(-2)


__all__ = ["interpolate_features"]
