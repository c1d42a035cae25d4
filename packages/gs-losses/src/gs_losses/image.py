"""Image reconstruction losses: L1 / MSE, optionally masked, and the RGBA loss.

``rgba_loss`` is AGG's ``L_rgba`` (section 3.2, eq. 4: L1 on the rendered RGB and on the
foreground alpha) and, with ``kind="mse"``, DreamGaussian's reference-view loss
``MSE(rgb) + MSE(alpha)`` (weighted 10000 / 1000 in its config).
"""

from __future__ import annotations

from typing import Literal

import torch

from gs_core.errors import ValidationError
from gs_core.metrics import psnr
from gs_losses.terms import LossTerms

__all__ = ["l1_loss", "mse_loss", "psnr", "rgba_loss"]


def _check(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, name: str) -> None:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValidationError(
            f"{name}", "tensors pred and target", f"{type(pred).__name__}, {type(target).__name__}"
        )
    if pred.shape != target.shape:
        raise ValidationError(
            f"{name}(target)", f"shape {tuple(pred.shape)} like pred", f"{tuple(target.shape)}"
        )
    if mask is not None:
        try:
            torch.broadcast_shapes(mask.shape, pred.shape)
        except RuntimeError:
            raise ValidationError(
                f"{name}(mask)",
                f"a shape broadcastable to {tuple(pred.shape)}",
                f"{tuple(mask.shape)}",
            ) from None


def _reduce(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return err.mean()
    weight = mask.to(err.dtype).expand_as(err)
    # Mean over the masked elements; an all-zero mask gives 0, not NaN.
    return (err * weight).sum() / weight.sum().clamp_min(1e-8)


def l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error; with ``mask`` (broadcastable, values in [0, 1]) the mask-weighted mean."""
    _check(pred, target, mask, "l1_loss")
    return _reduce((pred - target).abs(), mask)


def mse_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error; with ``mask`` (broadcastable, values in [0, 1]) the mask-weighted mean."""
    _check(pred, target, mask, "mse_loss")
    return _reduce((pred - target).square(), mask)


def rgba_loss(
    rgb: torch.Tensor,
    alpha: torch.Tensor,
    target_rgb: torch.Tensor,
    target_alpha: torch.Tensor,
    kind: Literal["l1", "mse"] = "l1",
    mask: torch.Tensor | None = None,
) -> LossTerms:
    """Reconstruction of rendered colour and alpha.

    Args:
        rgb, target_rgb: ``[..., 3, H, W]`` or ``[..., H, W, 3]`` (any layout, the same for both).
        alpha, target_alpha: the matching alpha, e.g. ``[..., 1, H, W]`` or ``[..., H, W]``.
        kind: ``"l1"`` (AGG's ``L_rgba``) or ``"mse"`` (DreamGaussian's reference-view loss).
        mask: optional weight on the RGB term (e.g. the object mask for DreamGaussian stage 2),
            broadcastable to ``rgb``.

    Returns:
        ``{"rgb": ..., "alpha": ...}``, weighted by the method's ``lambda_rgb`` / ``lambda_alpha``.
    """
    if kind not in ("l1", "mse"):
        raise ValidationError("rgba_loss(kind)", "'l1' or 'mse'", repr(kind))
    fn = l1_loss if kind == "l1" else mse_loss
    return {"rgb": fn(rgb, target_rgb, mask), "alpha": fn(alpha, target_alpha)}
