"""Triplane ResBlocks, resampling and cross-attention for Compress3D's autoencoder and UNet.

Compress3D (Sec. 3.1, Fig. 3/5) passes triplanes through "a series of ResBlocks and down-sample
layers" in the encoder and ResBlocks with up-sample layers in the decoder; its diffusion UNet
(Sec. 3.3) uses the same ResBlocks "with 3D-aware convolution", a timestep embedding, and
cross-attention to the image / shape embeddings. The blocks here follow the ADM/LDM ResBlock
(GroupNorm, SiLU, conv, embedding, GroupNorm, SiLU, dropout, zero-initialised conv) with
:class:`~gs_nets.triconv.TriConv` in place of the 2D convolutions.

All tensors are ``[B, 3, C, R, R]`` (planes ``xy, yz, zx``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_nets.attention import CrossAttention
from gs_nets.triconv import TriConv


class TriplaneGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics span all three planes of one triplane (the rolled-out map)."""

    def forward(self, planes: torch.Tensor) -> torch.Tensor:  # [B, 3, C, R, R]
        x = planes.transpose(1, 2)  # [B, C, 3, R, R]: GroupNorm accepts any trailing dims
        return super().forward(x).transpose(1, 2)


def _per_plane(fn, planes: torch.Tensor) -> torch.Tensor:
    b = planes.shape[0]
    y = fn(planes.flatten(0, 1))
    return y.reshape(b, 3, *y.shape[1:])


class TriplaneDownsample(nn.Module):
    """Halve the plane resolution with a stride-2 3x3 :class:`TriConv`."""

    def __init__(self, channels: int, out_channels: int | None = None):
        super().__init__()
        self.conv = TriConv(channels, out_channels or channels, kernel_size=3, stride=2, padding=1)

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        return self.conv(planes)


class TriplaneUpsample(nn.Module):
    """Double the plane resolution: nearest-neighbour upsampling then a 3x3 :class:`TriConv`."""

    def __init__(self, channels: int, out_channels: int | None = None):
        super().__init__()
        self.conv = TriConv(channels, out_channels or channels, kernel_size=3)

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        up = _per_plane(lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest"), planes)
        return self.conv(up)


class TriplaneResBlock(nn.Module):
    """Residual block on triplanes with 3D-aware convolutions and an optional embedding.

    ``forward(planes [B, 3, Cin, R, R], emb [B, E] | None)`` -> ``[B, 3, Cout, R', R']`` where
    ``R' = R / 2`` for ``resample="down"``, ``2R`` for ``"up"``, else ``R``. The embedding (e.g.
    the diffusion timestep) modulates the second normalisation as scale and shift
    (``use_scale_shift_norm``, ADM) or is added to the features.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        emb_dim: int | None = None,
        resample: Literal["down", "up"] | None = None,
        dropout: float = 0.0,
        groups: int = 32,
        use_scale_shift_norm: bool = True,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        for name, ch in (("in_channels", in_channels), ("out_channels", out_channels)):
            if ch % groups:
                raise ValidationError(
                    f"TriplaneResBlock.{name}", f"a multiple of groups={groups}", str(ch)
                )
        if resample not in (None, "down", "up"):
            raise ValidationError(
                "TriplaneResBlock.resample", "None, 'down' or 'up'", repr(resample)
            )
        self.resample = resample
        self.use_scale_shift_norm = use_scale_shift_norm
        self.norm1 = TriplaneGroupNorm(groups, in_channels)
        self.conv1 = TriConv(in_channels, out_channels, 3)
        self.emb_proj = (
            nn.Linear(emb_dim, out_channels * (2 if use_scale_shift_norm else 1))
            if emb_dim
            else None
        )
        self.norm2 = TriplaneGroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = TriConv(out_channels, out_channels, 3)
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)
        self.skip = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def _resample(self, planes: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return _per_plane(lambda x: F.avg_pool2d(x, 2), planes)
        if self.resample == "up":
            return _per_plane(lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest"), planes)
        return planes

    def forward(self, planes: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = F.silu(self.norm1(planes))
        h = self.conv1(self._resample(h))
        skip = _per_plane(self.skip, self._resample(planes))
        if self.emb_proj is not None:
            if emb is None:
                raise ValidationError(
                    "emb", f"an embedding [B, {self.emb_proj.in_features}] (emb_dim is set)"
                )
            e = self.emb_proj(F.silu(emb))[:, None, :, None, None]  # [B, 1, C(*2), 1, 1]
            if self.use_scale_shift_norm:
                scale, shift = e.chunk(2, dim=2)
                h = self.norm2(h) * (1 + scale) + shift
            else:
                h = self.norm2(h + e)
        else:
            h = self.norm2(h)
        h = self.conv2(self.dropout(F.silu(h)))
        return skip + h


class TriplaneCrossAttention(nn.Module):
    """Residual cross-attention from every texel of the three planes to context tokens.

    Compress3D Sec. 3.3 injects the image and shape embeddings into the triplane UNet "through
    cross attention". ``forward(planes [B, 3, C, R, R], context [B, M, Cc])`` -> same shape as
    ``planes``; the output projection starts at zero so the block starts as the identity.
    """

    def __init__(self, channels: int, context_dim: int, num_heads: int = 8, groups: int = 32):
        super().__init__()
        self.norm = TriplaneGroupNorm(groups, channels)
        self.attn = CrossAttention(channels, context_dim, num_heads)
        nn.init.zeros_(self.attn.proj.weight)
        nn.init.zeros_(self.attn.proj.bias)

    def forward(
        self, planes: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, _, c, h, w = planes.shape
        tokens = self.norm(planes).permute(0, 1, 3, 4, 2).reshape(b, 3 * h * w, c)
        out = self.attn(tokens, context, context_mask)
        return planes + out.reshape(b, 3, h, w, c).permute(0, 1, 4, 2, 3)


__all__ = [
    "TriplaneCrossAttention",
    "TriplaneDownsample",
    "TriplaneGroupNorm",
    "TriplaneResBlock",
    "TriplaneUpsample",
]
