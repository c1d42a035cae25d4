"""Splatter Image's backbone: the DDPM++ U-Net (Song et al. 2021, in the form EDM gives it),
as Splatter Image builds it -- no noise or label embedding, single-head attention, output at
the input's resolution.

``DDPMppUNet(in_channels, out_channels, resolution, config)(x [B, C_in, R, R])`` ->
``[B, C_out, R, R]``. The layout (from Splatter Image's ``scene/gaussian_predictor.py`` and
EDM's ``SongUNet``, read for facts): per level a 2x downsampling block (after the first), then
``num_blocks`` residual blocks, attention at the listed resolutions; the decoder mirrors it with
two blocks at the bottom (the first with attention), a 2x upsampling block per level and
``num_blocks + 1`` blocks that take the encoder's outputs as skips; a GroupNorm, SiLU and 3x3
convolution make the output. Each residual block is gs_nets' ``ResBlock`` in its DDPM++ form
(sums scaled by sqrt(1/2), 2x2 averaging down and nearest-neighbour up: EDM's filter [1, 1]);
the last convolution of each block and the attention projection start near zero (Xavier gain
1e-5), the output convolution at gain 0.2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_dd3g.config import DDPMppConfig
from gs_nets.resblock import ResBlock

SKIP_SCALE = math.sqrt(0.5)


def _edm_groups(channels: int) -> int:
    # EDM's GroupNorm: 32 groups, fewer where a group would hold under 4 channels.
    groups = min(32, channels // 4)
    if groups < 1 or channels % groups:
        raise ValueError(
            f"ddpmpp: a block of {channels} channels cannot split into {groups} norm groups; "
            "expected model_channels a multiple of 32 (or a power of two below it)"
        )
    return groups


def _xavier(conv: nn.Conv2d, gain: float = 1.0) -> nn.Conv2d:
    nn.init.xavier_uniform_(conv.weight, gain=gain)
    nn.init.zeros_(conv.bias)
    return conv


class DDPMppBlock(nn.Module):
    """gs_nets' ``ResBlock`` in its DDPM++ form (see there), Xavier-initialised with the last
    convolution near zero; then, with ``attention``, single-head self-attention over the
    pixels, added and scaled the same way."""

    def __init__(self, cin: int, cout: int, resample: str | None, attention: bool, dropout: float):
        super().__init__()
        self.in_channels = cin
        self.res = ResBlock(
            cin,
            cout,
            resample=resample,
            dropout=dropout,
            groups=_edm_groups,
            eps=1e-6,
            skip_scale=SKIP_SCALE,
            project_resampled_shortcut=True,
        )
        _xavier(self.res.conv1)
        _xavier(self.res.conv2, gain=1e-5)
        if isinstance(self.res.shortcut, nn.Conv2d):
            _xavier(self.res.shortcut)
        self.attention = attention
        if attention:
            self.norm = nn.GroupNorm(_edm_groups(cout), cout, eps=1e-6)
            self.qkv = _xavier(nn.Conv2d(cout, 3 * cout, 1), gain=math.sqrt(0.2))
            self.proj = _xavier(nn.Conv2d(cout, cout, 1), gain=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res(x)
        if self.attention:
            b, c, h, w = x.shape
            q, k, v = self.qkv(self.norm(x)).reshape(b, 3, 1, c, h * w).transpose(-1, -2).unbind(1)
            a = F.scaled_dot_product_attention(q, k, v)  # one head: [B, 1, HW, C]
            x = (self.proj(a.squeeze(1).transpose(1, 2).reshape(b, c, h, w)) + x) * SKIP_SCALE
        return x


class DDPMppUNet(nn.Module):
    """Splatter Image's U-Net (see the module docstring); ``config`` sets the widths."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, config: DDPMppConfig):
        super().__init__()
        c = config
        c.check_resolution(resolution)
        levels = len(c.channel_mult)
        self.encoder = nn.ModuleList()
        self.stem = _xavier(nn.Conv2d(in_channels, c.model_channels, 3, padding=1))
        skips = [c.model_channels]
        cout = c.model_channels
        for level, mult in enumerate(c.channel_mult):
            res = resolution >> level
            if level > 0:
                self.encoder.append(DDPMppBlock(cout, cout, "down", False, c.dropout))
                skips.append(cout)
            for _ in range(c.num_blocks):
                cin, cout = cout, c.model_channels * mult
                attn = res in c.attention_resolutions
                self.encoder.append(DDPMppBlock(cin, cout, None, attn, c.dropout))
                skips.append(cout)
        self.decoder = nn.ModuleList()
        for level in reversed(range(levels)):
            mult, res = c.channel_mult[level], resolution >> level
            if level == levels - 1:
                self.decoder.append(DDPMppBlock(cout, cout, None, True, c.dropout))
                self.decoder.append(DDPMppBlock(cout, cout, None, False, c.dropout))
            else:
                self.decoder.append(DDPMppBlock(cout, cout, "up", False, c.dropout))
            for idx in range(c.num_blocks + 1):
                cin, cout = cout + skips.pop(), c.model_channels * mult
                attn = idx == c.num_blocks and res in c.attention_resolutions
                self.decoder.append(DDPMppBlock(cin, cout, None, attn, c.dropout))
        self.out_norm = nn.GroupNorm(_edm_groups(cout), cout, eps=1e-6)
        self.out_conv = _xavier(nn.Conv2d(cout, out_channels, 3, padding=1), gain=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = [x]
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        for block in self.decoder:
            if block.in_channels != x.shape[1]:  # the blocks that read a skip
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x)
        return self.out_conv(F.silu(self.out_norm(x)))


__all__ = ["DDPMppBlock", "DDPMppUNet"]
