"""Progressive Decoding, ``p2(II ⊕ p1)`` of Eq. 2 (Sec. III-B, IV-A).

The image tokens (projected to the decoder width) and the pattern tokens pass through stacked
Point Transformer v1 blocks (gs_nets.point_transformer), one branch for every attribute. Each
attribute's MLP head reads a weighted sum of adjacent blocks' outputs - position first, then
scale and rotation, then colour and opacity, with the paper's weights [0.15, 0.7, 0.15] and
[0.2, 0.8] - and decodes ``gaussians_per_token`` Gaussians from every token. Log-scales go
through a sigmoid into (-9, -3) (IV-A).

Point Transformer attention needs positions: every token gets a 3D anchor, ``tanh`` of a linear
map of its input features (our choice; the paper does not say), which also fixes the kNN graph
shared by the blocks. The anchors only shape the attention neighbourhoods: the decoded means are
not tied to them (the paper imposes "no structural constraints" on the Gaussians).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import ValidationError
from gs_method_dd3g.config import ATTRIBUTE_DIMS, ATTRIBUTES, ProgressiveDecodingConfig
from gs_nets import Mlp, PointTransformerStack


def weighted_levels(
    levels: list[torch.Tensor], blocks: list[int], weights: list[float]
) -> torch.Tensor:
    """``sum_j weights[j] * levels[blocks[j]]`` (a head's input, IV-A)."""
    out = None
    for b, w in zip(blocks, weights, strict=True):
        term = w * levels[b]
        out = term if out is None else out + term
    return out


def activate(raw: dict[str, torch.Tensor], config: ProgressiveDecodingConfig) -> dict:
    """Raw head outputs ``[B, N, d]`` -> activated attributes: means in ``[-b, b]^3`` (tanh),
    linear scales ``exp(lo + (hi - lo) sigmoid)``, unit quaternions (wxyz), colours and
    opacities in (0, 1) (sigmoid)."""
    lo, hi = config.log_scale_range
    return {
        "position": config.position_bound * torch.tanh(raw["position"]),
        "log_scale": lo + (hi - lo) * torch.sigmoid(raw["scale"]),
        "rotation": F.normalize(raw["rotation"], dim=-1, eps=1e-8),
        "color": torch.sigmoid(raw["color"]),
        "opacity": torch.sigmoid(raw["opacity"]).squeeze(-1),
    }


class ProgressiveDecoding(nn.Module):
    """``forward(tokens [B, T, dim])`` -> attributes of ``T * gaussians_per_token`` Gaussians:
    ``position [B, N, 3]``, ``log_scale [B, N, 3]``, ``rotation [B, N, 4]``, ``color [B, N, 3]``,
    ``opacity [B, N]``, plus ``levels`` (the blocks' outputs) for inspection."""

    def __init__(self, config: ProgressiveDecodingConfig, num_tokens: int):
        super().__init__()
        self.config = config
        self.token_embed = nn.Parameter(0.02 * torch.randn(1, num_tokens, config.dim))
        self.anchor = nn.Linear(config.dim, 3)
        self.backbone = PointTransformerStack(
            config.dim, config.depth, config.share_planes, config.k, config.norm
        )
        g = config.gaussians_per_token
        self.heads = nn.ModuleDict(
            {a: Mlp(config.dim, config.head_hidden, g * ATTRIBUTE_DIMS[a]) for a in ATTRIBUTES}
        )
        # Gaussians start half-transparent, mid-scale, identity-ish rotations, grey: the
        # head biases set where training starts, the weights its spread.
        with torch.no_grad():
            rot = self.heads["rotation"].fc2
            rot.bias.view(g, 4).copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
            rot.weight.mul_(0.1)
            self.heads["position"].fc2.weight.mul_(0.5)

    def anchors(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.config.anchor_bound * torch.tanh(self.anchor(tokens).float())

    def levels(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The ``depth`` block outputs ``[B, T, dim]`` of the backbone."""
        if tokens.ndim != 3 or tokens.shape[1:] != self.token_embed.shape[1:]:
            raise ValidationError(
                "tokens",
                f"[B, {self.token_embed.shape[1]}, {self.config.dim}]",
                str(tuple(tokens.shape)),
            )
        x = tokens + self.token_embed
        return self.backbone(x, self.anchors(x).to(x.dtype))

    def decode(self, levels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.config
        raw = {}
        for a in ATTRIBUTES:
            feat = weighted_levels(levels, c.head_blocks[a], c.head_weights[a])
            out = self.heads[a](feat)  # [B, T, G * d]
            b, t, _ = out.shape
            raw[a] = out.reshape(b, t * c.gaussians_per_token, ATTRIBUTE_DIMS[a]).float()
        return activate(raw, c)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        levels = self.levels(tokens)
        out = self.decode(levels)
        out["levels"] = levels
        return out


__all__ = ["ProgressiveDecoding", "activate", "weighted_levels"]
