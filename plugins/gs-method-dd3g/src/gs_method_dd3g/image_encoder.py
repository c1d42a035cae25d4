"""DD3G's image encoder: the tokens ``I_II`` of the input image (Sec. III-B, IV-F).

``ImageEncoder(config)(rgb [B, 3, H, W] in [0, 1])`` -> ``[B, 1 + P, D]`` (CLS first, then the
patch tokens row-major). ``kind="dinov2"`` is DINOv2 through gs_encoders, its released weights
fetched on first use (``ensure_weights``: the first forward, ``training_module`` or
``save_pretrained``), never at construction and never when a checkpoint holding them loads
first, so a DD3G checkpoint is self-contained. ``kind="vit"`` is a small DINOv2-layout ViT
trained with the generator, for the offline procedural world.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gs_method_dd3g.config import ImageEncoderConfig
from gs_nets import SelfAttentionBlock

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class ScratchViT(nn.Module):
    """Patch embedding, CLS token, learned positions, pre-norm LayerScale blocks, final norm
    (DINOv2's layout at a size that trains from scratch in minutes)."""

    def __init__(self, config: ImageEncoderConfig):
        super().__init__()
        self.image_size = config.image_size
        grid = config.image_size // config.patch_size
        self.patch_embed = nn.Conv2d(3, config.dim, config.patch_size, stride=config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + grid * grid, config.dim))
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(config.dim, config.num_heads, layer_scale_init=1e-5)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        if rgb.shape[-2:] != (s, s):
            rgb = F.interpolate(rgb, (s, s), mode="bilinear", antialias=True, align_corners=False)
        x = self.patch_embed((rgb - self.mean) / self.std).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class ImageEncoder(nn.Module):
    """DINOv2 (gs_encoders) or :class:`ScratchViT`, per ``config.kind``."""

    def __init__(self, config: ImageEncoderConfig):
        super().__init__()
        self.config = config
        self._pending: str | None = None
        self.dino = None
        self.vit = None
        if config.kind == "dinov2":
            from gs_encoders import DinoV2Encoder

            self.dino = DinoV2Encoder(
                config.variant,
                pretrained=None,
                image_size=config.image_size,
                trainable=config.trainable,
            )
            self._pending = config.pretrained
            self._register_load_state_dict_pre_hook(self._weights_in_checkpoint)
        else:
            self.vit = ScratchViT(config)
            self.vit.requires_grad_(config.trainable)

    @property
    def dim(self) -> int:
        return self.dino.embed_dim if self.dino is not None else self.config.dim

    def _weights_in_checkpoint(self, state_dict, prefix, *args, **kwargs) -> None:
        if any(k.startswith(prefix + "dino.") for k in state_dict):
            self._pending = None

    def ensure_weights(self) -> None:
        """Load the released DINOv2 weights if still pending; offline without them this
        raises :class:`gs_core.errors.WeightsNotFoundError` with one line naming the hub id."""
        if self._pending is None:
            return
        from gs_encoders import DinoV2Encoder

        source = DinoV2Encoder(
            self.config.variant, pretrained=self._pending, image_size=self.config.image_size
        )
        self.dino.model.load_state_dict(source.model.state_dict())
        self._pending = None

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.dino is None:
            return self.vit(rgb)
        self.ensure_weights()
        out = self.dino(rgb)
        return torch.cat([out.cls, out.patches], dim=1)


__all__ = ["ImageEncoder", "ScratchViT"]
