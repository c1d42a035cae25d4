"""DINOv2-style pre-norm transformer blocks (LayerNorm, GELU MLP, optional LayerScale).

* :class:`SelfAttentionBlock`: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.
* :class:`CrossAttentionBlock`: ``x + cross_attn(norm(x), context)``, then the MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_nets.attention import Attention, CrossAttention, Mlp, layer_scale


class SelfAttentionBlock(nn.Module):
    """Pre-norm self-attention + MLP block. ``x [B, N, C]`` -> ``[B, N, C]``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        layer_scale_init: float | None = None,
        drop: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=drop, proj_drop=drop)
        self.ls1 = layer_scale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.ls2 = layer_scale(dim, layer_scale_init)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), attn_mask))
        return x + self.ls2(self.mlp(self.norm2(x)))


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention (to context tokens) + MLP block.

    ``x [B, N, C]``, ``context [B, M, Cc]`` -> ``[B, N, C]``. The context gets its own
    LayerNorm (``norm_context``) because encoder features come at another scale.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        layer_scale_init: float | None = None,
        drop: float = 0.0,
        norm_context: bool = True,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.norm_context = nn.LayerNorm(context_dim, eps=1e-6) if norm_context else nn.Identity()
        self.cross_attn = CrossAttention(
            dim, context_dim, num_heads, qkv_bias=qkv_bias, attn_drop=drop, proj_drop=drop
        )
        self.ls1 = layer_scale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.ls2 = layer_scale(dim, layer_scale_init)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.ls1(self.cross_attn(self.norm1(x), self.norm_context(context), context_mask))
        return x + self.ls2(self.mlp(self.norm2(x)))


__all__ = ["CrossAttentionBlock", "SelfAttentionBlock"]
