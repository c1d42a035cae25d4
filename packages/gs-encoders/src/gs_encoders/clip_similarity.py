"""CLIP similarity: cosine similarity of CLIP embeddings, image-image and image-text.

The image-to-3D papers report it on renders: DreamGaussian (CLIP similarity of novel views to the
input), AGG (CLIP distance = 1 - similarity, on multi-view renders), Compress3D (render vs
ground-truth render at the same viewpoint). ``gs3d eval`` gets it through the ``clip_similarity``
metric this package registers; the functions here serve the same numbers to code. Both need the
``clip`` extra (open_clip).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

import torch

from gs_core.errors import ValidationError, WeightsNotFoundError
from gs_core.hub import resolve_pretrained
from gs_encoders.clip import ClipEncoder, import_open_clip
from gs_encoders.image_preprocessing import channels_first

# The metric's model: ViT-L/14 with OpenAI's weights, the CLIP most image-to-3D evaluations use.
DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"
ENV_MODEL = "GS3D_CLIP_MODEL"
ENV_PRETRAINED = "GS3D_CLIP_PRETRAINED"
ENV_QUICK_GELU = "GS3D_CLIP_QUICK_GELU"
# Where open_clip's table puts the default weights (OpenAI's, so QuickGELU, and open_clip's
# default preprocessing); a test checks this against the table. Resolving them here, before
# open_clip is imported (10-20 s with torchvision), makes a machine without them report the
# metric unavailable at once.
DEFAULT_HUB_REPO = "timm/vit_large_patch14_clip_224.openai"
DEFAULT_HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


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
    if importlib.util.find_spec("open_clip") is None:
        import_open_clip()  # raises the error naming the extra that installs it
    if (model, pretrained) == (DEFAULT_MODEL, DEFAULT_PRETRAINED):
        try:
            pretrained = resolve_pretrained(
                DEFAULT_HUB_REPO,
                filenames=DEFAULT_HUB_FILES,
                what=f"CLIP {model} ({DEFAULT_PRETRAINED} weights)",
            )
        except WeightsNotFoundError as e:
            raise WeightsNotFoundError(
                f"{e} For the metric, set {ENV_PRETRAINED} to that directory or file and "
                f"{ENV_QUICK_GELU}=1 (OpenAI's weights use QuickGELU)."
            ) from None
        quick_gelu = True if quick_gelu is None else quick_gelu
    return ClipEncoder(model, pretrained=pretrained, quick_gelu=quick_gelu).to(device)


def clip_similarity_metric(device: torch.device | str):
    """``MetricSpec`` factory: ``fn(pred [B, H, W, 3], target [B, H, W, 3]) -> [B]``.

    Without the ``clip`` extra it raises :class:`~gs_core.errors.GS3DError` naming it, so
    ``gs3d eval`` reports the metric unavailable.
    """
    encoder = metric_encoder(device)

    def fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = channels_first(pred, "pred").to(device)
        b = channels_first(target, "target").to(device)
        return clip_image_similarity(encoder, a, b).cpu()

    return fn


__all__ = [
    "DEFAULT_HUB_REPO",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "clip_image_similarity",
    "clip_similarity_metric",
    "clip_text_similarity",
    "metric_encoder",
]
