"""gs-losses: the objectives of the gs3d methods.

* image: :func:`l1_loss`, :func:`mse_loss` (masked), :func:`rgba_loss` (AGG's ``L_rgba``),
  :func:`psnr`, :func:`ssim` / :func:`ssim_loss`, :class:`LPIPS` (VGG / AlexNet);
* 3D: :func:`chamfer_distance` (chunked), :func:`attribute_chamfer` (AGG section 3.4.2);
* regularisers: :func:`opacity_regularizer` (DD3G eq. 7), :func:`kl_divergence` (Compress3D);
* score distillation: :class:`DiffusionPrior`, :class:`SDS`, :class:`VSD`,
  :class:`StableDiffusionGuidance`, :class:`Zero123Guidance`.

Losses return dicts of named terms; :func:`weighted_sum` combines them with ``lambda_*`` weights.
The diffusers-backed priors and LPIPS import their heavy dependencies on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gs_losses.chamfer import (
    attribute_chamfer,
    chamfer_distance,
    gaussian_attributes,
    nearest_neighbors,
)
from gs_losses.guidance import (
    SDS,
    VSD,
    Condition,
    DiffusionPrior,
    SDSConfig,
    TimestepSchedule,
    VSDConfig,
)
from gs_losses.image import l1_loss, mse_loss, psnr, rgba_loss
from gs_losses.regularizers import kl_divergence, opacity_regularizer
from gs_losses.structural import ssim, ssim_loss, ssim_map
from gs_losses.terms import prefixed, weighted_sum

_LAZY = {
    "LPIPS": "gs_losses.perceptual",
    "StableDiffusionGuidance": "gs_losses.guidance.stable_diffusion",
    "TextCondition": "gs_losses.guidance.stable_diffusion",
    "Zero123Guidance": "gs_losses.guidance.zero123",
    "Zero123Condition": "gs_losses.guidance.zero123",
    "Zero123Reference": "gs_losses.guidance.zero123",
    "lora_student": "gs_losses.guidance.students",
    "copy_student": "gs_losses.guidance.students",
}

if TYPE_CHECKING:
    from gs_losses.guidance.stable_diffusion import StableDiffusionGuidance, TextCondition
    from gs_losses.guidance.students import copy_student, lora_student
    from gs_losses.guidance.zero123 import Zero123Condition, Zero123Guidance, Zero123Reference
    from gs_losses.perceptual import LPIPS

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LPIPS",
    "SDS",
    "VSD",
    "Condition",
    "DiffusionPrior",
    "SDSConfig",
    "StableDiffusionGuidance",
    "TextCondition",
    "TimestepSchedule",
    "VSDConfig",
    "Zero123Condition",
    "Zero123Guidance",
    "Zero123Reference",
    "attribute_chamfer",
    "chamfer_distance",
    "copy_student",
    "gaussian_attributes",
    "kl_divergence",
    "l1_loss",
    "lora_student",
    "mse_loss",
    "nearest_neighbors",
    "opacity_regularizer",
    "prefixed",
    "psnr",
    "rgba_loss",
    "ssim",
    "ssim_loss",
    "ssim_map",
    "weighted_sum",
]
