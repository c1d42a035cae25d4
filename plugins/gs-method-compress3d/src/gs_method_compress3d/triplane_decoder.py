"""The triplane decoder (Fig. 5): latent ``[B, 3, c', r', r']`` -> decoded triplane features
``[B, 3, C, R, R]`` through ResBlocks and x2 upsampling layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_compress3d.config import DecoderConfig
from gs_nets import TriConv, TriplaneGroupNorm, TriplaneResBlock, TriplaneUpsample


class TriplaneDecoder(nn.Module):
    def __init__(self, dec: DecoderConfig, latent_channels: int):
        super().__init__()
        chans = dec.plane_channels
        self.conv_in = TriConv(latent_channels, chans[0], kernel_size=3)
        levels: list[nn.Module] = []
        for i, ch in enumerate(chans):
            blocks: list[nn.Module] = []
            if i > 0:
                blocks.append(TriplaneUpsample(chans[i - 1], ch))
            blocks += [
                TriplaneResBlock(ch, ch, groups=dec.groups) for _ in range(dec.blocks_per_level)
            ]
            levels.append(nn.Sequential(*blocks))
        self.levels = nn.ModuleList(levels)
        self.norm_out = TriplaneGroupNorm(dec.groups, chans[-1])
        self.conv_out = TriConv(chans[-1], chans[-1], kernel_size=3)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        planes = self.conv_in(latent)
        for level in self.levels:
            planes = level(planes)
        return self.conv_out(F.silu(self.norm_out(planes)))


__all__ = ["TriplaneDecoder"]
