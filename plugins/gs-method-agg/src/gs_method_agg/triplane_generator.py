"""AGG's texture field generator (Sec. 3.2, Fig. 2): image tokens -> a triplane, through
learnable queries (LRM's transformer-to-triplane design at AGG's scale)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.pretrained import PretrainedMixin
from gs_method_agg.blocks import QueryTransformer


class TriplaneGeneratorConfig(Config):
    """Sizes of :class:`TriplaneGenerator`.

    AGG fixes only the encoder (DINOv2-base, 768-d tokens at 256x256 input); the triplane sizes
    of the ``paper`` preset follow LRM's transformer-to-triplane design (32x32 tokens per plane,
    one stride-2 deconvolution) at AGG's smaller scale; they are our choice.
    """

    context_dim: int = 768
    dim: int = 512
    depth: int = 8
    num_heads: int = 8
    mlp_ratio: float = 4.0
    token_resolution: int = 32
    upsample_factor: int = 2
    plane_channels: int = 32
    use_global_token: bool = True
    layer_scale_init: float | None = 1e-5

    presets: ClassVar = {
        "paper": {},
        "small": {
            "dim": 384,
            "depth": 6,
            "num_heads": 6,
            "token_resolution": 16,
            "plane_channels": 32,
        },
        "tiny": {
            "context_dim": 32,
            "dim": 32,
            "depth": 1,
            "num_heads": 2,
            "token_resolution": 4,
            "plane_channels": 8,
            "layer_scale_init": None,
        },
    }


class TriplaneGenerator(PretrainedMixin, nn.Module):
    """Image tokens -> triplane (AGG's texture field generator, Sec. 3.2, Fig. 2).

    Learnable query tokens (``3 * r * r``, one per texel of three ``r x r`` token planes) pass
    through AGG blocks with cross-attention to the image tokens, are reshaped to three
    ``dim x r x r`` planes and upsampled by a transposed convolution to ``plane_channels x R x R``
    with ``R = r * upsample_factor``.

    ``forward(context [B, M, Cc], global_token [B, Cc] | None)`` -> ``planes [B, 3, C, R, R]``.
    """

    config_class = TriplaneGeneratorConfig

    def __init__(self, config: TriplaneGeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or TriplaneGeneratorConfig()
        r = config.token_resolution
        f = config.upsample_factor
        if r <= 0 or f <= 0:
            raise ValidationError(
                "TriplaneGeneratorConfig",
                "token_resolution > 0 and upsample_factor > 0",
                f"{r}, {f}",
            )
        self.transformer = QueryTransformer(
            num_queries=3 * r * r,
            dim=config.dim,
            depth=config.depth,
            num_heads=config.num_heads,
            context_dim=config.context_dim,
            mlp_ratio=config.mlp_ratio,
            layer_scale_init=config.layer_scale_init,
            use_global_token=config.use_global_token,
        )
        # Kernel = stride: every token expands into its own f x f texel patch, as LRM's deconv.
        self.upsample = nn.ConvTranspose2d(
            config.dim, config.plane_channels, kernel_size=f, stride=f
        )

    @property
    def plane_resolution(self) -> int:
        return self.config.token_resolution * self.config.upsample_factor

    def forward(
        self,
        context: torch.Tensor,
        global_token: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        r = self.config.token_resolution
        tokens = self.transformer(context, global_token, context_mask)  # [B, 3*r*r, dim]
        b = tokens.shape[0]
        x = tokens.reshape(b * 3, r, r, -1).permute(0, 3, 1, 2)  # [B*3, dim, r(v), r(u)]
        x = self.upsample(x)
        return x.reshape(b, 3, *x.shape[1:])


__all__ = ["TriplaneGenerator", "TriplaneGeneratorConfig"]
