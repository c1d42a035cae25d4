"""gs-priors: pretrained diffusion models as priors for gs3d methods.

* :class:`DiffusionPrior` - the protocol score distillation (``gs_losses.guidance``) consumes,
  and :class:`Condition`, the batch-first conditioning dataclass every prior's conditions
  derive from; :class:`DelegatingPrior`, the base of wrappers that change one member;
* :class:`DiffusersPrior` - shared machinery of priors backed by a diffusers VAE + U-Net;
* :class:`StableDiffusionGuidance` (text) and :class:`Zero123Guidance` (image + camera);
* :func:`lora_student` / :func:`copy_student` - trainable student priors for VSD;
* :mod:`gs_priors.tiny` - tiny random checkpoints for CPU tests.

``import gs_priors`` needs only torch; diffusers, transformers and peft load when a prior is
built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gs_core.lazy_exports import lazy_exports
from gs_priors.prior import (
    PREDICTION_TYPES,
    Condition,
    DelegatingPrior,
    DiffusionPrior,
    check_prior,
)

_LAZY = {
    "DiffusersPrior": "gs_priors.diffusers_prior",
    "StableDiffusionGuidance": "gs_priors.stable_diffusion",
    "TextCondition": "gs_priors.stable_diffusion",
    "Zero123Guidance": "gs_priors.zero123",
    "Zero123Condition": "gs_priors.zero123",
    "Zero123Reference": "gs_priors.zero123",
    "zero123_camera": "gs_priors.zero123",
    "LoRAStudent": "gs_priors.students",
    "lora_student": "gs_priors.students",
    "copy_student": "gs_priors.students",
    "resolve_model_dir": "gs_priors.model_dir",
    "Zero123PlusGuidance": "gs_priors.zero123plus",
    "Zero123PlusCondition": "gs_priors.zero123plus",
    "sample": "gs_priors.samplers",
    "refine": "gs_priors.samplers",
    "GuidedDenoiser": "gs_priors.samplers",
    "SampleResult": "gs_priors.samplers",
    "ImageDreamGuidance": "gs_priors.imagedream",
    "ImageDreamCondition": "gs_priors.imagedream",
    "ImageDreamReference": "gs_priors.imagedream",
    "MultiViewUNetModel": "gs_priors.multiview_unet",
}

if TYPE_CHECKING:
    from gs_priors.diffusers_prior import DiffusersPrior
    from gs_priors.imagedream import (
        ImageDreamCondition,
        ImageDreamGuidance,
        ImageDreamReference,
    )
    from gs_priors.model_dir import resolve_model_dir
    from gs_priors.multiview_unet import MultiViewUNetModel
    from gs_priors.samplers import GuidedDenoiser, SampleResult, refine, sample
    from gs_priors.stable_diffusion import StableDiffusionGuidance, TextCondition
    from gs_priors.students import LoRAStudent, copy_student, lora_student
    from gs_priors.zero123 import (
        Zero123Condition,
        Zero123Guidance,
        Zero123Reference,
        zero123_camera,
    )
    from gs_priors.zero123plus import Zero123PlusCondition, Zero123PlusGuidance

__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "PREDICTION_TYPES",
    "Condition",
    "DelegatingPrior",
    "DiffusersPrior",
    "DiffusionPrior",
    "GuidedDenoiser",
    "ImageDreamCondition",
    "ImageDreamGuidance",
    "ImageDreamReference",
    "LoRAStudent",
    "MultiViewUNetModel",
    "SampleResult",
    "StableDiffusionGuidance",
    "TextCondition",
    "Zero123Condition",
    "Zero123Guidance",
    "Zero123PlusCondition",
    "Zero123PlusGuidance",
    "Zero123Reference",
    "__version__",
    "check_prior",
    "copy_student",
    "lora_student",
    "refine",
    "resolve_model_dir",
    "sample",
    "zero123_camera",
]
