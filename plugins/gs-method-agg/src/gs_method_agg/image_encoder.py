"""AGG's image encoder (Sec. 3.2, "Encoding Input RGB Information"): global [CLS] token and
patch tokens of the input view.

``ImageEncoder(config)(rgb [B, 3, H, W] in [0, 1])`` -> ``(cls [B, D], tokens [B, 1 + P, D])``;
``tokens`` holds the CLS token first, then the patch tokens: the paper feeds the cross-attention
layers "DINOv2 features" and uses patch-wise features besides the global token.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_method_agg.config import ImageEncoderConfig
from gs_nets import SmallViT


class ImageEncoder(nn.Module):
    """DINOv2 (gs-encoders, the paper) or :class:`SmallViT`, per ``config.kind``.

    The released DINOv2 weights are fetched on first use (first forward, ``training_module`` or
    ``save_pretrained``), not at construction, and never when a checkpoint that holds the
    encoder's weights is loaded first (``DinoV2Encoder(defer=True)``): an AGG checkpoint is
    self-contained and loads offline.
    """

    def __init__(self, config: ImageEncoderConfig):
        super().__init__()
        self.config = config
        self.dino = None
        self.vit = None
        if config.kind == "dinov2":
            from gs_encoders import DinoV2Encoder

            self.dino = DinoV2Encoder(
                config.variant,
                pretrained=config.pretrained,
                image_size=config.image_size,
                trainable=config.trainable,
                defer=True,
            )
        else:
            self.vit = SmallViT(
                config.image_size, config.patch_size, config.dim, config.depth, config.num_heads
            )
            self.vit.requires_grad_(config.trainable)

    def ensure_weights(self) -> None:
        """Load the pretrained DINOv2 weights if they are still pending (raises
        :class:`gs_core.errors.WeightsNotFoundError` naming the file when they are absent)."""
        if self.dino is not None:
            self.dino.ensure_weights()

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.dino is not None:
            out = self.dino(rgb)
            tokens = torch.cat([out.cls, out.patches], dim=1)
        else:
            tokens = self.vit(rgb)
        return tokens[:, 0], tokens
