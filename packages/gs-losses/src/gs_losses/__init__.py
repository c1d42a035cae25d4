"""gs-losses: the objectives of the gs3d methods.

* image: :func:`l1_loss`, :func:`mse_loss` (masked), :func:`rgba_loss` (AGG's ``L_rgba``),
  :func:`psnr`, :func:`ssim` / :func:`ssim_loss`, :class:`LPIPS` (VGG / AlexNet);
* 3D: :func:`chamfer_distance` (chunked), :func:`attribute_chamfer` (AGG section 3.4.2);
* regularisers: :func:`opacity_regularizer` (DD3G eq. 7), :func:`kl_divergence` (Compress3D);
* score distillation: :class:`SDS`, :class:`VSD` and their configs, over the diffusion priors
  of gs-priors (the ``guidance`` extra: ``pip install 'gs-losses[guidance]'``).

Losses return dicts of named terms; :func:`weighted_sum` combines them with ``lambda_*`` weights.
LPIPS and score distillation import their dependencies on first access; ``import gs_losses``
needs neither lpips nor gs-priors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gs_core.lazy_exports import lazy_exports
from gs_losses.chamfer import attribute_chamfer, chamfer_distance, gaussian_attributes
from gs_losses.image import l1_loss, mse_loss, psnr, rgba_loss
from gs_losses.regularizers import kl_divergence, opacity_regularizer
from gs_losses.structural import ssim, ssim_loss, ssim_map
from gs_losses.terms import prefixed, weighted_sum

# Score distillation needs gs-priors (the `guidance` extra); nothing else here does.
_LAZY = {
    "LPIPS": "gs_losses.perceptual",
    "SDS": "gs_losses.guidance",
    "SDSConfig": "gs_losses.guidance",
    "TimestepSchedule": "gs_losses.guidance",
    "VSD": "gs_losses.guidance",
    "VSDConfig": "gs_losses.guidance",
}

if TYPE_CHECKING:
    from gs_losses.guidance import SDS, VSD, SDSConfig, TimestepSchedule, VSDConfig
    from gs_losses.perceptual import LPIPS

__version__ = "0.1.0"


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "LPIPS",
    "SDS",
    "VSD",
    "SDSConfig",
    "TimestepSchedule",
    "VSDConfig",
    "attribute_chamfer",
    "chamfer_distance",
    "gaussian_attributes",
    "kl_divergence",
    "l1_loss",
    "mse_loss",
    "opacity_regularizer",
    "prefixed",
    "psnr",
    "rgba_loss",
    "ssim",
    "ssim_loss",
    "ssim_map",
    "weighted_sum",
]
