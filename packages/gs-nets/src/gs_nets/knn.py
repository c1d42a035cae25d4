"""k-nearest neighbours and point gathering in pure PyTorch, with bounded memory.

:func:`knn` never builds the full ``M x N`` distance matrix at once: queries are processed in
chunks so the transient buffer is ``B * chunk * N`` floats (``max_bytes``, 256 MiB by default);
the result is ``O(B * M * k)``. Distances come from one matmul per chunk
(``|q|^2 + |r|^2 - 2 q.r``), and the squared distances returned for the chosen neighbours are
recomputed exactly from the coordinates.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError

DEFAULT_MAX_BYTES = 256 * 2**20


def gather_points(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Batched gather: ``x [B, N, C]``, ``idx [B, *S]`` (int) -> ``[B, *S, C]``.

    Uses one flat ``index_select``, so no ``[B, *S, C]`` index tensor is materialised.
    """
    if x.ndim != 3 or idx.shape[0] != x.shape[0]:
        raise ValidationError(
            "gather_points", "x [B, N, C] and idx [B, ...]", f"{tuple(x.shape)}, {tuple(idx.shape)}"
        )
    b, n, c = x.shape
    offset = (torch.arange(b, device=idx.device) * n).view(b, *([1] * (idx.ndim - 1)))
    flat = (idx.long() + offset).reshape(-1)
    return x.reshape(b * n, c).index_select(0, flat).reshape(*idx.shape, c)


def _chunk_rows(b: int, n: int, max_bytes: int) -> int:
    return max(1, max_bytes // (4 * b * n))


def knn(
    query: torch.Tensor,
    ref: torch.Tensor,
    k: int,
    chunk_size: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest points of ``ref`` to every point of ``query``.

    Args:
        query: ``[B, M, 3]``.
        ref: ``[B, N, 3]``; when it is the same cloud as ``query`` each point is its own
            first neighbour.
        k: neighbours per query, ``k <= N``.
        chunk_size: queries per chunk; default from ``max_bytes``.

    Returns:
        ``dist2 [B, M, k]`` squared distances (ascending) and ``idx [B, M, k]`` int64 indices.
        Gradients flow to ``query`` / ``ref`` through ``dist2`` only.
    """
    for name, t in (("query", query), ("ref", ref)):
        if t.ndim != 3 or t.shape[-1] != 3:
            raise ValidationError(name, "shape [B, *, 3]", f"shape {tuple(t.shape)}")
    if query.shape[0] != ref.shape[0]:
        raise ValidationError("ref", f"batch size {query.shape[0]} (as query)", str(ref.shape[0]))
    b, m, _ = query.shape
    n = ref.shape[1]
    if not 0 < k <= n:
        raise ValidationError("k", f"an int in [1, N={n}]", str(k))
    chunk = chunk_size or _chunk_rows(b, n, max_bytes)
    with torch.no_grad(), torch.autocast(device_type=query.device.type, enabled=False):
        q = query.detach().float()
        r = ref.detach().float()
        r_sq = r.square().sum(-1).unsqueeze(1)  # [B, 1, N]
        rt = r.transpose(1, 2)
        parts = []
        for s in range(0, m, chunk):
            qc = q[:, s : s + chunk]
            d = torch.baddbmm(r_sq, qc, rt, alpha=-2.0).add_(qc.square().sum(-1, keepdim=True))
            parts.append(d.topk(k, dim=-1, largest=False, sorted=False).indices)
        idx = torch.cat(parts, dim=1)
    # exact distances for the chosen neighbours, then sort them
    diff = gather_points(ref, idx) - query.unsqueeze(2)
    dist2 = diff.square().sum(-1)
    dist2, order = dist2.sort(dim=-1)
    return dist2, idx.gather(-1, order)


def group_points(
    feats: torch.Tensor | None, xyz: torch.Tensor, centers: torch.Tensor, idx: torch.Tensor
) -> torch.Tensor:
    """Neighbourhood tensor for set abstraction: relative coordinates and features.

    ``feats [B, N, C] | None``, ``xyz [B, N, 3]``, ``centers [B, M, 3]``, ``idx [B, M, k]``
    -> ``[B, M, k, 3 + C]`` = ``[xyz_j - center_i, feats_j]``.
    """
    rel = gather_points(xyz, idx) - centers.unsqueeze(2)
    if feats is None:
        return rel
    return torch.cat([rel, gather_points(feats, idx)], dim=-1)


__all__ = ["DEFAULT_MAX_BYTES", "gather_points", "group_points", "knn"]
