"""AGG's Gaussian super-resolution backbone (Sec. 3.3, Fig. 3), assembled from gs-nets blocks.

A point-voxel UNet encodes the coarse points; a linear layer widens each latent to
``latent_channels * ratio``; cross-attention blocks to the image tokens modulate the latents
before and after :func:`~gs_method_agg.feature_expansion.expand_features` turns ``N`` latents into ``N * ratio``
(AGG: "we adopt cross-attention layers before and after the feature expansion operation");
a second point-voxel UNet decodes the expanded set, placed at the parents' positions, into
per-point outputs (e.g. position offsets and attributes; their meaning is the caller's).
"""

from __future__ import annotations

from typing import ClassVar

import pydantic
import torch
from torch import nn

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.pretrained import PretrainedMixin
from gs_method_agg.feature_expansion import expand_features, expand_points
from gs_nets import CrossAttentionBlock, PVCNNUNet, PVCNNUNetConfig


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
    reuse_sampling: bool = pydantic.Field(
        True,
        description="decoder: take its centres from the parents and the encoder's sampling "
        "instead of running farthest point sampling again (same centres, see PointUpsampler)",
    )
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
    positions repeated ``r`` times (child ``j`` of point ``i`` at row ``i*r + j``).

    Sampling reuse (``reuse_sampling``): the decoder runs on ``r`` copies of each parent.
    Farthest point sampling at stride ``r`` on such a cloud picks one copy of every parent
    (copies are at distance 0 from a chosen one, any unchosen parent is farther), so its first
    level's centres are the parents themselves; its deeper levels then sample the parents
    exactly as the encoder's levels did. With matching strides the decoder therefore takes
    the parents (``PVCNNUNet(repeats=r)``, which also finds their neighbourhoods among the
    ``N`` parents rather than the ``N * r`` copies) and the encoder's indices: the same centres
    (the order differs, which nothing downstream depends on) without the FPS and kNN of
    ``N * r`` points, the slowest steps at batch 1. Coincident parents are the exception, where
    FPS would pick further copies.
    """

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
        enc = [lv.stride for lv in c.encoder.sa_levels]
        dec = [lv.stride for lv in c.decoder.sa_levels]
        self._reuse = c.reuse_sampling and dec[0] == c.ratio and dec[1:] == enc[: len(dec) - 1]

    def forward(
        self, xyz: torch.Tensor, feats: torch.Tensor | None, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.config.ratio
        h, enc_idx = self.encoder(xyz, feats, return_sample_idx=True)
        h = self.to_latent(h)
        for blk in self.attn_before:
            h = blk(h, context)
        h = expand_features(h, r)
        xyz_up = expand_points(xyz, r)
        for blk in self.attn_after:
            h = blk(h, context)
        if not self._reuse:
            return xyz_up, self.head(self.decoder(xyz_up, h))
        levels = len(self.decoder.sa)
        dec_idx = [None, *enc_idx[: levels - 1]]
        dec_idx += [None] * (levels - len(dec_idx))
        return xyz_up, self.head(self.decoder(xyz_up, h, sample_idx=dec_idx, repeats=r))


__all__ = ["PointUpsampler", "PointUpsamplerConfig"]
