"""2D residual block with optional embedding and resampling (LDM / LGM ResnetBlock).

``GroupNorm -> SiLU -> [resample] -> conv3x3 -> (+ embedding) -> GroupNorm -> SiLU -> dropout
-> conv3x3``, plus the (1x1-projected) input, times ``skip_scale``. With no embedding, no
dropout and ``skip_scale = sqrt(0.5)`` this is LGM's ``ResnetBlock`` (same parameter names:
``norm1, conv1, norm2, conv2, shortcut``); with an embedding it is the timestep / camera
conditioned ResBlock of LDM / MVDream. With ``groups`` a function of the width, eps 1e-6 and
``project_resampled_shortcut`` it is the residual part of EDM's DDPM++ ``UNetBlock`` (no
embedding), which Splatter Image's U-Net stacks.
"""

from __future__ import annotations

from collections.abc import Callable
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
    ``groups`` is each GroupNorm's group count, or a function from the norm's width to it
    (EDM: ``min(32, width // 4)``). ``project_resampled_shortcut`` gives the skip a 1x1
    projection also where resampling keeps the width (DDPM++'s ``resample_proj``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        emb_dim: int | None = None,
        resample: Literal["down", "up"] | None = None,
        dropout: float = 0.0,
        groups: int | Callable[[int], int] = 32,
        eps: float = 1e-5,
        skip_scale: float = 1.0,
        use_scale_shift_norm: bool = False,
        zero_init: bool = False,
        project_resampled_shortcut: bool = False,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        groups_of = groups if callable(groups) else lambda _: groups
        for name, ch in (("in_channels", in_channels), ("out_channels", out_channels)):
            g = groups_of(ch)
            if g < 1 or ch % g:
                raise ValidationError(f"ResBlock.{name}", f"a multiple of groups={g}", str(ch))
        if resample not in (None, "down", "up"):
            raise ValidationError("ResBlock.resample", "None, 'down' or 'up'", repr(resample))
        self.resample = resample
        self.skip_scale = skip_scale
        self.use_scale_shift_norm = use_scale_shift_norm
        self.norm1 = nn.GroupNorm(groups_of(in_channels), in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        if emb_dim:
            self.emb_proj = nn.Linear(emb_dim, out_channels * (2 if use_scale_shift_norm else 1))
        else:
            self.emb_proj = None
        self.norm2 = nn.GroupNorm(groups_of(out_channels), out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if zero_init:
            nn.init.zeros_(self.conv2.weight)
            nn.init.zeros_(self.conv2.bias)
        project = in_channels != out_channels or (project_resampled_shortcut and resample)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if project else nn.Identity()

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
