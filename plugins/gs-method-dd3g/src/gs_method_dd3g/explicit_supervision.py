"""Explicit supervision ``L_ES`` (Eq. 3-4): render the student's Gaussians at the quadruple's
cameras ``C`` and compare with the teacher's outputs ``OI`` by MSE and LPIPS
(``L_ES = lambda_1 MSE + lambda_2 LPIPS``, both 0.5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras
from gs_core.gaussians import Gaussians
from gs_core.rendering import render
from gs_losses import mse_loss
from gs_losses.terms import LossTerms


def explicit_supervision(
    gaussians: Gaussians,
    cameras: Cameras,
    targets: torch.Tensor,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    lpips=None,
) -> LossTerms:
    """``gaussians [B]``, ``cameras [B, V]`` at the render size, ``targets`` OI
    ``[B, V, 3, R, R]`` in [0, 1] (resized to the render size) -> ``{"es_mse"[, "es_lpips"]}``.
    """
    r = render(gaussians, cameras, background=torch.tensor(background))
    pred = r.rgb  # [B, V, H, W, 3]
    b, v, h, w, _ = pred.shape
    tgt = targets.flatten(0, 1)
    if tgt.shape[-2:] != (h, w):
        tgt = F.interpolate(tgt, (h, w), mode="bilinear", antialias=True, align_corners=False)
    tgt = tgt.reshape(b, v, 3, h, w).permute(0, 1, 3, 4, 2).to(pred.dtype)
    terms = {"es_mse": mse_loss(pred, tgt)}
    if lpips is not None:
        p = pred.flatten(0, 1).permute(0, 3, 1, 2).float()
        t = tgt.flatten(0, 1).permute(0, 3, 1, 2).float()
        terms["es_lpips"] = lpips(p, t).mean()
    return terms


__all__ = ["explicit_supervision"]
