"""DD3G's image encoder: the tokens ``I_II`` of the input image (Sec. III-B, IV-F).

``ImageEncoder(config)(rgb [B, 3, H, W] in [0, 1])`` -> ``[B, 1 + P, D]`` (CLS first, then the
patch tokens row-major). ``kind="dinov2"`` is DINOv2 through gs_encoders, its released weights
fetched on first use (``ensure_weights``: the first forward, ``training_module`` or
``save_pretrained``), never at construction and never when a checkpoint holding them loads
first, so a DD3G checkpoint is self-contained. ``kind="vit"`` is gs_nets' :class:`~gs_nets.vit.SmallViT`
trained with the generator, for the offline procedural world.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_method_dd3g.config import ImageEncoderConfig
from gs_nets import SmallViT


class ImageEncoder(nn.Module):
    """DINOv2 (gs_encoders) or :class:`SmallViT`, per ``config.kind``."""

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

    @property
    def dim(self) -> int:
        return self.dino.embed_dim if self.dino is not None else self.config.dim

    def ensure_weights(self) -> None:
        """Load the released DINOv2 weights if still pending; offline without them this
        raises :class:`gs_core.errors.WeightsNotFoundError` with one line naming the hub id."""
        if self.dino is not None:
            self.dino.ensure_weights()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.dino is None:
            return self.vit(rgb)
        out = self.dino(rgb)
        return torch.cat([out.cls, out.patches], dim=1)


__all__ = ["ImageEncoder"]
