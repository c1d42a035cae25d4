"""Per-step schedules of both stages: the position learning rate, the SDS timestep, the refine
strength."""

from __future__ import annotations

import math

from gs_losses.guidance import TimestepSchedule
from gs_method_dreamgaussian.config import Stage1Config, Stage2Config


def position_lr(cfg: Stage1Config, step: int) -> float:
    """The means' learning rate at ``step`` (1-based, set before the step as main.py does):
    log-linear from ``init x scale`` to ``final x scale`` over ``position_lr_max_steps``
    (3DGS's ``get_expon_lr_func`` without delay), constant after."""
    init = cfg.position_lr_init * cfg.position_lr_scale
    final = cfg.position_lr_final * cfg.position_lr_scale
    total = cfg.position_lr_max_steps or cfg.steps
    t = min(max(step / total, 0.0), 1.0)
    return math.exp(math.log(init) * (1 - t) + math.log(final) * t)


def timestep_schedule(cfg: Stage1Config) -> TimestepSchedule:
    """SDS's t: ``round((1 - r) T)`` clipped to ``t_range`` (anneal_timestep), else uniform."""
    return TimestepSchedule(t_range=cfg.t_range, anneal="linear" if cfg.anneal_timestep else "none")


def refine_strength(cfg: Stage2Config, step_ratio: float) -> float:
    """main2.py's refine strength ``0.8 + 0.15 r``: the share of DDIM steps skipped."""
    return cfg.strength_start + cfg.strength_slope * step_ratio
