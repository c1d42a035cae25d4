"""Forward noising, conversions between prediction types, and classifier-free guidance.

With ``a_t = sqrt(alpha_bar_t)`` and ``s_t = sqrt(1 - alpha_bar_t)`` (DDPM, Ho et al. 2020):

* ``x_t = a_t x_0 + s_t eps``;
* v-prediction (Salimans & Ho 2022): ``v = a_t eps - s_t x_0``, hence ``eps = s_t x_t + a_t v``;
* x0-prediction: ``eps = (x_t - a_t x_0) / s_t``.

Classifier-free guidance (Ho & Salimans 2022), generalised to several conditions as in
composable diffusion (Liu et al. 2022): ``eps = eps_u + sum_i s_i (eps_i - eps_u)``. The weights
sum to one over ``(eps_u, eps_1..k)``, so guiding raw v or x0 outputs and converting afterwards
gives the same epsilon; guidance is applied in epsilon space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gs_core.errors import ValidationError
from gs_priors.prior import Condition, DiffusionPrior


def _coeffs(alphas_cumprod: torch.Tensor, t: torch.Tensor, ndim: int, dtype: torch.dtype):
    ab = alphas_cumprod.to(device=t.device)[t].to(dtype)
    shape = (-1,) + (1,) * (ndim - 1)
    return ab.sqrt().view(shape), (1 - ab).sqrt().view(shape)


def add_noise(
    x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` for ``x0 [B, ...]``, ``t [B]``."""
    a, s = _coeffs(alphas_cumprod, t, x0.ndim, x0.dtype)
    return a * x0 + s * noise


def to_epsilon(
    output: torch.Tensor,
    x_t: torch.Tensor,
    t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """A model's raw ``output`` of ``prediction_type`` as a noise prediction."""
    if prediction_type == "epsilon":
        return output
    a, s = _coeffs(alphas_cumprod, t, x_t.ndim, x_t.dtype)
    if prediction_type == "v_prediction":
        return s * x_t + a * output
    if prediction_type == "sample":
        return (x_t - a * output) / s
    raise ValidationError(
        "prediction_type", "'epsilon', 'v_prediction' or 'sample'", repr(prediction_type)
    )


def prediction_target(
    x0: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """What a denoiser of ``prediction_type`` regresses at ``(x_t, t)``: eps, v or x0."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        a, s = _coeffs(alphas_cumprod, t, x0.ndim, x0.dtype)
        return a * noise - s * x0
    if prediction_type == "sample":
        return x0
    raise ValidationError(
        "prediction_type", "'epsilon', 'v_prediction' or 'sample'", repr(prediction_type)
    )


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
