"""AGG's Gaussian super-resolution backbone (Sec. 3.3, Fig. 3), assembled from gs-nets blocks.

A point-voxel UNet encodes the coarse points; a linear layer widens each latent to
``latent_channels * ratio``; cross-attention blocks to the image tokens modulate the latents
before and after :func:`~gs_nets.expansion.expand_features` turns ``N`` latents into ``N * ratio``
(AGG: "we adopt cross-attention layers before and after the feature expansion operation");
a second point-voxel UNet decodes the expanded set, placed at the parents' positions, into
per-point outputs (e.g. position offsets and attributes; their meaning is the caller's).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.pretrained import PretrainedMixin
from gs_nets.expansion import expand_features, expand_points
from gs_nets.pvcnn_unet import PVCNNUNet, PVCNNUNetConfig
from gs_nets.transformer import CrossAttentionBlock


def _unet(name: str, in_channels: int) -> dict:
    return {**PVCNNUNetConfig.presets[name], "in_channels": in_channels}


class PointUpsamplerConfig(Config):
    """Sizes of :class:`PointUpsampler`. AGG gives the structure and the 4,096 -> 16,384 setting
    (``ratio = 4``) and DINOv2-base image tokens (768-d); the widths are our choice."""

    in_channels: int = 4
    out_channels: int = 7
    context_dim: int = 768
    latent_channels: int = 64
    ratio: int = 4
    head_dim: int = 32
    cross_attn_before: int = 1
    cross_attn_after: int = 1
    encoder: PVCNNUNetConfig
    decoder: PVCNNUNetConfig

    presets: ClassVar = {
        "paper": {"encoder": _unet("small", 4), "decoder": _unet("small", 64)},
        "tiny": {
            "context_dim": 16,
            "latent_channels": 8,
            "ratio": 2,
            "head_dim": 8,
            "encoder": _unet("tiny", 4),
            "decoder": _unet("tiny", 8),
        },
    }


class PointUpsampler(PretrainedMixin, nn.Module):
    """``forward(xyz [B, N, 3], feats [B, N, in_channels], context [B, M, context_dim])``
    -> ``(xyz_up [B, N*r, 3], out [B, N*r, out_channels])``; ``xyz_up`` are the parents'
    positions repeated ``r`` times (child ``j`` of point ``i`` at row ``i*r + j``)."""

    config_class = PointUpsamplerConfig

    def __init__(self, config: PointUpsamplerConfig):
        super().__init__()
        self.config = c = config
        if c.decoder.in_channels != c.latent_channels:
            raise ValidationError(
                "PointUpsamplerConfig.decoder.in_channels",
                f"latent_channels = {c.latent_channels}",
                str(c.decoder.in_channels),
            )
        if c.encoder.in_channels != c.in_channels:
            raise ValidationError(
                "PointUpsamplerConfig.encoder.in_channels",
                f"in_channels = {c.in_channels}",
                str(c.encoder.in_channels),
            )
        wide = c.latent_channels * c.ratio
        for name, dim in (
            ("latent_channels * ratio", wide),
            ("latent_channels", c.latent_channels),
        ):
            if dim % c.head_dim:
                raise ValidationError(
                    "PointUpsamplerConfig.head_dim", f"a divisor of {name} = {dim}", str(c.head_dim)
                )
        self.encoder = PVCNNUNet(c.encoder)
        self.to_latent = nn.Linear(self.encoder.out_channels, wide)
        self.attn_before = nn.ModuleList(
            CrossAttentionBlock(wide, c.context_dim, wide // c.head_dim)
            for _ in range(c.cross_attn_before)
        )
        self.attn_after = nn.ModuleList(
            CrossAttentionBlock(c.latent_channels, c.context_dim, c.latent_channels // c.head_dim)
            for _ in range(c.cross_attn_after)
        )
        self.decoder = PVCNNUNet(c.decoder)
        self.head = nn.Linear(self.decoder.out_channels, c.out_channels)

    def forward(
        self, xyz: torch.Tensor, feats: torch.Tensor | None, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.to_latent(self.encoder(xyz, feats))
        for blk in self.attn_before:
            h = blk(h, context)
        h = expand_features(h, self.config.ratio)
        xyz_up = expand_points(xyz, self.config.ratio)
        for blk in self.attn_after:
            h = blk(h, context)
        return xyz_up, self.head(self.decoder(xyz_up, h))


__all__ = ["PointUpsampler", "PointUpsamplerConfig"]
