"""Score distillation over diffusion priors: SDS and VSD, noising, prediction-type conversions,
classifier-free guidance and timestep schedules.

The priors themselves (the ``DiffusionPrior`` protocol, Stable Diffusion, Zero123, VSD
students) are models and live in gs-priors; this subpackage needs it installed
(``pip install 'gs-losses[guidance]'``). ``import gs_losses`` works without it.
"""

from __future__ import annotations

from gs_core.errors import GS3DError

try:
    import gs_priors  # noqa: F401
except ModuleNotFoundError as e:
    if e.name != "gs_priors":
        raise
    raise GS3DError(
        "gs_losses.guidance (SDS / VSD) needs the gs-priors package, which is not installed "
        "(pip install 'gs-losses[guidance]')"
    ) from None

from gs_losses.guidance.noise import add_noise, guided_noise, prediction_target, to_epsilon
from gs_losses.guidance.sds import (
    SDS,
    ScoreDistillationOutput,
    SDSConfig,
    sds_weight,
    surrogate_loss,
)
from gs_losses.guidance.timesteps import TimestepSchedule
from gs_losses.guidance.vsd import VSD, VSDConfig

__all__ = [
    "SDS",
    "VSD",
    "SDSConfig",
    "ScoreDistillationOutput",
    "TimestepSchedule",
    "VSDConfig",
    "add_noise",
    "guided_noise",
    "prediction_target",
    "sds_weight",
    "surrogate_loss",
    "to_epsilon",
]
