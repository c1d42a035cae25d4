"""Wall-clock budgets per training stage, as scripts that chain several runs take them.

A script trains stages in turn (a method's ``train_small.py``) and caps each run with
``Trainer(..., budget_s=...)``; its ``--budget-s`` is one number for every stage or a JSON
object of seconds keyed by stage name (stages not named: no cap).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence


def parse_stage_budgets(text: str, stages: Sequence[str]) -> dict[str, float]:
    """``"300"`` -> every stage 300 s; ``'{"stage": 120}'`` -> that stage only.

    Raises ``ValueError`` naming the stages and what was given otherwise.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return dict.fromkeys(stages, float(value))
    if isinstance(value, dict) and all(
        k in stages and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        for k, v in value.items()
    ):
        return {k: float(v) for k, v in value.items()}
    raise ValueError(
        f"expected positive seconds or a JSON object of them keyed by {', '.join(stages)}; "
        f"got {text!r}"
    )


def stage_budget_arg(stages: Sequence[str]) -> Callable[[str], dict[str, float]]:
    """An argparse ``type=`` for ``--budget-s`` (its error message kept in argparse's line)."""

    def parse(text: str) -> dict[str, float]:
        try:
            return parse_stage_budgets(text, stages)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


__all__ = ["parse_stage_budgets", "stage_budget_arg"]
