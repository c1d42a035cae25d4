"""Discrete DDPM noise schedules, forward noising and the deterministic DDIM update.

Both of Compress3D's diffusion models train with ``T = 1000`` steps (Sec. 3.2, 3.3) and sample
with DDIM 50 steps (Sec. 4.3). The paper names no beta schedule: the triplane UNet uses LDM's
``scaled_linear`` (0.00085 -> 0.012, for latents) and the prior DALL-E 2's cosine schedule (its
embedding prior, which Compress3D's prior follows in predicting x0).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from gs_core.errors import ValidationError


def alphas_cumprod(
    steps: int, schedule: Literal["linear", "scaled_linear", "cosine"]
) -> torch.Tensor:
    """``alpha_bar_t [steps]`` (float64)."""
    if schedule == "linear":
        betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    elif schedule == "scaled_linear":
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, steps, dtype=torch.float64) ** 2
    elif schedule == "cosine":
        t = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    else:
        raise ValidationError("beta_schedule", "linear, scaled_linear or cosine", repr(schedule))
    return torch.cumprod(1.0 - betas, dim=0)


def ddim_timesteps(train_steps: int, sample_steps: int) -> list[int]:
    """Descending timesteps, evenly spaced with a final step of 0 ("leading" spacing, as
    diffusers' DDIM default)."""
    if not 1 <= sample_steps <= train_steps:
        raise ValidationError("sample_steps", f"1..{train_steps}", str(sample_steps))
    ratio = train_steps // sample_steps
    return [i * ratio for i in range(sample_steps)][::-1]


class NoiseSchedule(nn.Module):
    """``alpha_bar`` as a buffer (moves with the model; excluded from checkpoints)."""

    def __init__(self, steps: int, schedule: str):
        super().__init__()
        self.steps = steps
        self.register_buffer("alpha_bar", alphas_cumprod(steps, schedule).float(), persistent=False)

    def _ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.alpha_bar[t].to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps`` for ``x0 [B, ...]``, ``t [B]``."""
        ab = self._ab(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def ddim_step(
        self,
        x_t: torch.Tensor,
        t: int,
        t_prev: int,
        *,
        eps: torch.Tensor | None = None,
        x0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One deterministic DDIM step (eta = 0) from ``t`` to ``t_prev`` (``-1`` = the end, where
        ``alpha_bar = 1``), given the model's ``eps`` or ``x0`` prediction."""
        ab = self.alpha_bar[t].to(x_t.dtype)
        ab_prev = self.alpha_bar[t_prev].to(x_t.dtype) if t_prev >= 0 else x_t.new_tensor(1.0)
        if x0 is None:
            if eps is None:
                raise ValidationError("ddim_step", "eps or x0")
            x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
        elif eps is None:
            eps = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt().clamp_min(1e-8)
        return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps


__all__ = ["NoiseSchedule", "alphas_cumprod", "ddim_timesteps"]
