"""The curriculum of the joint objective (Eq. 6): ``L = L_ES + beta_i L_IV + L_on`` with
``beta_i = min(0.5 (e^{i/I} - 1), eta)``, ``i`` the iteration, ``I`` the total iterations and
``eta`` the upper limit (IV-A: 0.4). ``beta`` reaches ``eta`` at ``i / I = ln(1 + 2 eta)``
(0.53 for ``eta = 0.4``) and stays there."""

from __future__ import annotations

import math

from gs_core.errors import ValidationError


def verification_weight(step: int, total_steps: int, eta: float = 0.4) -> float:
    """``beta_i`` of Eq. 6 at iteration ``step`` of ``total_steps``."""
    if total_steps <= 0:
        raise ValidationError("total_steps", "a positive number of iterations", str(total_steps))
    return min(0.5 * (math.exp(step / total_steps) - 1.0), eta)


def objective_weights(
    objective: str,
    step: int,
    total_steps: int,
    *,
    eta: float,
    lambda_mse: float,
    lambda_lpips: float,
    lambda_opacity: float,
    iv_only_weight: float,
) -> dict[str, float]:
    """Weights of the named terms at ``step`` for Table III's objectives: ``joint`` (Eq. 6),
    ``es`` (explicit supervision and L_on) or ``iv`` (implicit verification and L_on). Terms
    with weight 0 are absent, so they are not computed."""
    w: dict[str, float] = {}
    if objective in ("joint", "es"):
        w["es_mse"] = lambda_mse
        w["es_lpips"] = lambda_lpips
    if objective == "joint":
        w["iv"] = verification_weight(step, total_steps, eta)
    elif objective == "iv":
        w["iv"] = iv_only_weight
    elif objective != "es":
        raise ValidationError("objective", "'joint', 'es' or 'iv'", repr(objective))
    w["opacity"] = lambda_opacity
    return {k: v for k, v in w.items() if v > 0}


__all__ = ["objective_weights", "verification_weight"]
