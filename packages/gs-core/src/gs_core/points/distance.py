"""Squared Euclidean distances between point sets, whole or in blocks of bounded memory.

Every neighbour search of :mod:`gs_core.points` (kNN, nearest neighbours both ways, ball
query) reads distances from here, so they all rank points by the same numbers. One matmul per
block, ``|q|^2 + |r|^2 - 2 q.r``, in at least float32 whatever the input dtype (bf16
coordinates would reorder neighbours) and outside autocast. Searches recompute the distances
they return from the coordinates; these are for ranking.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from gs_core.errors import ValidationError

# 256 MiB of float32 distances per block: 16k x 16k points take 4 blocks.
DEFAULT_MAX_BYTES = 256 * 2**20


def check_point_pair(query: torch.Tensor, ref: torch.Tensor, names: tuple[str, str]) -> None:
    """Raise unless ``query [B, M, D]`` and ``ref [B, N, D]`` share ``B`` and ``D``."""
    for name, t in zip(names, (query, ref), strict=True):
        if not isinstance(t, torch.Tensor) or t.ndim != 3:
            got = f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValidationError(name, "points [B, N, D]", got)
    if query.shape[0] != ref.shape[0]:
        raise ValidationError(
            names[1], f"batch size {query.shape[0]} (as {names[0]})", str(ref.shape[0])
        )
    if query.shape[-1] != ref.shape[-1]:
        raise ValidationError(
            names[1], f"last dim {query.shape[-1]} (as {names[0]})", f"shape {tuple(ref.shape)}"
        )


def block_rows(batch: int, num_ref: int, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """Query rows per block so that one ``[batch, rows, num_ref]`` float32 block fits ``max_bytes``."""
    return max(1, max_bytes // (4 * batch * max(1, num_ref)))


def _search_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def square_distance_blocks(
    query: torch.Tensor, ref: torch.Tensor, rows: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, d [B, rows, N])`` for consecutive blocks of ``query [B, M, D]`` rows against
    ``ref [B, N, D]``; ``d[:, i, j]`` is the squared distance of query ``start + i`` to ref ``j``
    (no gradient). The last block may be shorter."""
    dtype = _search_dtype(query)
    with torch.no_grad():
        q = query.detach().to(dtype)
        r = ref.detach().to(dtype)
        r_sq = r.square().sum(-1).unsqueeze(1)  # [B, 1, N]
        rt = r.transpose(1, 2)
    for s in range(0, q.shape[1], rows):
        # no context manager may span the yield: the caller's code runs in between
        with torch.no_grad(), torch.autocast(device_type=q.device.type, enabled=False):
            qc = q[:, s : s + rows]
            d = torch.baddbmm(r_sq, qc, rt, alpha=-2.0).add_(qc.square().sum(-1, keepdim=True))
        yield s, d


def square_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances ``[B, M, N]`` between ``a [B, M, D]`` and ``b [B, N, D]`` (one block,
    at least float32, no gradient)."""
    check_point_pair(a, b, ("a", "b"))
    if a.shape[1] == 0:
        return a.new_empty(a.shape[0], 0, b.shape[1], dtype=_search_dtype(a))
    return next(square_distance_blocks(a, b, a.shape[1]))[1]


__all__ = [
    "DEFAULT_MAX_BYTES",
    "block_rows",
    "check_point_pair",
    "square_distance",
    "square_distance_blocks",
]
