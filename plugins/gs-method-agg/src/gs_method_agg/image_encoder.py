"""AGG's image encoder (Sec. 3.2, "Encoding Input RGB Information"): global [CLS] token and
patch tokens of the input view.

``ImageEncoder(config)(rgb [B, 3, H, W] in [0, 1])`` -> ``(cls [B, D], tokens [B, 1 + P, D])``;
``tokens`` holds the CLS token first, then the patch tokens: the paper feeds the cross-attention
layers "DINOv2 features" and uses patch-wise features besides the global token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_agg.config import ImageEncoderConfig
from gs_nets import SelfAttentionBlock

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class SmallViT(nn.Module):
    """A DINOv2-architecture ViT (patch embedding, CLS token, learned positions, pre-norm blocks
    with LayerScale and GELU MLPs, final LayerNorm) trained with the generator."""

    def __init__(self, config: ImageEncoderConfig):
        super().__init__()
        c = config
        self.image_size = c.image_size
        self.patch_embed = nn.Conv2d(3, c.dim, kernel_size=c.patch_size, stride=c.patch_size)
        n = (c.image_size // c.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n, c.dim) * 0.02)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(c.dim, c.num_heads, layer_scale_init=1e-5) for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if rgb.shape[-2:] != (s, s):
            rgb = F.interpolate(
                rgb, size=(s, s), mode="bilinear", antialias=True, align_corners=False
            )
        x = self.patch_embed((rgb - self.mean) / self.std).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class ImageEncoder(nn.Module):
    """DINOv2 (gs-encoders, the paper) or :class:`SmallViT`, per ``config.kind``.

    The released DINOv2 weights are fetched on first use (first forward, ``training_module`` or
    ``save_pretrained``), not at construction, and never when a checkpoint that holds the
    encoder's weights is loaded first: an AGG checkpoint is self-contained and loads offline.
    """

    def __init__(self, config: ImageEncoderConfig):
        super().__init__()
        self.config = config
        self._pending: str | None = None
        if config.kind == "dinov2":
            from gs_encoders import DinoV2Encoder

            self.dino = DinoV2Encoder(
                config.variant,
                pretrained=None,
                image_size=config.image_size,
                trainable=config.trainable,
            )
            self._pending = config.pretrained
            self._register_load_state_dict_pre_hook(self._weights_from_checkpoint)
            self.vit = None
        else:
            self.dino = None
            self.vit = SmallViT(config)
            self.vit.requires_grad_(config.trainable)

    def _weights_from_checkpoint(self, state_dict, prefix, *args, **kwargs) -> None:
        if any(k.startswith(prefix + "dino.") for k in state_dict):
            self._pending = None

    def ensure_weights(self) -> None:
        """Load the pretrained DINOv2 weights if they are still pending (raises
        :class:`gs_core.errors.WeightsNotFoundError` naming the file when they are absent)."""
        if self._pending is None:
            return
        from gs_encoders import DinoV2Encoder

        source = DinoV2Encoder(
            self.config.variant, pretrained=self._pending, image_size=self.config.image_size
        )
        with torch.no_grad():
            for dst, src in zip(
                self.dino.model.state_dict().values(),
                source.model.state_dict().values(),
                strict=True,
            ):
                dst.copy_(src)
        self._pending = None

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.dino is not None:
            self.ensure_weights()
            out = self.dino(rgb)
            tokens = torch.cat([out.cls, out.patches], dim=1)
        else:
            tokens = self.vit(rgb)
        return tokens[:, 0], tokens
