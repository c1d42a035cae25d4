"""Regularisers: DD3G's opacity term and the VAE KL term to a standard normal."""

from __future__ import annotations

from typing import Literal

import torch

from gs_core.errors import ValidationError
from gs_losses.terms import LossTerms


def opacity_regularizer(opacities: torch.Tensor, eps: float = 1e-6) -> LossTerms:
    """DD3G's opacity term ``L_on = -1/M sum_i log(alpha_i)`` (DD3G eq. 7).

    It pushes every Gaussian towards opaque, against generators that hide surplus Gaussians by
    making them transparent. ``eps`` is added inside the log so a fully transparent Gaussian
    gives a finite loss and a finite, non-zero gradient (``1 / (alpha + eps)``) instead of
    ``inf``; a clamp would cut the gradient exactly where it is needed.

    Args:
        opacities: ``[..., M]`` (any shape) in ``[0, 1]``; the mean runs over all elements.

    Returns:
        ``{"opacity": -mean(log(alpha + eps))}``.
    """
    if not isinstance(opacities, torch.Tensor) or not opacities.is_floating_point():
        raise ValidationError(
            "opacity_regularizer(opacities)", "a float tensor in [0, 1]", type(opacities).__name__
        )
    if opacities.numel() == 0:
        raise ValidationError(
            "opacity_regularizer(opacities)", "at least one opacity", "an empty tensor"
        )
    return {"opacity": -torch.log(opacities + eps).mean()}


def kl_divergence(
    mean: torch.Tensor,
    logvar: torch.Tensor,
    reduction: Literal["batch_mean", "mean", "none"] = "batch_mean",
) -> LossTerms:
    """``D_KL(N(mu, diag(sigma^2)) || N(0, I))`` of a diagonal Gaussian posterior (Compress3D eq. 12).

    Per element ``0.5 (mu^2 + sigma^2 - 1 - log sigma^2)``, summed over every non-batch dim.
    (Compress3D's eq. 12 prints ``- lambda_kl D_KL``; the penalty is added, as its text says:
    it keeps the triplane latent close to N(0, 1).)

    Args:
        mean, logvar: ``[B, ...]`` posterior mean and log-variance ``log sigma^2``.
        reduction: ``"batch_mean"`` (sum over dims, mean over the batch, as latent-diffusion
            VAEs), ``"mean"`` (mean over all elements) or ``"none"`` (``[B]``).

    Returns:
        ``{"kl": ...}``.
    """
    for field, t in (("mean", mean), ("logvar", logvar)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 1:
            raise ValidationError(
                f"kl_divergence({field})", "a float tensor [B, ...]", type(t).__name__
            )
    if mean.shape != logvar.shape:
        raise ValidationError(
            "kl_divergence(logvar)",
            f"shape {tuple(mean.shape)} like mean",
            f"{tuple(logvar.shape)}",
        )
    elem = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)
    if reduction == "mean":
        return {"kl": elem.mean()}
    per_sample = elem.flatten(1).sum(dim=1) if elem.ndim > 1 else elem
    if reduction == "batch_mean":
        return {"kl": per_sample.mean()}
    if reduction == "none":
        return {"kl": per_sample}
    raise ValidationError(
        "kl_divergence(reduction)", "'batch_mean', 'mean' or 'none'", repr(reduction)
    )
