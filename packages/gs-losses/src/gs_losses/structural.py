"""SSIM as a metric and as a loss (the implementation lives in :mod:`gs_core.metrics`)."""

from __future__ import annotations

from typing import Literal

import torch

from gs_core.metrics import ssim, ssim_map
from gs_losses.terms import LossTerms

__all__ = ["ssim", "ssim_loss", "ssim_map"]


def ssim_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    padding: Literal["valid", "same"] = "same",
    window_size: int = 11,
    sigma: float = 1.5,
) -> LossTerms:
    """D-SSIM ``1 - mean SSIM`` of channels-first images ``[B, C, H, W]`` in ``[0, 1]``.

    ``padding="same"`` (default here) keeps border pixels in the loss, as 3DGS training does;
    the reported metric :func:`ssim` uses ``"valid"``.

    Returns:
        ``{"ssim": 1 - mean(SSIM map)}``.
    """
    m = ssim_map(pred, target, window_size=window_size, sigma=sigma, padding=padding)
    return {"ssim": 1.0 - m.mean()}
