"""Image tokens for a feed-forward generator: DINOv2, or a ViT of DINOv2's layout trained from
scratch where the released weights cannot be fetched (the offline procedural world).

``ImageTokenEncoder(config)(rgb [B, 3, H, W] in [0, 1])`` -> ``tokens [B, 1 + P, D]``: the CLS
token first, then the ``P`` patch tokens row-major, whichever ``config.kind`` builds. AGG and DD3G
condition on these tokens; each subclasses :class:`ImageTokenEncoderConfig` to set its own
defaults and say why on the fields.
"""

from __future__ import annotations

from typing import Literal

import pydantic
import torch
from torch import nn

from gs_core.config import Config, Depth, Resolution, Width


class ImageTokenEncoderConfig(Config):
    """Which encoder, and its size. ``kind="dinov2"`` reads ``variant``, ``pretrained``,
    ``image_size`` and ``trainable``; ``kind="vit"`` reads ``image_size``, ``patch_size``,
    ``dim``, ``depth``, ``num_heads`` and ``trainable``."""

    kind: Literal["dinov2", "vit"] = "dinov2"
    variant: str = pydantic.Field("base", description="DINOv2 size (small, base, large, giant)")
    pretrained: str | None = pydantic.Field(
        "official",
        description="DINOv2 weights: 'official' (timm/<variant>.lvd142m), a hub id, a local "
        "path, or null (random, for tests only)",
    )
    trainable: bool = pydantic.Field(False, description="fine-tune the encoder (DINOv2: frozen)")
    image_size: Resolution = pydantic.Field(
        224, description="encoder input side; DINOv2 snaps it to a multiple of its 14 px patches"
    )
    # kind="vit" only
    patch_size: Resolution = 8
    dim: Width = 192
    depth: Depth = 6
    num_heads: Depth = 3


class ImageTokenEncoder(nn.Module):
    """DINOv2 (:class:`~gs_encoders.dinov2.DinoV2Encoder`) or :class:`gs_nets.SmallViT`, per
    ``config.kind``; the parameters live under ``dino.`` or ``vit.`` in the state dict.

    The released DINOv2 weights are fetched on first use (:meth:`ensure_weights`: the first
    forward, or a caller's training or saving), never at construction, and never when a
    checkpoint that holds the encoder's weights loads first: a generator's checkpoint is
    self-contained and loads offline.
    """

    def __init__(self, config: ImageTokenEncoderConfig):
        super().__init__()
        self.config = config
        self.dino = None
        self.vit = None
        if config.kind == "dinov2":
            from gs_encoders.dinov2 import DinoV2Encoder

            self.dino = DinoV2Encoder(
                config.variant,
                pretrained=config.pretrained,
                image_size=config.image_size,
                trainable=config.trainable,
                defer=True,
            )
        else:
            from gs_nets import SmallViT

            self.vit = SmallViT(
                config.image_size, config.patch_size, config.dim, config.depth, config.num_heads
            )
            self.vit.requires_grad_(config.trainable)

    @property
    def dim(self) -> int:
        """The tokens' width ``D``."""
        return self.dino.embed_dim if self.dino is not None else self.config.dim

    def ensure_weights(self) -> None:
        """Load the released DINOv2 weights if still pending; offline without them this raises
        :class:`gs_core.errors.WeightsNotFoundError` with one line naming the hub id."""
        if self.dino is not None:
            self.dino.ensure_weights()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.dino is None:
            return self.vit(rgb)
        out = self.dino(rgb)
        return torch.cat([out.cls, out.patches], dim=1)


__all__ = ["ImageTokenEncoder", "ImageTokenEncoderConfig"]
