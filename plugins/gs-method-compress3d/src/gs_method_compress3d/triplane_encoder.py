"""The triplane encoder (Sec. 3.1, Fig. 3): coloured points -> a distribution over latents.

points --PointNet--> point features --Eq. 1-2--> V^n [r^3] --Eq. 3-5--> T [r^2]
--ResBlocks + downsampling--> T^l [r'^2] --(+ 3D-aware cross-attention, Eq. 6-11)--> T^e
--1x1 TriConv--> (mean, logvar) of the latent ``[B, 3, c', r', r']``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_method_compress3d.axis_collapse import AxisCollapse
from gs_method_compress3d.config import AttentionConfig, EncoderConfig
from gs_method_compress3d.point_encoder import LocalPoolPointNet
from gs_method_compress3d.posterior import DiagonalGaussian
from gs_method_compress3d.splatting import splat_trilinear
from gs_method_compress3d.volume_attention import VolumeCrossAttention
from gs_nets import TriConv, TriplaneDownsample, TriplaneGroupNorm, TriplaneResBlock


class TriplaneEncoder(nn.Module):
    """``forward(xyz [B, N, 3] in [-1, 1]^3, rgb [B, N, 3]) -> DiagonalGaussian``."""

    def __init__(self, enc: EncoderConfig, att: AttentionConfig):
        super().__init__()
        self.config, self.attention_config = enc, att
        c = enc.volume_channels
        self.pointnet = LocalPoolPointNet(
            c,
            hidden=enc.pointnet_width,
            blocks=enc.pointnet_blocks,
            frequencies=enc.position_frequencies,
            pool_resolution=enc.pool_resolution,
        )
        chans = enc.plane_channels
        self.collapse = AxisCollapse(c, chans[0], enc.volume_resolution)
        levels: list[nn.Module] = []
        for i, ch in enumerate(chans):
            prev = chans[max(i - 1, 0)]
            blocks: list[nn.Module] = []
            if i > 0:
                blocks.append(TriplaneDownsample(prev, ch))
            blocks += [
                TriplaneResBlock(ch, ch, groups=enc.groups) for _ in range(enc.blocks_per_level)
            ]
            levels.append(nn.Sequential(*blocks))
        self.levels = nn.ModuleList(levels)
        width = chans[-1]
        self.attention = (
            VolumeCrossAttention(
                width,
                c,
                enc.volume_resolution,
                att.volume_resolution,
                att.volume_channels,
                att.qk_dim,
                att.heads,
            )
            if att.enabled
            else None
        )
        self.norm_out = TriplaneGroupNorm(enc.groups, width)
        self.to_moments = TriConv(width, 2 * enc.latent_channels, kernel_size=1)
        with torch.no_grad():  # per plane, channels [mean (c'), logvar (c')]
            c_lat = enc.latent_channels
            self.to_moments.conv.bias.view(3, 2, c_lat)[:, 1].fill_(enc.logvar_init)

    def volume(self, xyz: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        """``V^n [B, c, r, r, r]`` (Eq. 1-2)."""
        return splat_trilinear(xyz, self.pointnet(xyz, rgb), self.config.volume_resolution)

    def forward(self, xyz: torch.Tensor, rgb: torch.Tensor) -> DiagonalGaussian:
        if xyz.ndim != 3 or xyz.shape[-1] != 3:
            raise ValidationError("xyz", "points [B, N, 3] in [-1, 1]^3", str(tuple(xyz.shape)))
        vol = self.volume(xyz, rgb)
        planes = self.collapse(vol)
        for level in self.levels:
            planes = level(planes)
        if self.attention is not None:
            planes = planes + self.attention(planes, vol)  # Eq. 7
        mean, logvar = self.to_moments(F.silu(self.norm_out(planes))).chunk(2, dim=2)
        return DiagonalGaussian(mean, logvar)


__all__ = ["TriplaneEncoder"]
