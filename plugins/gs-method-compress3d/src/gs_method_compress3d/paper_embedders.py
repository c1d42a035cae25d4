"""The paper's embedders (Sec. 3.2): OpenCLIP ViT-bigG-14 image embeddings and OpenShape
PointBERT (ViT-bigG-14-aligned) shape embeddings, 1280-d, through gs-encoders.

Their weights are published separately (OpenCLIP ``laion2b_s39b_b160k``, 2.5B parameters;
``OpenShape/openshape-pointbert-vitg14-rgb``), so they are not part of a Compress3D checkpoint:
they load on first use from the hub id or local path in the config and fail at once with
gs-core's one-line :class:`~gs_core.errors.WeightsNotFoundError` when absent. The paper does not
say whether it normalises the embeddings; the scales 0.25 (shape) and 0.85 (image) it uses "to
make their variance approximately 1" fit unnormalised outputs, so they are used unnormalised.
"""

from __future__ import annotations

import torch
from torch import nn

from gs_method_compress3d.config import EmbeddingConfig


def load_image_encoder(cfg: EmbeddingConfig, device: torch.device | str = "cpu") -> nn.Module:
    """OpenCLIP image encoder (``ClipEncoder``; needs ``gs-encoders[clip]``)."""
    from gs_encoders.clip import ClipEncoder

    return ClipEncoder(cfg.clip_model, pretrained=cfg.clip_pretrained, device=device)


def load_shape_encoder(cfg: EmbeddingConfig, device: torch.device | str = "cpu") -> nn.Module:
    """OpenShape PointBERT shape encoder."""
    from gs_encoders.openshape import OpenShapeEncoder

    return OpenShapeEncoder.from_pretrained(cfg.openshape, device=device)


def clip_image_embedding(encoder: nn.Module, rgb: torch.Tensor) -> torch.Tensor:
    """``rgb [B, 3, H, W]`` in [0, 1] -> unnormalised image embeddings ``[B, 1280]``."""
    return encoder.encode_image(rgb, normalized=False)


def openshape_embedding(
    encoder: nn.Module,
    xyz: torch.Tensor,
    rgb: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Coloured clouds ``xyz, rgb [B, N, 3]`` (y up, as OpenShape) -> ``[B, 1280]``."""
    return encoder.encode(xyz, rgb, generator=generator)


__all__ = [
    "clip_image_embedding",
    "load_image_encoder",
    "load_shape_encoder",
    "openshape_embedding",
]
