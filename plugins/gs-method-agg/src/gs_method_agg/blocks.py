"""AGG's transformer blocks (Sec. 3.2): the block order of its geometry predictor and texture
field, and the learnable-query transformer both are built from.

* :class:`AGGBlock`: cross-attention to the image tokens, self-attention, MLP, each pre-normed
  with its own residual ("Geometry Predictor").
* :class:`QueryTransformer`: learnable query tokens (AGG: "a group of learnable position
  embeddings", summed with the image's global [CLS] token) modulated by a stack of AGG blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_nets.attention import Attention, CrossAttention, Mlp, layer_scale


class AGGBlock(nn.Module):
    """AGG transformer block: cross-attention, self-attention, MLP (AGG Sec. 3.2 and 4.1).

    ``x [B, N, C]``, ``context [B, M, Cc]`` -> ``[B, N, C]``.
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
        self.norm_cross = nn.LayerNorm(dim, eps=1e-6)
        self.norm_context = nn.LayerNorm(context_dim, eps=1e-6) if norm_context else nn.Identity()
        self.cross_attn = CrossAttention(
            dim, context_dim, num_heads, qkv_bias=qkv_bias, attn_drop=drop, proj_drop=drop
        )
        self.ls_cross = layer_scale(dim, layer_scale_init)
        self.norm_self = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=drop, proj_drop=drop)
        self.ls_self = layer_scale(dim, layer_scale_init)
        self.norm_mlp = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.ls_mlp = layer_scale(dim, layer_scale_init)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.ls_cross(
            self.cross_attn(self.norm_cross(x), self.norm_context(context), context_mask)
        )
        x = x + self.ls_self(self.attn(self.norm_self(x)))
        return x + self.ls_mlp(self.mlp(self.norm_mlp(x)))


class QueryTransformer(nn.Module):
    """Learnable queries decoded by AGG blocks against image tokens (AGG Sec. 3.2).

    ``forward(context [B, M, Cc], global_token [B, Cc] | None)`` -> ``[B, Q, dim]``. When
    ``global_token`` is given (the encoder's [CLS]), it is projected to ``dim`` and added to every
    query before the first block, as AGG's geometry and texture branches do.
    """

    def __init__(
        self,
        num_queries: int,
        dim: int,
        depth: int,
        num_heads: int,
        context_dim: int,
        mlp_ratio: float = 4.0,
        layer_scale_init: float | None = None,
        use_global_token: bool = True,
        drop: float = 0.0,
    ):
        super().__init__()
        if num_queries <= 0 or depth < 0:
            raise ValidationError(
                "QueryTransformer", "num_queries > 0 and depth >= 0", f"{num_queries}, {depth}"
            )
        self.queries = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.global_proj = nn.Linear(context_dim, dim) if use_global_token else None
        self.blocks = nn.ModuleList(
            AGGBlock(
                dim, context_dim, num_heads, mlp_ratio, layer_scale_init=layer_scale_init, drop=drop
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(
        self,
        context: torch.Tensor,
        global_token: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if context.ndim != 3:
            raise ValidationError("context", "shape [B, M, C]", f"shape {tuple(context.shape)}")
        b = context.shape[0]
        x = self.queries.unsqueeze(0).expand(b, -1, -1)
        if self.global_proj is not None:
            if global_token is None:
                raise ValidationError(
                    "global_token", "the encoder's global token [B, C] (use_global_token=True)"
                )
            x = x + self.global_proj(global_token).unsqueeze(1)
        for blk in self.blocks:
            x = blk(x, context, context_mask)
        return self.norm(x)


__all__ = ["AGGBlock", "QueryTransformer"]
