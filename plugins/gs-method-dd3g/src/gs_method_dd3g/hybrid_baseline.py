"""Table II (a): a TGS / AGG-like hybrid generator (points + triplane) as DD3G's generator.

``HybridBaseline(config, context_dim)(image_tokens [B, M, De], noise, rays)`` -> the attributes
PEPD returns (``position [B, N, 3]``, ``log_scale``, ``rotation`` (wxyz), ``color``,
``opacity [B, N]``), ``N = config.hybrid.num_gaussians()``. Both branches read the image tokens
only: the noise and the random cameras ``C`` are ignored, as a generator built for 3D data has
no input for them (the paper fixes the input pose, IV-C). See ``HybridBaselineConfig`` for the
choices.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_method_dd3g.config import DD3GConfig
from gs_method_dd3g.progressive_decoding import activate
from gs_nets import (
    CrossAttentionBlock,
    Mlp,
    SelfAttentionBlock,
    TriplaneUpsample,
    sample_triplane,
)

# Attribute channels of the triplane MLP: a position offset, then the other attributes.
_SPLIT = {"offset": 3, "scale": 3, "rotation": 4, "color": 3, "opacity": 1}


class _QueryBranch(nn.Module):
    """Learned queries, refined by self- and cross-attention to the image tokens."""

    def __init__(self, n: int, dim: int, context_dim: int, depth: int, heads: int):
        super().__init__()
        self.queries = nn.Parameter(0.02 * torch.randn(1, n, dim))
        self.self_blocks = nn.ModuleList(SelfAttentionBlock(dim, heads) for _ in range(depth))
        self.cross_blocks = nn.ModuleList(
            CrossAttentionBlock(dim, context_dim, heads) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        x = self.queries.expand(context.shape[0], -1, -1).to(context.dtype)
        for sa, ca in zip(self.self_blocks, self.cross_blocks, strict=True):
            x = ca(sa(x), context)
        return self.norm(x)


class HybridBaseline(nn.Module):
    """Points from queries, attributes from a triplane sampled at them."""

    def __init__(self, config: DD3GConfig, context_dim: int):
        super().__init__()
        h = config.hybrid
        self.decoder_config = config.decoder  # activation ranges shared with PD
        self.points_per_query = h.points_per_query
        self.side = h.triplane_tokens
        self.channels = h.triplane_channels
        self.points = _QueryBranch(h.num_queries, h.dim, context_dim, h.depth, h.num_heads)
        self.point_head = nn.Linear(h.dim, 3 * h.points_per_query)
        self.planes = _QueryBranch(
            3 * h.triplane_tokens**2, h.dim, context_dim, h.depth, h.num_heads
        )
        self.plane_head = nn.Linear(h.dim, h.triplane_channels)
        self.upsample = TriplaneUpsample(h.triplane_channels)
        self.attributes = Mlp(3 * h.triplane_channels, h.head_hidden, sum(_SPLIT.values()))

    def forward(self, image_tokens: torch.Tensor, noise=None, rays=None) -> dict:
        b = image_tokens.shape[0]
        raw_xyz = self.point_head(self.points(image_tokens)).reshape(b, -1, 3)
        planes = self.plane_head(self.planes(image_tokens))  # [B, 3 R R, C]
        planes = planes.reshape(b, 3, self.side, self.side, self.channels).permute(0, 1, 4, 2, 3)
        planes = self.upsample(planes)  # [B, 3, C, 2R, 2R]
        # The triplane spans the position bound's cube: sampled at tanh of the decoded points.
        xyz = torch.tanh(raw_xyz)
        feats = sample_triplane(planes, xyz)  # [B, N, 3C]
        parts = torch.split(self.attributes(feats), list(_SPLIT.values()), dim=-1)
        a = dict(zip(_SPLIT, parts, strict=True))
        raw = {
            "position": raw_xyz + a["offset"],
            "scale": a["scale"],
            "rotation": a["rotation"],
            "color": a["color"],
            "opacity": a["opacity"],
        }
        return activate(raw, self.decoder_config)


__all__ = ["HybridBaseline"]
