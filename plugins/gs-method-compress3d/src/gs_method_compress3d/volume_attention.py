"""3D-aware cross-attention from a low-resolution triplane to a feature volume (Eq. 6-11, Fig. 4).

Every texel ``(i, j)`` of plane ``xy`` at resolution ``r'`` is a query; its keys and values are
the ``m x m x r''`` cells of the downsampled volume ``V_d^n`` (resolution ``r''``, ``m = r''/r'``)
above that texel, i.e. the column of volume cells that project onto it along the dropped axis
(Eq. 9-10). ``a_ij = softmax(q_ij k_ij^T / sqrt(d)) v_ij`` (Eq. 11) is added to the latent as a
residual (Eq. 7). Queries come from a 1x1 :class:`~gs_nets.TriConv` of the latent, keys and
values from 1x1x1 convolutions of ``V_d^n`` plus a learned position embedding (Fig. 4), and
``V_d^n`` from a stride-``o`` convolution of ``V^n`` (Eq. 6).

Layouts: volumes ``[B, C, r, r, r]`` indexed ``[z, y, x]``; planes ``[B, 3, C, R, R]``
(``xy, yz, zx``; plane ``p``'s first axis along the width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_nets import TriConv

# Per plane, the permutation of a [B, C, z, y, x] volume to [B, C, height, width, dropped axis].
_PLANE_PERMUTES = ((0, 1, 3, 4, 2), (0, 1, 2, 3, 4), (0, 1, 4, 2, 3))


def volume_columns(volume: torch.Tensor, plane_resolution: int) -> torch.Tensor:
    """Group a volume's cells by the triplane texel they project onto.

    Args:
        volume: ``[B, C, r'', r'', r'']`` indexed ``[z, y, x]``.
        plane_resolution: ``r'``; ``m = r'' / r'`` must be an integer.

    Returns:
        ``[B, 3, r', r', m * m * r'', C]``: for plane ``p`` and texel (row, column), the cells
        ``(m row .. m row + m - 1, m col .. m col + m - 1, all of the dropped axis)``.
    """
    b, c, r = volume.shape[0], volume.shape[1], volume.shape[-1]
    rp = plane_resolution
    if r % rp:
        raise ValidationError("plane_resolution", f"a divisor of the volume size {r}", str(rp))
    m = r // rp
    out = []
    for perm in _PLANE_PERMUTES:
        v = volume.permute(*perm).reshape(b, c, rp, m, rp, m, r)
        out.append(v.permute(0, 2, 4, 3, 5, 6, 1).reshape(b, rp, rp, m * m * r, c))
    return torch.stack(out, dim=1)


def column_attention(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, heads: int = 1
) -> torch.Tensor:
    """Eq. 11 for every texel of the three planes.

    Args:
        queries: ``[B, 3, d, R, R]`` (from the triplane).
        keys: ``[B, d, r'', r'', r'']``; values: ``[B, c', r'', r'', r'']``.
        heads: the softmax runs per head over ``d / heads`` channels (1 = Eq. 11 exactly).

    Returns:
        ``[B, 3, c', R, R]``.
    """
    b, _, d, rp, _ = queries.shape
    cv = values.shape[1]
    k = volume_columns(keys, rp).reshape(b * 3 * rp * rp, -1, heads, d // heads).transpose(1, 2)
    v = volume_columns(values, rp).reshape(b * 3 * rp * rp, -1, heads, cv // heads)
    v = v.transpose(1, 2)
    q = queries.permute(0, 1, 3, 4, 2).reshape(b * 3 * rp * rp, 1, heads, d // heads)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k, v)  # [BT, heads, 1, cv/heads]
    return out.reshape(b, 3, rp, rp, cv).permute(0, 1, 4, 2, 3)


class VolumeCrossAttention(nn.Module):
    """``forward(latent [B, 3, c', r', r'], volume [B, c, r, r, r]) -> residual A [B, 3, c', r', r']``
    (Eq. 6-11; the caller adds it, Eq. 7)."""

    def __init__(
        self,
        plane_channels: int,
        volume_channels: int,
        volume_resolution: int,
        attn_resolution: int,
        attn_channels: int,
        qk_dim: int,
        heads: int = 1,
    ):
        super().__init__()
        if volume_resolution % attn_resolution:
            raise ValidationError(
                "attention.volume_resolution",
                f"a divisor of the volume resolution {volume_resolution}",
                str(attn_resolution),
            )
        if qk_dim % heads or plane_channels % heads:
            raise ValidationError("attention.heads", "a divisor of qk_dim and the plane width")
        o = volume_resolution // attn_resolution
        self.heads = heads
        self.down = nn.Conv3d(volume_channels, attn_channels, o, stride=o)  # Eq. 6
        # Fig. 4: a position embedding is added to the volume features.
        self.position = nn.Parameter(
            torch.randn(1, attn_channels, attn_resolution, attn_resolution, attn_resolution) * 0.02
        )
        self.to_q = TriConv(plane_channels, qk_dim, kernel_size=1)  # Eq. 8
        self.to_k = nn.Conv3d(attn_channels, qk_dim, 1)
        self.to_v = nn.Conv3d(attn_channels, plane_channels, 1)
        # The residual starts at zero (the values are zero-initialised), so the encoder starts as
        # the "w/o atten" one and attention only adds what helps: LDM zero-initialises the
        # output projection of its residual attention blocks for the same reason. With default
        # init the residual (mostly the convolutions' biases) was ~6x the planes it is added to
        # and the attention autoencoder trailed the one without by 3.6 dB after 2,000 steps.
        nn.init.zeros_(self.to_v.weight)
        nn.init.zeros_(self.to_v.bias)

    def forward(self, latent: torch.Tensor, volume: torch.Tensor) -> torch.Tensor:
        vd = self.down(volume) + self.position.to(volume.dtype)
        return column_attention(self.to_q(latent), self.to_k(vd), self.to_v(vd), self.heads)


__all__ = ["VolumeCrossAttention", "column_attention", "volume_columns"]
