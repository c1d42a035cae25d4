"""Learning-rate schedules as step -> multiplier functions for ``torch.optim.lr_scheduler.LambdaLR``.

Each schedule is a small dataclass, so ``LambdaLR.state_dict()`` stores its fields as plain
numbers (checkpoints stay pickle-free) and a resumed run rebuilds the same function. ``step``
is the number of optimiser steps already taken (0 for the first step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pydantic
import torch

from gs_core.config import Config


def _warmup(step: int, warmup_steps: int) -> float:
    # 0 at the first step, as in diffusers' get_*_schedule_with_warmup.
    return step / max(1, warmup_steps)


@dataclass
class Constant:
    """``1`` after a linear warm-up over ``warmup_steps``."""

    warmup_steps: int = 0

    def __call__(self, step: int) -> float:
        return _warmup(step, self.warmup_steps) if step < self.warmup_steps else 1.0


def _decay_progress(step: int, warmup_steps: int, total_steps: int) -> float:
    """Fraction in [0, 1] of the decay phase (after warm-up) done at ``step``."""
    return min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))


@dataclass
class Linear:
    """Warm-up, then linear decay from 1 to ``final_ratio`` at ``total_steps``."""

    total_steps: int
    warmup_steps: int = 0
    final_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        t = _decay_progress(step, self.warmup_steps, self.total_steps)
        return 1.0 + (self.final_ratio - 1.0) * t


@dataclass
class Cosine:
    """Warm-up, then half a cosine from 1 to ``final_ratio`` at ``total_steps``."""

    total_steps: int
    warmup_steps: int = 0
    final_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        t = _decay_progress(step, self.warmup_steps, self.total_steps)
        return self.final_ratio + (1.0 - self.final_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass
class Exponential:
    """Log-linear interpolation from 1 to ``final_ratio`` over ``total_steps``, then constant.

    This is 3DGS/DreamGaussian's ``get_expon_lr_func`` (position lr ``1e-3 -> 2e-5`` over 500
    steps is ``base lr 1e-3, final_ratio 0.02``): ``lr = lr0^(1-t) * lr1^t``.
    """

    total_steps: int
    final_ratio: float
    warmup_steps: int = 0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(step, self.warmup_steps)
        t = min(1.0, step / max(1, self.total_steps))
        return math.exp(math.log(self.final_ratio) * t)


class ScheduleConfig(Config):
    """A schedule as a method config field, e.g. ``lr_schedule.kind=cosine`` on the command line.

    ``total_steps=None`` means "the run's ``max_steps``".
    """

    kind: Literal["constant", "linear", "cosine", "exponential"] = "constant"
    warmup_steps: int = pydantic.Field(0, ge=0)
    total_steps: int | None = pydantic.Field(None, ge=1)
    final_ratio: float = pydantic.Field(0.0, ge=0.0)

    @pydantic.model_validator(mode="after")
    def _positive_exponential_end(self):
        if self.kind == "exponential" and self.final_ratio <= 0.0:
            raise ValueError(
                "an exponential schedule needs final_ratio > 0 (it interpolates log lr)"
            )
        return self

    def multiplier(self, max_steps: int):
        total = self.total_steps or max_steps
        if self.kind == "constant":
            return Constant(self.warmup_steps)
        if self.kind == "linear":
            return Linear(total, self.warmup_steps, self.final_ratio)
        if self.kind == "cosine":
            return Cosine(total, self.warmup_steps, self.final_ratio)
        return Exponential(total, self.final_ratio, self.warmup_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying ``schedule`` to every param group of ``optimizer``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.multiplier(max_steps))


__all__ = ["Constant", "Cosine", "Exponential", "Linear", "ScheduleConfig", "build_scheduler"]
