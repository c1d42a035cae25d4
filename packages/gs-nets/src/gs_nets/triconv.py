"""Rodin's 3D-aware convolution on triplanes ("TriConv", used by Compress3D Sec. 3.1 and 3.3).

A plain 2D convolution on each plane ignores that the three planes describe one volume. Rodin
(Wang et al., CVPR 2023) lets every plane see the other two: each other plane is averaged along
the axis it does not share with this plane, giving a feature line over the shared axis, which is
broadcast across this plane and concatenated on channels before the convolution.

Layout as in :mod:`gs_nets.triplane`: ``planes [..., 3, C, R, R]`` = ``xy, yz, zx``; plane ``p``
has its first coordinate along the width and its second along the height. For plane ``p`` the
next plane ``(p + 1) % 3`` shares this plane's *height* axis as its width, and the previous plane
``(p + 2) % 3`` shares this plane's *width* axis as its height.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_core.errors import ValidationError


def triplane_context(planes: torch.Tensor) -> torch.Tensor:
    """Each plane concatenated with the axis-pooled features of the other two.

    Args:
        planes: ``[..., 3, C, R, R]`` (square planes; all three share the resolution).

    Returns:
        ``[..., 3, 3C, R, R]``: for plane ``p`` the channels are ``[plane p, next plane averaged
        over its height and broadcast along p's height, previous plane averaged over its width
        and broadcast along p's width]``. E.g. for ``xy`` (height y, width x): ``yz`` (height z,
        width y) averaged over z gives a line over y; ``zx`` (height x, width z) averaged over z
        gives a line over x.
    """
    if planes.ndim < 4 or planes.shape[-4] != 3 or planes.shape[-1] != planes.shape[-2]:
        raise ValidationError(
            "planes", "shape [..., 3, C, R, R] (square planes)", f"shape {tuple(planes.shape)}"
        )
    # line over the width axis of each plane ([..., 3, C, 1, R]) and over its height ([..., 3, C, R, 1])
    over_width = planes.mean(dim=-2, keepdim=True)
    over_height = planes.mean(dim=-1, keepdim=True)
    nxt = torch.roll(
        over_width, shifts=-1, dims=-4
    )  # plane p+1's width axis == plane p's height axis
    prv = torch.roll(
        over_height, shifts=1, dims=-4
    )  # plane p-1's height axis == plane p's width axis
    nxt = nxt.transpose(-1, -2).expand_as(planes)  # [..., 3, C, R(height of p), R]
    prv = prv.transpose(-1, -2).expand_as(planes)  # [..., 3, C, R, R(width of p)]
    return torch.cat([planes, nxt, prv], dim=-3)


class TriConv(nn.Module):
    """3D-aware triplane convolution: :func:`triplane_context` then one 2D conv per plane.

    ``forward(planes [B, 3, Cin, R, R])`` -> ``[B, 3, Cout, R', R']``. The three per-plane
    convolutions run as one grouped ``Conv2d`` (``groups=3``, weight ``[3*Cout, 3*Cin, k, k]``).
    ``kernel_size=1`` gives Compress3D's ``TriConv(k=(1, 1), s=(1, 1))`` query projection (Eq. 8).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(
            3 * 3 * in_channels,
            3 * out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=3,
            bias=bias,
        )

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        if planes.ndim != 5 or planes.shape[1] != 3 or planes.shape[2] != self.in_channels:
            raise ValidationError(
                "planes", f"shape [B, 3, {self.in_channels}, R, R]", f"shape {tuple(planes.shape)}"
            )
        b, _, c, r, _ = planes.shape
        x = triplane_context(planes).reshape(b, 3 * 3 * c, r, r)
        y = self.conv(x)
        return y.reshape(b, 3, self.out_channels, *y.shape[-2:])


__all__ = ["TriConv", "triplane_context"]
