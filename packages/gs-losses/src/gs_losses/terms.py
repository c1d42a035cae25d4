"""Named loss terms and their weighted sum.

Every loss in gs_losses returns a dict ``{term_name: scalar tensor}`` so a method logs each term
separately and weights it from its config (threestudio-style ``lambda_<term>`` fields).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from gs_core.errors import ValidationError

LossTerms = dict[str, torch.Tensor]


def weighted_sum(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """``sum_k weights[k] * terms[k]``.

    ``weights`` keys are term names, optionally prefixed ``lambda_`` (so a config's
    ``lambda_rgb`` weights the term ``rgb``). Every term needs a weight and every weight a term,
    so a renamed term can never silently drop out of the objective; a weight of 0 skips its term.
    """
    w = {
        (k[len("lambda_") :] if k.startswith("lambda_") else k): float(v)
        for k, v in weights.items()
    }
    missing = sorted(set(terms) - set(w))
    if missing:
        raise ValidationError(
            "weights", f"a weight for every term (lambda_{missing[0]})", f"keys {sorted(w)}"
        )
    unknown = sorted(set(w) - set(terms))
    if unknown:
        raise ValidationError(
            "weights", f"only weights of computed terms {sorted(terms)}", f"lambda_{unknown[0]}"
        )
    total: torch.Tensor | None = None
    for name, value in terms.items():
        if w[name] == 0.0:
            continue
        part = w[name] * value
        total = part if total is None else total + part
    if total is None:
        first = next(iter(terms.values()), None)
        return torch.zeros((), device=first.device if first is not None else None)
    return total


def prefixed(terms: Mapping[str, torch.Tensor], prefix: str) -> LossTerms:
    """The same terms with names ``f"{prefix}_{name}"`` (to merge the terms of several losses)."""
    return {f"{prefix}_{k}": v for k, v in terms.items()}
