"""Multi-head attention, MLP and LayerScale in the DINOv2 layout, on ``scaled_dot_product_attention``.

Tokens are ``[B, N, C]``. Attention never materialises the ``N x N`` matrix itself: it calls
:func:`torch.nn.functional.scaled_dot_product_attention`, which picks the flash /
memory-efficient kernels on GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[B, N, H*D]`` -> ``[B, H, N, D]``."""
    b, n, c = x.shape
    return x.view(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, N, D]`` -> ``[B, N, H*D]``."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _check_heads(dim: int, num_heads: int) -> None:
    if num_heads <= 0 or dim % num_heads:
        raise ValidationError("num_heads", f"a positive divisor of dim={dim}", str(num_heads))


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and an output ``proj``.

    Parameter names (``qkv``, ``proj``) follow DINOv2, so LGM's ``MemEffAttention`` weights
    (``qkv_bias=False``) load unchanged.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, C]`` -> ``[B, N, C]``; ``attn_mask`` as in ``scaled_dot_product_attention``."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        h = self.num_heads
        out = F.scaled_dot_product_attention(
            _split_heads(q, h),
            _split_heads(k, h),
            _split_heads(v, h),
            attn_mask=attn_mask,
            dropout_p=self.attn_drop if self.training else 0.0,
        )
        return self.proj_drop(self.proj(_merge_heads(out)))


class CrossAttention(nn.Module):
    """Multi-head attention from query tokens ``[B, N, C]`` to context tokens ``[B, M, Cc]``."""

    def __init__(
        self,
        dim: int,
        context_dim: int | None = None,
        num_heads: int = 8,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        _check_heads(dim, num_heads)
        context_dim = dim if context_dim is None else context_dim
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x [B, N, C]``, ``context [B, M, Cc]`` -> ``[B, N, C]``.

        ``context_mask [B, M]`` (bool, True = attend) hides padded context tokens.
        """
        if context.ndim != 3 or context.shape[0] != x.shape[0]:
            raise ValidationError(
                "context", f"shape [B={x.shape[0]}, M, C]", f"shape {tuple(context.shape)}"
            )
        h = self.num_heads
        k, v = self.kv(context).chunk(2, dim=-1)
        mask = None
        if context_mask is not None:
            mask = context_mask[:, None, None, :].to(torch.bool)
        out = F.scaled_dot_product_attention(
            _split_heads(self.q(x), h),
            _split_heads(k, h),
            _split_heads(v, h),
            attn_mask=mask,
            dropout_p=self.attn_drop if self.training else 0.0,
        )
        return self.proj_drop(self.proj(_merge_heads(out)))


class Mlp(nn.Module):
    """Two-layer GELU MLP (``fc1``, ``fc2``), as in DINOv2 / ViT."""

    def __init__(
        self, dim: int, hidden_dim: int | None = None, out_dim: int | None = None, drop: float = 0.0
    ):
        super().__init__()
        hidden_dim = hidden_dim or 4 * dim
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class LayerScale(nn.Module):
    """Per-channel learnable residual scale (CaiT / DINOv2), initialised to ``init_value``."""

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


def layer_scale(dim: int, init_value: float | None) -> nn.Module:
    """``LayerScale`` when ``init_value`` is set, else identity (DINOv2's ``init_values=None``)."""
    return LayerScale(dim, init_value) if init_value is not None else nn.Identity()


__all__ = ["Attention", "CrossAttention", "LayerScale", "Mlp", "layer_scale"]
