"""Classifier-free guidance, with the forward noising and the conversions between prediction
types it rests on (``add_noise``, ``to_epsilon``, ``prediction_target``: gs-priors'
:mod:`gs_priors.forward_process`, the one place they live, re-exported here).

Classifier-free guidance (Ho & Salimans 2022), generalised to several conditions as in
composable diffusion (Liu et al. 2022): ``eps = eps_u + sum_i s_i (eps_i - eps_u)``. The weights
sum to one over ``(eps_u, eps_1..k)``, so guiding raw v or x0 outputs and converting afterwards
gives the same epsilon; guidance is applied in epsilon space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gs_core.errors import ValidationError
from gs_priors.forward_process import add_noise, prediction_target, to_epsilon
from gs_priors.prior import Condition, DiffusionPrior


def _as_lists(
    conditions: Condition | Sequence[Condition], guidance_scale: float | Sequence[float]
) -> tuple[list[Condition], list[float]]:
    conds = [conditions] if isinstance(conditions, Condition) else list(conditions)
    if not conds or not all(isinstance(c, Condition) for c in conds):
        raise ValidationError(
            "conditions", "a Condition or a non-empty sequence of them", repr(type(conditions))
        )
    if isinstance(guidance_scale, int | float):
        scales = [float(guidance_scale)] * len(conds)
    else:
        scales = [float(s) for s in guidance_scale]
    if len(scales) != len(conds):
        raise ValidationError(
            "guidance_scale", f"one scale per condition ({len(conds)})", f"{len(scales)} scales"
        )
    return conds, scales


def guided_noise(
    prior: DiffusionPrior,
    latents_t: torch.Tensor,
    t: torch.Tensor,
    conditions: Condition | Sequence[Condition],
    guidance_scale: float | Sequence[float],
    batched: bool = True,
) -> torch.Tensor:
    """Classifier-free-guided noise prediction ``eps_u + sum_i s_i (eps_i - eps_u)``.

    Args:
        latents_t: ``[B, C, h, w]`` noisy latents; t: ``[B]`` integer timesteps.
        conditions: one condition or several (batch 1 or ``B`` each); several are combined
            compositionally, each with its own scale.
        guidance_scale: one scale for all conditions or one per condition. A single condition
            with scale 1 skips the unconditional pass (plain conditional prediction).
        batched: run ``[uncond, cond_1..k]`` as one forward (faster) or one forward each
            (less memory).

    Returns:
        ``[B, C, h, w]`` float32 noise prediction.
    """
    conds, scales = _as_lists(conditions, guidance_scale)
    b = latents_t.shape[0]
    conds = [c.expand_batch(b) for c in conds]
    need_uncond = not (len(conds) == 1 and scales[0] == 1.0)
    batch = ([prior.null_condition(conds[0])] if need_uncond else []) + conds
    n = len(batch)
    if batched and n > 1:
        x = torch.cat([latents_t] * n, dim=0)
        tt = torch.cat([t] * n, dim=0)
        out = prior.model_output(x, tt, type(batch[0]).cat(batch))
        eps = to_epsilon(
            out.float(), x.float(), tt, prior.alphas_cumprod, prior.prediction_type
        ).chunk(n, dim=0)
    else:
        eps = tuple(
            to_epsilon(
                prior.model_output(latents_t, t, c).float(),
                latents_t.float(),
                t,
                prior.alphas_cumprod,
                prior.prediction_type,
            )
            for c in batch
        )
    if not need_uncond:
        return eps[0]
    e_u = eps[0]
    out = e_u.clone()
    for s, e in zip(scales, eps[1:], strict=True):
        out = out + s * (e - e_u)
    return out


__all__ = ["add_noise", "guided_noise", "prediction_target", "to_epsilon"]
