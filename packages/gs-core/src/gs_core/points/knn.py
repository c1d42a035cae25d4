"""Nearest-neighbour searches with bounded memory: ``k`` nearest, and nearest in both directions.

The ``M x N`` distance matrix is never held whole, only blocks of query rows of at most
``max_bytes`` (256 MiB by default) from :func:`~gs_core.points.distance.square_distance_blocks`;
the result is ``O(B * M * k)``. The search runs without autograd; what the searches return as
distances is recomputed from the inputs, so gradients are exact and the backward pass costs
memory linear in the points.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.points.distance import (
    DEFAULT_MAX_BYTES,
    block_rows,
    check_point_pair,
    square_distance_blocks,
)
from gs_core.points.gather import gather_points


def knn(
    query: torch.Tensor,
    ref: torch.Tensor,
    k: int,
    chunk_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest points of ``ref`` to every point of ``query``, nearest first.

    Args:
        query: ``[B, M, D]`` (``D = 3`` for point clouds).
        ref: ``[B, N, D]``; when it is the same cloud as ``query`` each point is its own
            first neighbour.
        k: neighbours per query, ``k <= N``.
        chunk_size: query rows per block; default from ``max_bytes``.
        max_bytes: bound on one block of float32 distances ``[B, chunk, N]``.

    Returns:
        ``dist2 [B, M, k]`` squared distances (ascending) and ``idx [B, M, k]`` int64 indices.
        Gradients flow to ``query`` / ``ref`` through ``dist2`` only.
    """
    check_point_pair(query, ref, ("query", "ref"))
    b, m, _ = query.shape
    n = ref.shape[1]
    if not 0 < k <= n:
        raise ValidationError("k", f"an int in [1, N={n}]", str(k))
    rows = chunk_size or block_rows(b, n, max_bytes)
    parts = [
        d.topk(k, dim=-1, largest=False, sorted=False).indices
        for _, d in square_distance_blocks(query, ref, rows)
    ]
    idx = torch.cat(parts, dim=1) if parts else query.new_zeros(b, 0, k, dtype=torch.long)
    # exact distances for the chosen neighbours, then sort them
    dist2 = (gather_points(ref, idx) - query.unsqueeze(2)).square().sum(-1)
    dist2, order = dist2.sort(dim=-1)
    return dist2, idx.gather(-1, order)


@torch.no_grad()
def nearest_neighbors(
    a: torch.Tensor, b: torch.Tensor, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest neighbours (squared Euclidean) in both directions, from one pass over the blocks.

    Row minima of each block give ``a -> b``; running column minima give ``b -> a``, so the
    Chamfer distance needs one distance computation, not two. Ties go to the lower index.

    Args:
        a: ``[B, N, D]`` points; b: ``[B, M, D]`` points.
        max_bytes: bound on one block of float32 distances ``[B, chunk, M]``.

    Returns:
        ``idx_ab [B, N]`` (for each point of ``a``, its nearest point in ``b``) and
        ``idx_ba [B, M]`` (for each point of ``b``, its nearest point in ``a``), int64.
    """
    check_point_pair(a, b, ("a", "b"))
    for name, t in (("a", a), ("b", b)):
        if t.shape[1] == 0:
            raise ValidationError(name, "at least one point", f"shape {tuple(t.shape)}")
    bsz, n, _ = a.shape
    m = b.shape[1]
    # Centring on a common point shrinks |x|^2 and with it the cancellation error of the
    # |a|^2 + |b|^2 - 2 a.b expansion; two sets far from the origin (a scene's objects) need it.
    centre = b.mean(dim=1, keepdim=True)
    a = a - centre
    b = b - centre
    idx_ab = torch.empty(bsz, n, dtype=torch.long, device=a.device)
    best_ba = torch.full((bsz, m), float("inf"), device=a.device)
    idx_ba = torch.zeros(bsz, m, dtype=torch.long, device=a.device)
    for start, d in square_distance_blocks(a, b, block_rows(bsz, m, max_bytes)):
        idx_ab[:, start : start + d.shape[1]] = d.argmin(dim=2)
        col_val, col_idx = d.min(dim=1)
        better = col_val < best_ba
        best_ba = torch.where(better, col_val, best_ba)
        idx_ba = torch.where(better, col_idx + start, idx_ba)
    return idx_ab, idx_ba


__all__ = ["knn", "nearest_neighbors"]
