"""CLIP similarity: cosine similarity of CLIP embeddings, image-image and image-text.

The image-to-3D papers report it on renders: DreamGaussian (CLIP similarity of novel views to the
input), AGG (CLIP distance = 1 - similarity, on multi-view renders), Compress3D (render vs
ground-truth render at the same viewpoint). ``gs3d eval`` gets it through the ``clip_similarity``
metric this package registers; the functions here serve the same numbers to code. Both need the
``clip`` extra (open_clip).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from gs_core.errors import ValidationError
from gs_encoders.clip import ClipEncoder, import_open_clip
from gs_encoders.image_preprocessing import channels_first

# The metric's model: ViT-L/14 with OpenAI's weights, the CLIP most image-to-3D evaluations use.
DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"
ENV_MODEL = "GS3D_CLIP_MODEL"
ENV_PRETRAINED = "GS3D_CLIP_PRETRAINED"
ENV_QUICK_GELU = "GS3D_CLIP_QUICK_GELU"


@torch.no_grad()
def clip_image_similarity(
    encoder: ClipEncoder, images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int = 32
) -> torch.Tensor:
    """Cosine similarity ``[B]`` of the CLIP embeddings of paired ``images [B, 3, H, W]``.

    ``images_b`` may hold one image, compared with every image of ``images_a``.
    """
    if images_b.shape[0] not in (1, images_a.shape[0]):
        raise ValidationError(
            "images_b", f"1 or {images_a.shape[0]} images", str(images_b.shape[0])
        )
    ea = encoder.encode_image(images_a, batch_size=batch_size)
    eb = encoder.encode_image(images_b, batch_size=batch_size)
    return (ea * eb).sum(-1)


@torch.no_grad()
def clip_text_similarity(
    encoder: ClipEncoder, images: torch.Tensor, texts: Sequence[str], batch_size: int = 32
) -> torch.Tensor:
    """Cosine similarity ``[B]`` of ``images [B, 3, H, W]`` to ``texts`` (one per image, or one)."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if len(texts) not in (1, images.shape[0]):
        raise ValidationError("texts", f"1 or {images.shape[0]} strings", str(len(texts)))
    ei = encoder.encode_image(images, batch_size=batch_size)
    et = encoder.encode_text(texts)
    return (ei * et).sum(-1)


def metric_encoder(device: torch.device | str = "cpu") -> ClipEncoder:
    """The encoder the registered metric uses: real weights only.

    ``GS3D_CLIP_MODEL`` / ``GS3D_CLIP_PRETRAINED`` (a tag or a local file / directory) and
    ``GS3D_CLIP_QUICK_GELU=1`` (OpenAI weights from a bare file) choose other weights. Missing
    weights raise :class:`~gs_core.errors.WeightsNotFoundError`; there is no random fallback.
    """
    model = os.environ.get(ENV_MODEL, DEFAULT_MODEL)
    pretrained = os.environ.get(ENV_PRETRAINED, DEFAULT_PRETRAINED)
    if not pretrained or pretrained.lower() in ("none", "null", "random"):
        raise ValidationError(
            ENV_PRETRAINED,
            "a pretrained tag or a weights path (CLIP similarity needs real weights)",
            pretrained,
        )
    quick = os.environ.get(ENV_QUICK_GELU)
    quick_gelu = None if quick is None else quick.strip().lower() in ("1", "true", "yes")
    return ClipEncoder(model, pretrained=pretrained, quick_gelu=quick_gelu).to(device)


def clip_similarity_metric(device: torch.device | str):
    """``MetricSpec`` factory: ``fn(pred [B, H, W, 3], target [B, H, W, 3]) -> [B]``.

    Without the ``clip`` extra it raises :class:`~gs_core.errors.GS3DError` naming it, so
    ``gs3d eval`` reports the metric unavailable.
    """
    import_open_clip()
    encoder = metric_encoder(device)

    def fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = channels_first(pred, "pred").to(device)
        b = channels_first(target, "target").to(device)
        return clip_image_similarity(encoder, a, b).cpu()

    return fn


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "clip_image_similarity",
    "clip_similarity_metric",
    "clip_text_similarity",
    "metric_encoder",
]
