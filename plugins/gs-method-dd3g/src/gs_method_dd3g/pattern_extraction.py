"""Pattern Extraction, ``p1(II, N, C)`` of Eq. 2 (Sec. III-B).

Per view, the noise ``N`` (the teacher's latent shape) concatenated with the Plücker rays of
``C`` at the latent resolution forms ``NC``. A convolution lifts it to the first width; each
level stacks a ResBlock (halving the map from the second level on) and a SpatialTransformer3D
(3D self-attention across all views' tokens, cross-attention to the image tokens, GEGLU
feed-forward; MVDream's layer from gs_nets.multiview); a convolution maps to the decoder's width.
The view maps are then reduced to ``num_pattern_tokens`` tokens by learned queries that
cross-attend to every view's tokens (our choice of reduction).
"""

from __future__ import annotations

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_method_dd3g.config import PatternExtractionConfig
from gs_nets import CrossAttentionBlock, ResBlock, SpatialTransformer3D
from gs_nets.multiview import views_to_tokens


class PatternExtraction(nn.Module):
    """``forward(noise [B, V, Cl, s, s], rays [B, V, 6, s, s], image_tokens [B, M, De])`` ->
    pattern tokens ``[B, num_pattern_tokens, out_dim]``."""

    def __init__(
        self, config: PatternExtractionConfig, latent_channels: int, context_dim: int, out_dim: int
    ):
        super().__init__()
        ch = list(config.channels)
        if not ch:
            raise ValidationError("pattern.channels", "at least one width", "[]")
        self.conv_in = nn.Conv2d(latent_channels + 6, ch[0], 3, padding=1)
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            self.res.append(
                ResBlock(prev, c, resample="down" if i > 0 else None, groups=config.groups)
            )
            self.attn.append(
                SpatialTransformer3D(
                    c, config.num_heads, context_dim=context_dim, groups=config.groups
                )
            )
            prev = c
        self.norm_out = nn.GroupNorm(config.groups, prev)
        self.conv_out = nn.Conv2d(prev, out_dim, 3, padding=1)
        self.queries = nn.Parameter(0.02 * torch.randn(1, config.num_pattern_tokens, out_dim))
        self.reduce = CrossAttentionBlock(out_dim, out_dim, max(1, out_dim // 64))

    def forward(
        self, noise: torch.Tensor, rays: torch.Tensor, image_tokens: torch.Tensor
    ) -> torch.Tensor:
        if noise.ndim != 5 or rays.ndim != 5 or noise.shape[:2] != rays.shape[:2]:
            raise ValidationError(
                "noise / rays",
                "[B, V, C, s, s] and [B, V, 6, s, s]",
                f"{tuple(noise.shape)} and {tuple(rays.shape)}",
            )
        b, v = noise.shape[:2]
        x = torch.cat([noise, rays.to(noise.dtype)], dim=2).flatten(0, 1)
        x = self.conv_in(x)
        for res, attn in zip(self.res, self.attn, strict=True):
            x = attn(res(x), v, image_tokens)
        x = self.conv_out(torch.nn.functional.silu(self.norm_out(x)))
        tokens = views_to_tokens(x, v)
        return self.reduce(self.queries.expand(b, -1, -1), tokens)


__all__ = ["PatternExtraction"]
