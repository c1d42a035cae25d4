"""Farthest point sampling in pure PyTorch (PointNet++ / PVCNN's ``furthest_point_sample``).

The reference CUDA op starts from point 0 and repeatedly takes the point whose distance to the
already chosen set is largest (first index on ties). This loop does the same with one
``[B, N]`` running-minimum buffer, so memory is ``O(B * N)`` whatever ``m``.
"""

from __future__ import annotations

import torch
from gs_core.errors import ValidationError


@torch.no_grad()
def farthest_point_sample(
    xyz: torch.Tensor, num_samples: int, start_index: int = 0
) -> torch.Tensor:
    """Indices of ``num_samples`` farthest-point samples of each cloud.

    Args:
        xyz: ``[B, N, 3]`` points.
        num_samples: ``M <= N``.
        start_index: the first sample (PVCNN / PointNet++ use 0).

    Returns:
        ``[B, M]`` int64 indices into ``N``; ``idx[:, 0] == start_index``.
    """
    if xyz.ndim != 3 or xyz.shape[-1] != 3:
        raise ValidationError("xyz", "shape [B, N, 3]", f"shape {tuple(xyz.shape)}")
    b, n, _ = xyz.shape
    if not 0 < num_samples <= n:
        raise ValidationError("num_samples", f"an int in [1, N={n}]", str(num_samples))
    if not 0 <= start_index < n:
        raise ValidationError("start_index", f"an int in [0, N={n})", str(start_index))
    with torch.autocast(device_type=xyz.device.type, enabled=False):
        pts = xyz.float()
        idx = torch.empty(b, num_samples, dtype=torch.long, device=xyz.device)
        min_d2 = torch.full((b, n), float("inf"), device=xyz.device)
        cur = torch.full((b,), start_index, dtype=torch.long, device=xyz.device)
        batch = torch.arange(b, device=xyz.device)
        for i in range(num_samples):
            idx[:, i] = cur
            d2 = (pts - pts[batch, cur].unsqueeze(1)).square().sum(-1)
            min_d2 = torch.minimum(min_d2, d2)
            cur = min_d2.argmax(dim=-1)
    return idx


__all__ = ["farthest_point_sample"]
