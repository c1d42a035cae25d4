"""Peak signal-to-noise ratio, ``PSNR = 10 log10(R^2 / MSE)`` per image."""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError

# Identical images have MSE 0 and infinite PSNR, which poisons averages over a test set; the
# floor caps PSNR at 100 dB for data range 1, far above any real reconstruction.
MSE_FLOOR = 1e-10


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    for field, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            got = str(t.dtype) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValidationError(f"{name}({field})", "a floating-point tensor", got)
    if pred.shape != target.shape:
        raise ValidationError(
            f"{name}(target)", f"shape {tuple(pred.shape)} like pred", f"{tuple(target.shape)}"
        )
    if pred.ndim < 2:
        raise ValidationError(
            f"{name}(pred)", "a batch [B, ...] with at least 2 dims", f"shape {tuple(pred.shape)}"
        )


def mse_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every dim but the first: ``[B, ...] -> [B]``."""
    _check_pair(pred, target, "mse_per_image")
    diff = (pred.float() - target.float()).flatten(1)
    return diff.square().mean(dim=1)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB of each image of a batch.

    Args:
        pred, target: ``[B, H, W, 3]`` (any layout with the batch first) in ``[0, data_range]``.
        data_range: the peak value ``R``.

    Returns:
        ``[B]`` float32, ``10 log10(R^2 / max(MSE, 1e-10))``.
    """
    mse = mse_per_image(pred, target).clamp_min(MSE_FLOOR)
    return 10.0 * torch.log10(data_range**2 / mse)
