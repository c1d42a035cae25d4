"""2D residual block with optional embedding and resampling (LDM / LGM ResnetBlock).

``GroupNorm -> SiLU -> [resample] -> conv3x3 -> (+ embedding) -> GroupNorm -> SiLU -> dropout
-> conv3x3``, plus the (1x1-projected) input, times ``skip_scale``. With no embedding, no
dropout and ``skip_scale = sqrt(0.5)`` this is LGM's ``ResnetBlock`` (same parameter names:
``norm1, conv1, norm2, conv2, shortcut``); with an embedding it is the timestep / camera
conditioned ResBlock of LDM / MVDream.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError


class ResBlock(nn.Module):
    """``forward(x [B, Cin, H, W], emb [B, E] | None)`` -> ``[B, Cout, H', W']``.

    ``resample="down"`` average-pools by 2, ``"up"`` upsamples (nearest) by 2, both applied to
    the residual and the skip after the first activation. The embedding is added to the
    features before the second norm or, with ``use_scale_shift_norm``, scales and shifts it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        emb_dim: int | None = None,
        resample: Literal["down", "up"] | None = None,
        dropout: float = 0.0,
        groups: int = 32,
        eps: float = 1e-5,
        skip_scale: float = 1.0,
        use_scale_shift_norm: bool = False,
        zero_init: bool = False,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        for name, ch in (("in_channels", in_channels), ("out_channels", out_channels)):
            if ch % groups:
                raise ValidationError(f"ResBlock.{name}", f"a multiple of groups={groups}", str(ch))
        if resample not in (None, "down", "up"):
            raise ValidationError("ResBlock.resample", "None, 'down' or 'up'", repr(resample))
        self.resample = resample
        self.skip_scale = skip_scale
        self.use_scale_shift_norm = use_scale_shift_norm
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        if emb_dim:
            self.emb_proj = nn.Linear(emb_dim, out_channels * (2 if use_scale_shift_norm else 1))
        else:
            self.emb_proj = None
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if zero_init:
            nn.init.zeros_(self.conv2.weight)
            nn.init.zeros_(self.conv2.bias)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = F.silu(self.norm1(x))
        if self.resample:
            x, h = self._resample(x), self._resample(h)
        h = self.conv1(h)
        if self.emb_proj is not None:
            if emb is None:
                raise ValidationError(
                    "emb", f"an embedding [B, {self.emb_proj.in_features}] (emb_dim is set)"
                )
            e = self.emb_proj(F.silu(emb))[:, :, None, None]
            if self.use_scale_shift_norm:
                scale, shift = e.chunk(2, dim=1)
                h = self.norm2(h) * (1 + scale) + shift
            else:
                h = self.norm2(h + e)
        else:
            h = self.norm2(h)
        h = F.silu(h)
        if self.dropout is not None:
            h = self.dropout(h)
        h = self.conv2(h)
        return (h + self.shortcut(x)) * self.skip_scale


__all__ = ["ResBlock"]
