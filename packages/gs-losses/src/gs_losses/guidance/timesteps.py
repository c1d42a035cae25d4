"""Timestep sampling for score distillation: a range of ``[0, T)`` and optional annealing."""

from __future__ import annotations

import math
from typing import Literal

import pydantic
import torch

from gs_core.config import Config
from gs_core.errors import ValidationError


class TimestepSchedule(Config):
    """Where score distillation samples ``t``.

    ``t_range`` is a fraction of the training timesteps ``T``: ``[0.02, 0.98]`` is DreamFusion's
    and DreamGaussian's ``t in [20, 980]``; DD3G's implicit verification uses ``[20, 300]``, i.e.
    ``(0.02, 0.3)``.

    ``anneal`` (all need the training progress ``step_ratio`` in ``[0, 1]``):

    * ``"none"``: ``t ~ U{t_min, ..., t_max}`` for every sample;
    * ``"linear"``: DreamGaussian's deterministic ``t = round((1 - r) T)`` clipped to the range;
    * ``"sqrt"``: ``t = round(t_max - (t_max - t_min) sqrt(r))`` (the DreamTime-like schedule in
      DreamGaussian's code);
    * ``"drop_max"``: ProlificDreamer's - uniform over the range, and after
      ``r >= anneal_start`` uniform over ``[t_min, anneal_t_max T]``.
    """

    t_range: tuple[float, float] = (0.02, 0.98)
    anneal: Literal["none", "linear", "sqrt", "drop_max"] = "none"
    anneal_t_max: float = 0.5
    anneal_start: float = 0.2

    @pydantic.field_validator("t_range")
    @classmethod
    def _check_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0.0 <= lo <= hi <= 1.0):
            raise ValueError(f"expected 0 <= t_min <= t_max <= 1, got {v}")
        return v

    def bounds(self, num_train_timesteps: int) -> tuple[int, int]:
        """Integer ``(t_min, t_max)``, both inclusive, within ``[0, T - 1]``."""
        top = num_train_timesteps - 1
        lo = min(top, round(num_train_timesteps * self.t_range[0]))
        hi = min(top, round(num_train_timesteps * self.t_range[1]))
        return lo, hi

    def sample(
        self,
        batch_size: int,
        num_train_timesteps: int,
        step_ratio: float | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """``t [batch_size]`` int64."""
        lo, hi = self.bounds(num_train_timesteps)
        if self.anneal != "none":
            if step_ratio is None:
                raise ValidationError(
                    "step_ratio",
                    f"the training progress in [0, 1] (anneal='{self.anneal}')",
                    "None",
                )
            if not 0.0 <= step_ratio <= 1.0:
                raise ValidationError("step_ratio", "a value in [0, 1]", repr(step_ratio))
        if self.anneal in ("linear", "sqrt"):
            if self.anneal == "linear":
                value = round((1.0 - step_ratio) * num_train_timesteps)
            else:
                value = round(hi - (hi - lo) * math.sqrt(step_ratio))
            value = min(max(value, lo), hi)
            return torch.full((batch_size,), value, dtype=torch.long, device=device)
        if self.anneal == "drop_max" and step_ratio >= self.anneal_start:
            hi = max(lo, min(hi, round(num_train_timesteps * self.anneal_t_max)))
        gen_device = generator.device if generator is not None else device
        t = torch.randint(lo, hi + 1, (batch_size,), generator=generator, device=gen_device)
        return t.to(device)
