"""Pure-torch point sampling and grouping (PointNet++ set abstraction, Qi et al. 2017).

Farthest point sampling picks well-spread patch centres; ball query or kNN gathers each centre's
neighbourhood. OpenShape's PointBERT encoder uses dgl's FPS and PointNet++'s ball query; these
reproduce them without compiled extensions, on any device. Distances are computed in float32
whatever the input dtype: bf16 coordinates would reorder neighbours.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError


def _check_xyz(xyz: torch.Tensor, field: str = "xyz") -> None:
    if not isinstance(xyz, torch.Tensor) or xyz.ndim != 3 or xyz.shape[-1] != 3:
        got = tuple(xyz.shape) if isinstance(xyz, torch.Tensor) else type(xyz).__name__
        raise ValidationError(field, "points [B, N, 3]", str(got))


def square_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distances ``[B, M, N]`` between ``a [B, M, 3]`` and ``b [B, N, 3]`` (float32)."""
    a, b = a.float(), b.float()
    d = -2.0 * a @ b.transpose(1, 2)
    d += (a * a).sum(-1, keepdim=True)
    d += (b * b).sum(-1).unsqueeze(1)
    return d.clamp_min_(0.0)


def gather_points(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``values [B, N, C]`` at ``idx [B, ...]`` -> ``[B, ..., C]``."""
    b = values.shape[0]
    flat = idx.reshape(b, -1)
    out = torch.gather(values, 1, flat.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    return out.reshape(*idx.shape, values.shape[-1])


@torch.no_grad()
def farthest_point_sample(
    xyz: torch.Tensor, num_samples: int, start: int | torch.Tensor = 0
) -> torch.Tensor:
    """Indices ``[B, S]`` of ``S = num_samples`` points of ``xyz [B, N, 3]`` chosen greedily.

    Each pick is the point farthest from all earlier picks (the max over points of the min
    distance to the chosen set); ``start`` is the first pick (an int or ``[B]`` indices). dgl
    starts at a random point; a fixed start makes the encoder deterministic.
    """
    _check_xyz(xyz)
    b, n, _ = xyz.shape
    if not 1 <= num_samples <= n:
        raise ValidationError(
            "num_samples", f"between 1 and the number of points ({n})", str(num_samples)
        )
    pts = xyz.float()
    idx = torch.empty(b, num_samples, dtype=torch.long, device=xyz.device)
    cur = torch.as_tensor(start, dtype=torch.long, device=xyz.device).expand(b).clone()
    min_d = torch.full((b, n), float("inf"), device=xyz.device)
    rows = torch.arange(b, device=xyz.device)
    for i in range(num_samples):
        idx[:, i] = cur
        d = (pts - pts[rows, cur].unsqueeze(1)).square().sum(-1)
        min_d = torch.minimum(min_d, d)
        cur = min_d.argmax(-1)
    return idx


@torch.no_grad()
def ball_query(xyz: torch.Tensor, centers: torch.Tensor, radius: float, k: int) -> torch.Tensor:
    """Neighbour indices ``[B, S, k]`` of ``centers [B, S, 3]`` among ``xyz [B, N, 3]``.

    PointNet++'s rule, as OpenShape uses it: the ``k`` lowest-index points within ``radius``
    (distance <= radius), in index order; a ball holding fewer repeats its first point. A centre
    taken from ``xyz`` always finds itself.
    """
    _check_xyz(xyz)
    _check_xyz(centers, "centers")
    n = xyz.shape[1]
    if not 1 <= k <= n:
        raise ValidationError("k", f"between 1 and the number of points ({n})", str(k))
    d = square_distance(centers, xyz)  # [B, S, N]
    ar = torch.arange(n, device=xyz.device)
    idx = torch.where(d <= radius * radius, ar, n)
    idx = idx.topk(k, dim=-1, largest=False, sorted=True).values
    first = idx[..., :1]
    if (first == n).any():
        raise ValidationError(
            "centers", f"every centre within {radius} of some point", "an empty ball"
        )
    return torch.where(idx == n, first, idx)


@torch.no_grad()
def knn_query(xyz: torch.Tensor, centers: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[B, S, k]`` of the ``k`` nearest points of ``xyz`` to each centre, nearest first."""
    _check_xyz(xyz)
    _check_xyz(centers, "centers")
    n = xyz.shape[1]
    if not 1 <= k <= n:
        raise ValidationError("k", f"between 1 and the number of points ({n})", str(k))
    return square_distance(centers, xyz).topk(k, dim=-1, largest=False, sorted=True).indices


__all__ = ["ball_query", "farthest_point_sample", "gather_points", "knn_query", "square_distance"]
