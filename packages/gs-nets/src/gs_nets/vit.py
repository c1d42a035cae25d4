"""A small ViT in DINOv2's layout, trained from scratch where DINOv2's released weights cannot
be fetched (AGG's and DD3G's offline procedural-world image encoders).

``SmallViT(image_size, patch_size, dim, depth, num_heads)(rgb [B, 3, H, W] in [0, 1])`` ->
tokens ``[B, 1 + P, dim]``: the CLS token first, then the ``P = (image_size / patch_size)^2``
patch tokens row-major. Inputs are resized to ``image_size`` and normalised with ImageNet's
statistics, as DINOv2's are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_nets.transformer import SelfAttentionBlock

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SmallViT(nn.Module):
    """Patch embedding, CLS token, learned positions, pre-norm blocks with LayerScale and GELU
    MLPs (:class:`~gs_nets.transformer.SelfAttentionBlock`), final LayerNorm."""

    def __init__(self, image_size: int, patch_size: int, dim: int, depth: int, num_heads: int):
        super().__init__()
        self.image_size = image_size
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        n = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n, dim) * 0.02)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(dim, num_heads, layer_scale_init=1e-5) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if rgb.shape[-2:] != (s, s):
            # Resized in float32: antialiased bilinear has no bf16 / fp16 CPU kernel.
            rgb = F.interpolate(
                rgb.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False
            ).to(rgb.dtype)
        # A model cast to bf16 / fp16 takes float32 images from its callers.
        rgb = rgb.to(self.patch_embed.weight.dtype)
        x = self.patch_embed((rgb - self.mean) / self.std).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SmallViT"]
