"""Does a teacher use its camera? The denoising error with the true relative cameras against the
mirrored ones (``d_azimuth -> -d_azimuth``) on the same batch, noise and timesteps.

A teacher that ignores its camera input scores the same under both and can only draw an average
of the two sides of an object; the sampling checks of :mod:`gs_priors.teachers.evaluation` then
find its pose at chance. This measure needs no sampling, so it can follow training cheaply.
Zero123++ has no camera input (its six poses are places in the grid) and is not measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from gs_core.errors import ValidationError
from gs_priors.forward_process import add_noise
from gs_priors.teachers.training import conditioned_batch, implied_x0

CAMERA_PRIORS = ("zero123", "imagedream")


@torch.no_grad()
def camera_gap(
    prior, name: str, batch, timesteps: Sequence[int] = (500, 800, 950), seed: int = 0
) -> dict[int, dict[str, float]]:
    """Per timestep: the mean squared error of the ``x0`` the prior implies, with the batch's
    cameras (``true``) and with mirrored ones (``mirrored``), and the share of rows where the
    true cameras do better (``true_better``; 0.5 = the camera is ignored). ``batch``: a
    :data:`~gs_priors.teachers.data.BATCHES` batch of ``name``; rows whose azimuth mirrors onto
    itself (0 or 180 degrees) are left out."""
    if name not in CAMERA_PRIORS:
        raise ValidationError(
            "prior", f"one of {CAMERA_PRIORS} (a prior with a camera input)", name
        )
    x0, cond, _, per = conditioned_batch(prior, name, batch)
    mirrored = dataclasses.replace(batch, d_azimuth=-batch.d_azimuth)
    _, cond_m, _, _ = conditioned_batch(prior, name, mirrored)
    d = batch.d_azimuth.flatten().to(x0.device)
    keep = (d.abs() > 1.0) & ((d.abs() - 180.0).abs() > 1.0)
    if not bool(keep.any()):
        raise ValidationError("batch", "relative azimuths other than 0 and 180 degrees", "none")
    gen = torch.Generator(x0.device).manual_seed(seed)
    out = {}
    for t_value in timesteps:
        objects = x0.shape[0] // per
        t = torch.full((objects,), int(t_value), device=x0.device).repeat_interleave(per)
        noise = torch.randn(x0.shape, generator=gen, device=x0.device)
        xt = add_noise(x0, noise, t, prior.alphas_cumprod)

        def x0_error(c, xt=xt, t=t):
            return (implied_x0(prior, xt, t, c) - x0).pow(2).flatten(1).mean(1)[keep]

        true, mirror = x0_error(cond), x0_error(cond_m)
        out[int(t_value)] = {
            "true": float(true.mean()),
            "mirrored": float(mirror.mean()),
            "true_better": float((true < mirror).float().mean()),
        }
    return out


__all__ = ["CAMERA_PRIORS", "camera_gap"]
