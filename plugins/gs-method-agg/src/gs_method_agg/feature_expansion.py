"""AGG's latent feature expansion (Sec. 3.3, "Latent Space Super-Resolution").

Instead of adding points directly, AGG widens each point's latent to ``C * r`` channels and
rearranges ``(B, N, C * r) -> (B, N * r, C)``, the point-cloud analogue of a pixel shuffle.
Child ``j`` of point ``i`` becomes point ``i * r + j`` and takes channels ``[j*C, (j+1)*C)``.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_core.errors import ValidationError


def expand_features(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """``x [B, N, C * r]`` -> ``[B, N * r, C]`` (child ``j`` of point ``i`` at ``i * r + j``)."""
    if x.ndim != 3:
        raise ValidationError("x", "shape [B, N, C * r]", f"shape {tuple(x.shape)}")
    if ratio < 1 or x.shape[-1] % ratio:
        raise ValidationError(
            "ratio", f"a positive divisor of the channel count {x.shape[-1]}", str(ratio)
        )
    b, n, cr = x.shape
    return x.reshape(b, n * ratio, cr // ratio)


def expand_points(xyz: torch.Tensor, ratio: int) -> torch.Tensor:
    """Parent positions for the expanded set: ``[B, N, D]`` -> ``[B, N * r, D]`` (each row ``r`` times)."""
    if ratio < 1:
        raise ValidationError("ratio", "a positive int", str(ratio))
    return xyz.repeat_interleave(ratio, dim=1)


class FeatureExpansion(nn.Module):
    """Linear widening to ``out_channels * ratio`` followed by :func:`expand_features`.

    ``forward(x [B, N, Cin])`` -> ``[B, N * ratio, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: int):
        super().__init__()
        if ratio < 1:
            raise ValidationError("ratio", "a positive int", str(ratio))
        self.ratio = ratio
        self.proj = nn.Linear(in_channels, out_channels * ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return expand_features(self.proj(x), self.ratio)


__all__ = ["FeatureExpansion", "expand_features", "expand_points"]
