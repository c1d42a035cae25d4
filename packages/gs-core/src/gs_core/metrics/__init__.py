"""Light, differentiable image metrics shared by the evaluation harness and the losses.

Both metrics take images in ``[0, 1]``. The plain forms :func:`psnr` and :func:`ssim` work on
channels-last batches ``[B, H, W, C]`` (the evaluation convention) and return one value per
image ``[B]``; :func:`ssim_map` is the channels-first ``[B, C, H, W]`` form losses build on.
"""

from gs_core.metrics.psnr import mse_per_image, psnr
from gs_core.metrics.ssim import gaussian_window, ssim, ssim_map

__all__ = ["gaussian_window", "mse_per_image", "psnr", "ssim", "ssim_map"]
