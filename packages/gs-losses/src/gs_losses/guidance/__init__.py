"""Score distillation over diffusion priors: the ``DiffusionPrior`` protocol, SDS and VSD, and
diffusers-backed Stable Diffusion and Zero123 priors.

``import gs_losses.guidance`` is light; the diffusers-backed classes load diffusers and
transformers on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gs_losses.guidance.noise import add_noise, guided_noise, prediction_target, to_epsilon
from gs_losses.guidance.prior import Condition, DiffusionPrior
from gs_losses.guidance.sds import (
    SDS,
    ScoreDistillationOutput,
    SDSConfig,
    sds_weight,
    surrogate_loss,
)
from gs_losses.guidance.timesteps import TimestepSchedule
from gs_losses.guidance.vsd import VSD, VSDConfig

_LAZY = {
    "DiffusersPrior": "gs_losses.guidance.diffusers_prior",
    "StableDiffusionGuidance": "gs_losses.guidance.stable_diffusion",
    "TextCondition": "gs_losses.guidance.stable_diffusion",
    "Zero123Guidance": "gs_losses.guidance.zero123",
    "Zero123Condition": "gs_losses.guidance.zero123",
    "Zero123Reference": "gs_losses.guidance.zero123",
    "zero123_camera": "gs_losses.guidance.zero123",
    "LoRAStudent": "gs_losses.guidance.students",
    "lora_student": "gs_losses.guidance.students",
    "copy_student": "gs_losses.guidance.students",
    "resolve_model_dir": "gs_losses.guidance.hub",
}

if TYPE_CHECKING:
    from gs_losses.guidance.diffusers_prior import DiffusersPrior
    from gs_losses.guidance.hub import resolve_model_dir
    from gs_losses.guidance.stable_diffusion import StableDiffusionGuidance, TextCondition
    from gs_losses.guidance.students import LoRAStudent, copy_student, lora_student
    from gs_losses.guidance.zero123 import (
        Zero123Condition,
        Zero123Guidance,
        Zero123Reference,
        zero123_camera,
    )


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SDS",
    "VSD",
    "Condition",
    "DiffusersPrior",
    "DiffusionPrior",
    "LoRAStudent",
    "SDSConfig",
    "ScoreDistillationOutput",
    "StableDiffusionGuidance",
    "TextCondition",
    "TimestepSchedule",
    "VSDConfig",
    "Zero123Condition",
    "Zero123Guidance",
    "Zero123Reference",
    "add_noise",
    "copy_student",
    "guided_noise",
    "lora_student",
    "prediction_target",
    "resolve_model_dir",
    "sds_weight",
    "surrogate_loss",
    "to_epsilon",
    "zero123_camera",
]
