"""Ball query (PointNet++, Qi et al. 2017): each centre's neighbours within a radius."""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.points.distance import (
    DEFAULT_MAX_BYTES,
    block_rows,
    check_point_pair,
    square_distance_blocks,
)


@torch.no_grad()
def ball_query(
    xyz: torch.Tensor,
    centers: torch.Tensor,
    radius: float,
    k: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> torch.Tensor:
    """Neighbour indices ``[B, S, k]`` of ``centers [B, S, 3]`` among ``xyz [B, N, 3]``.

    PointNet++'s rule (OpenShape's grouping): the ``k`` lowest-index points within ``radius``
    (distance <= radius), in index order; a ball holding fewer repeats its first point. A centre
    taken from ``xyz`` always finds itself. Centres are processed in blocks of at most
    ``max_bytes`` of distances.
    """
    check_point_pair(xyz, centers, ("xyz", "centers"))
    b, n, _ = xyz.shape
    if not 1 <= k <= n:
        raise ValidationError("k", f"between 1 and the number of points ({n})", str(k))
    ar = torch.arange(n, device=xyz.device)
    parts = []
    for _, d in square_distance_blocks(centers, xyz, block_rows(b, n, max_bytes)):
        # out-of-ball points get index n, so the k smallest indices are the ball's first members
        inside = torch.where(d <= radius * radius, ar, n)
        parts.append(inside.topk(k, dim=-1, largest=False, sorted=True).values)
    idx = torch.cat(parts, dim=1) if parts else centers.new_zeros(b, 0, k, dtype=torch.long)
    first = idx[..., :1]
    if (first == n).any():
        raise ValidationError(
            "centers", f"every centre within {radius} of some point", "an empty ball"
        )
    return torch.where(idx == n, first, idx)


__all__ = ["ball_query"]
