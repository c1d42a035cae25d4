"""ImageDream's image-prompt resampler: CLIP patch features -> a few cross-attention tokens.

ImageDream (Wang & Shi 2023, "local_resample" image prompt) conditions its multi-view U-Net on
the input image through an IP-Adapter-Plus style Perceiver resampler: a fixed set of learned
query tokens attends, layer by layer, to the penultimate-layer CLIP ViT-H/14 patch features of
the input image (``[B, 257, 1280]`` at 224 px) and to itself, and the result is projected to the
U-Net's cross-attention width. Every cross-attention of the U-Net then attends to these tokens
with its own key / value projections (``to_k_ip`` / ``to_v_ip``), beside the text.

Parameter names follow the official checkpoint (``image_embed.*`` inside the U-Net):
``latents [1, Q, D]``, ``proj_in``, ``proj_out``, ``norm_out`` and per layer ``layers.i.0``
(attention: ``norm1`` over the image features, ``norm2`` over the queries, ``to_q``, ``to_kv``,
``to_out``, all without bias) and ``layers.i.1`` (feed-forward
``LayerNorm -> Linear -> GELU -> Linear``, indices 0, 1, 3, no bias).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError


class PerceiverAttention(nn.Module):
    """Queries attend to ``[image features, queries]`` jointly.

    ``forward(features [B, N, D], queries [B, Q, D])`` -> ``[B, Q, D]``.
    """

    def __init__(self, dim: int, head_dim: int = 64, num_heads: int = 8):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = head_dim * num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, features: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        features = self.norm1(features)
        queries = self.norm2(queries)
        b, q_len, _ = queries.shape
        k, v = self.to_kv(torch.cat([features, queries], dim=1)).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(
            self._heads(self.to_q(queries)), self._heads(k), self._heads(v)
        )
        return self.to_out(out.transpose(1, 2).reshape(b, q_len, -1))


class ImagePromptResampler(nn.Module):
    """Perceiver resampler: ``[B, N, embedding_dim]`` image features -> ``[B, Q, output_dim]``.

    Args:
        dim: width of the query tokens (ImageDream: the U-Net's context width, 1024).
        depth: attention + feed-forward layers (4).
        head_dim, num_heads: attention heads (64 x 12).
        num_queries: ``Q``, the number of image-prompt tokens (ImageDream's ``ip_dim``, 16).
        embedding_dim: width of the image features (CLIP ViT-H/14: 1280).
        output_dim: width of the output tokens (1024).
        ff_mult: feed-forward hidden width as a multiple of ``dim`` (4).
    """

    def __init__(
        self,
        dim: int = 1024,
        depth: int = 4,
        head_dim: int = 64,
        num_heads: int = 12,
        num_queries: int = 16,
        embedding_dim: int = 1280,
        output_dim: int = 1024,
        ff_mult: int = 4,
    ):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PerceiverAttention(dim, head_dim, num_heads),
                    nn.Sequential(
                        nn.LayerNorm(dim),
                        nn.Linear(dim, dim * ff_mult, bias=False),
                        nn.GELU(),
                        nn.Linear(dim * ff_mult, dim, bias=False),
                    ),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 3 or features.shape[-1] != self.embedding_dim:
            raise ValidationError(
                "image features",
                f"[B, N, {self.embedding_dim}] (penultimate CLIP vision hidden states)",
                f"shape {tuple(features.shape)}",
            )
        x = self.proj_in(features)
        queries = self.latents.expand(x.shape[0], -1, -1)
        for attn, ff in self.layers:
            queries = queries + attn(x, queries)
            queries = queries + ff(queries)
        return self.norm_out(self.proj_out(queries))


__all__ = ["ImagePromptResampler", "PerceiverAttention"]
