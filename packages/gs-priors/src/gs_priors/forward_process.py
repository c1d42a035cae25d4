"""The forward (noising) process and the conversions between prediction types, for every prior.

With ``a_t = sqrt(alpha_bar_t)`` and ``s_t = sqrt(1 - alpha_bar_t)`` (DDPM, Ho et al. 2020):

* ``x_t = a_t x_0 + s_t eps``;
* v-prediction (Salimans & Ho 2022): ``v = a_t eps - s_t x_0``, hence ``eps = s_t x_t + a_t v``
  and ``x_0 = a_t x_t - s_t v``;
* x0-prediction: ``eps = (x_t - a_t x_0) / s_t``.

``alphas_cumprod`` is a prior's ``alphas_cumprod`` ``[T]``; ``t`` is ``[B]`` integer timesteps and
every other tensor ``[B, ...]``. The coefficients take the dtype of the tensor they scale.
Score distillation (gs-losses), the procedural teachers' training and their camera check
(``gs_priors.teachers``) all noise and convert through these functions.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_priors.prior import PREDICTION_TYPES


def _coeffs(alphas_cumprod: torch.Tensor, t: torch.Tensor, ndim: int, dtype: torch.dtype):
    ab = alphas_cumprod.to(device=t.device)[t].to(dtype)
    shape = (-1,) + (1,) * (ndim - 1)
    return ab.sqrt().view(shape), (1 - ab).sqrt().view(shape)


def _check(prediction_type: str) -> None:
    if prediction_type not in PREDICTION_TYPES:
        raise ValidationError(
            "prediction_type", "'epsilon', 'v_prediction' or 'sample'", repr(prediction_type)
        )


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
    _check(prediction_type)
    if prediction_type == "epsilon":
        return output
    a, s = _coeffs(alphas_cumprod, t, x_t.ndim, x_t.dtype)
    if prediction_type == "v_prediction":
        return s * x_t + a * output
    return (x_t - a * output) / s


def to_sample(
    output: torch.Tensor,
    x_t: torch.Tensor,
    t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """A model's raw ``output`` of ``prediction_type`` as the clean sample ``x_0`` it implies."""
    _check(prediction_type)
    if prediction_type == "sample":
        return output
    a, s = _coeffs(alphas_cumprod, t, x_t.ndim, x_t.dtype)
    if prediction_type == "v_prediction":
        return a * x_t - s * output
    return (x_t - s * output) / a


def prediction_target(
    x0: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """What a denoiser of ``prediction_type`` regresses at ``(x_t, t)``: eps, v or x0."""
    _check(prediction_type)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        a, s = _coeffs(alphas_cumprod, t, x0.ndim, x0.dtype)
        return a * noise - s * x0
    return x0


__all__ = ["add_noise", "prediction_target", "to_epsilon", "to_sample"]
