"""AGG's image encoder (Sec. 3.2, "Encoding Input RGB Information"): global [CLS] token and
patch tokens of the input view.

``ImageEncoder(config)(rgb [B, 3, H, W] in [0, 1])`` -> ``(cls [B, D], tokens [B, 1 + P, D])``;
``tokens`` holds the CLS token first, then the patch tokens: the paper feeds the cross-attention
layers "DINOv2 features" and uses patch-wise features besides the global token.
"""

from __future__ import annotations

import torch

from gs_encoders.image_tokens import ImageTokenEncoder
from gs_nets import SmallViT


class ImageEncoder(ImageTokenEncoder):
    """gs-encoders' :class:`~gs_encoders.ImageTokenEncoder` (DINOv2, the paper, or
    :class:`SmallViT`), returning the global token beside the tokens, as AGG reads them."""

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = super().forward(rgb)
        return tokens[:, 0], tokens


__all__ = ["ImageEncoder", "SmallViT"]
