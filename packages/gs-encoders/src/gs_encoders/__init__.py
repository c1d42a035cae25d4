"""gs-encoders: pretrained image and shape encoders for gs3d.

- :class:`DinoV2Encoder`: DINOv2 CLS + patch tokens, via timm.
- :class:`ImageTokenEncoder`: a generator's image tokens (AGG's, DD3G's): DINOv2, or a ViT of
  DINOv2's layout trained from scratch (``gs_nets.SmallViT``) for the offline world.
- :class:`ClipEncoder`: CLIP image / text embeddings for any open_clip model, and CLIP
  similarity (registered as the ``clip_similarity`` metric of ``gs3d eval``); these need the
  ``clip`` extra (``pip install 'gs-encoders[clip]'``).
- :class:`OpenShapeEncoder`: OpenShape's point-patch transformer, loading the released
  ``OpenShape/openshape-pointbert-vitg14-rgb`` weights (Compress3D's shape embeddings).

Every encoder takes ``pretrained`` weights as a hub id (the default: the official release), a
local file or directory, or ``None`` for an explicit random initialisation; missing weights raise
:class:`gs_core.errors.WeightsNotFoundError` naming the file and how to provide it. timm and
open_clip are imported when an encoder is built, not when this package is imported, so
``import gs_encoders`` works without open_clip.
"""

from gs_encoders.clip import ClipEncoder, clip_embed_dim
from gs_encoders.clip_similarity import clip_image_similarity, clip_text_similarity
from gs_encoders.dinov2 import DINOV2_VARIANTS, DinoV2Encoder, DinoV2Output
from gs_encoders.image_tokens import ImageTokenEncoder, ImageTokenEncoderConfig
from gs_encoders.openshape import (
    NUM_POINTS,
    OPENSHAPE_HUB_ID,
    OpenShapeConfig,
    OpenShapeEncoder,
    normalize_point_cloud,
    prepare_point_cloud,
)

__version__ = "0.1.0"

__all__ = [
    "DINOV2_VARIANTS",
    "NUM_POINTS",
    "OPENSHAPE_HUB_ID",
    "ClipEncoder",
    "DinoV2Encoder",
    "DinoV2Output",
    "ImageTokenEncoder",
    "ImageTokenEncoderConfig",
    "OpenShapeConfig",
    "OpenShapeEncoder",
    "clip_embed_dim",
    "clip_image_similarity",
    "clip_text_similarity",
    "normalize_point_cloud",
    "prepare_point_cloud",
    "__version__",
]
