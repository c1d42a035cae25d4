"""Finding NaN/Inf in training tensors: a fused check cheap enough for every step, and the slow
search that names the culprit once the check has failed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from gs_core.errors import ValidationError


@torch.no_grad()
def nonfinite_flag(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A 0-d tensor on the tensors' device: > 0 when a tensor may hold NaN or Inf.

    One fused 2-norm per tensor and no host synchronisation, so the caller decides when to read
    it. A norm is NaN/Inf when an entry is, and also when finite entries beyond ~1e19 overflow
    it: a raised flag is confirmed with :func:`first_nonfinite`. (The max-abs norm, exact, is
    about ten times slower on CPU.) Norms are taken in float32 so fp16 tensors do not overflow.
    """
    sized = [t for t in tensors if t.numel()]
    if not sized:
        return torch.zeros(())
    wide = any(t.dtype == torch.float64 for t in sized)  # float32 would narrow them
    norms = torch._foreach_norm(sized, 2, dtype=None if wide else torch.float32)
    return (~torch.isfinite(torch.stack(norms))).any().float()


@torch.no_grad()
def first_nonfinite(named: Iterable[tuple[str, torch.Tensor]]) -> tuple[str, str] | None:
    """``(name, "k of n entries are NaN/Inf")`` of the first tensor holding NaN/Inf, else ``None``."""
    for name, t in named:
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            return name, f"{int(bad.sum())} of {t.numel()} entries are NaN/Inf"
    return None


@torch.no_grad()
def largest(named: Iterable[tuple[str, torch.Tensor]]) -> tuple[str, float]:
    """The name and max-abs value of the tensor with the largest entry (for norm overflows)."""
    best = ("", 0.0)
    for name, t in named:
        m = float(t.abs().max()) if t.numel() else 0.0
        if m > best[1]:
            best = (name, m)
    return best


def is_nonfinite_error(error: BaseException) -> bool:
    """A validation error raised because a tensor held NaN/Inf (``Gaussians``, ``render`` and
    other checks report them as "<field>: expected finite values")."""
    return isinstance(error, ValidationError) and "finite" in error.expected


__all__ = ["first_nonfinite", "is_nonfinite_error", "largest", "nonfinite_flag"]
