"""Axis-collapsing 3D convolutions: feature volume -> high-resolution triplane (Eq. 3-5).

``T_xy = 3DConv(V, k=(1, 1, r), s=(1, 1, r))`` and its two siblings: one learned convolution per
plane whose kernel spans the whole axis the plane drops, so projecting 3D features onto the
planes has learnable weights where mean pooling (3DGen, HexaGen3D) has none.

Volume layout ``[B, C, r(z), r(y), r(x)]`` (see :mod:`gs_method_compress3d.splatting`); output
``[B, 3, C', r, r]`` planes ``xy, yz, zx`` in :mod:`gs_nets.triplane`'s convention (plane ``p``'s
first axis along the width).
"""

from __future__ import annotations

import torch
from torch import nn

from gs_core.errors import ValidationError


class AxisCollapse(nn.Module):
    """``forward(volume [B, C, r, r, r]) -> planes [B, 3, C', r, r]``."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int):
        super().__init__()
        self.resolution = resolution
        self.in_channels = in_channels
        r = resolution
        self.xy = nn.Conv3d(in_channels, out_channels, (r, 1, 1), stride=(r, 1, 1))  # drops z
        self.yz = nn.Conv3d(in_channels, out_channels, (1, 1, r), stride=(1, 1, r))  # drops x
        self.zx = nn.Conv3d(in_channels, out_channels, (1, r, 1), stride=(1, r, 1))  # drops y

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        if volume.ndim != 5 or volume.shape[1] != self.in_channels or volume.shape[2:] != (r,) * 3:
            raise ValidationError(
                "volume", f"shape [B, {self.in_channels}, {r}, {r}, {r}]", str(tuple(volume.shape))
            )
        xy = self.xy(volume)[:, :, 0]  # [B, C, y, x]: height y, width x
        yz = self.yz(volume)[..., 0]  # [B, C, z, y]: height z, width y
        zx = self.zx(volume)[:, :, :, 0].transpose(-1, -2)  # [B, C, x, z]: height x, width z
        return torch.stack([xy, yz, zx], dim=1)


__all__ = ["AxisCollapse"]
