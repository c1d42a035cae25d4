"""Multi-view attention: all views of one object attend to each other's tokens jointly.

Feature maps are batched view-major as ``[B * V, C, H, W]`` (view ``v`` of object ``b`` at row
``b * V + v``), the layout of LGM and MVDream. For attention the ``V`` maps of an object are
flattened into one sequence of ``V * H * W`` tokens ("3D self-attention", MVDream / ImageDream).

* :class:`MultiViewAttention`: LGM's ``MVAttention`` (GroupNorm, joint self-attention,
  residual, times ``skip_scale``), parameter names ``norm``, ``attn.qkv``, ``attn.proj``.
* :class:`SpatialTransformer3D`: MVDream / ImageDream's block (GroupNorm, linear in-projection,
  [3D self-attention, cross-attention to the image context, GEGLU feed-forward] x depth, zero-
  initialised out-projection, residual), the "3SA + CA + FF" layer of DD3G's Pattern Extraction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_nets.attention import Attention, CrossAttention


def _views(x: torch.Tensor, num_views: int) -> int:
    if x.ndim != 4:
        raise ValidationError("x", "shape [B * V, C, H, W]", f"shape {tuple(x.shape)}")
    if num_views < 1 or x.shape[0] % num_views:
        raise ValidationError(
            "num_views", f"a divisor of the leading dim {x.shape[0]} (B * V)", str(num_views)
        )
    return x.shape[0] // num_views


def views_to_tokens(x: torch.Tensor, num_views: int) -> torch.Tensor:
    """``[B * V, C, H, W]`` -> ``[B, V * H * W, C]`` (view-major, then row-major pixels)."""
    b = _views(x, num_views)
    _, c, h, w = x.shape
    return x.reshape(b, num_views, c, h, w).permute(0, 1, 3, 4, 2).reshape(b, num_views * h * w, c)


def tokens_to_views(t: torch.Tensor, num_views: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`views_to_tokens`: ``[B, V * H * W, C]`` -> ``[B * V, C, H, W]``."""
    b, _, c = t.shape
    return (
        t.reshape(b, num_views, height, width, c)
        .permute(0, 1, 4, 2, 3)
        .reshape(b * num_views, c, height, width)
    )


class MultiViewAttention(nn.Module):
    """LGM's multi-view self-attention. ``forward(x [B*V, C, H, W], num_views)`` -> same shape."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        groups: int = 32,
        eps: float = 1e-5,
        skip_scale: float = 1.0,
    ):
        super().__init__()
        self.skip_scale = skip_scale
        self.norm = nn.GroupNorm(groups, dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=True)

    def forward(self, x: torch.Tensor, num_views: int) -> torch.Tensor:
        _, _, h, w = x.shape
        t = self.attn(views_to_tokens(self.norm(x), num_views))
        return (tokens_to_views(t, num_views, h, w) + x) * self.skip_scale


class GEGLUFeedForward(nn.Module):
    """``x -> Linear(GELU(gate) * value)``, hidden width ``mult * dim`` (LDM ``FeedForward(glu=True)``)."""

    def __init__(self, dim: int, mult: float = 4.0, dropout: float = 0.0):
        super().__init__()
        inner = int(dim * mult)
        self.proj_in = nn.Linear(dim, inner * 2)
        self.dropout = nn.Dropout(dropout)
        self.proj_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(self.dropout(value * F.gelu(gate)))


class MultiViewTransformerBlock(nn.Module):
    """3D self-attention over all views, cross-attention per view to ``context``, feed-forward.

    ``forward(x [B*V, L, C], num_views, context [B*V, M, Cc] | None)`` -> ``[B*V, L, C]``.
    """

    def __init__(
        self, dim: int, num_heads: int, context_dim: int | None = None, dropout: float = 0.0
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, num_heads, qkv_bias=False, attn_drop=dropout, proj_drop=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = CrossAttention(
            dim, context_dim or dim, num_heads, qkv_bias=False, attn_drop=dropout, proj_drop=dropout
        )
        self.norm3 = nn.LayerNorm(dim)
        self.ff = GEGLUFeedForward(dim, dropout=dropout)

    def forward(
        self, x: torch.Tensor, num_views: int, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        bv, n, c = x.shape
        b = bv // num_views
        joint = self.norm1(x).reshape(b, num_views * n, c)
        x = x + self.attn1(joint).reshape(bv, n, c)
        h = self.norm2(x)
        # without a context the second attention is self-attention within each view (LDM)
        x = x + self.attn2(h, h if context is None else context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer3D(nn.Module):
    """MVDream / ImageDream ``SpatialTransformer3D`` on view-major feature maps.

    ``forward(x [B*V, C, H, W], num_views, context)`` -> ``[B*V, C, H, W]`` where ``context``
    is ``[B*V, M, Cc]`` (per view), ``[B, M, Cc]`` (shared by the views of an object) or None.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int,
        head_dim: int | None = None,
        context_dim: int | None = None,
        depth: int = 1,
        groups: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        inner = num_heads * (head_dim or channels // num_heads)
        self.context_dim = context_dim
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            MultiViewTransformerBlock(inner, num_heads, context_dim, dropout) for _ in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(
        self, x: torch.Tensor, num_views: int, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        b = _views(x, num_views)
        bv, c, h, w = x.shape
        if context is None and self.context_dim is not None:
            raise ValidationError(
                "context", f"image context tokens [B or B*V, M, {self.context_dim}]", "None"
            )
        if context is not None:
            if context.ndim != 3 or context.shape[0] not in (b, bv):
                raise ValidationError(
                    "context", f"shape [B*V={bv} or B={b}, M, C]", f"shape {tuple(context.shape)}"
                )
            if context.shape[0] == b and b != bv:
                context = context.repeat_interleave(num_views, dim=0)
        t = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(bv, h * w, c))
        for blk in self.transformer_blocks:
            t = blk(t, num_views, context)
        t = self.proj_out(t)
        return x + t.reshape(bv, h, w, c).permute(0, 3, 1, 2)


__all__ = [
    "GEGLUFeedForward",
    "MultiViewAttention",
    "MultiViewTransformerBlock",
    "SpatialTransformer3D",
    "tokens_to_views",
    "views_to_tokens",
]
