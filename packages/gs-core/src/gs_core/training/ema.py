"""Exponential moving average of parameters (DD3G, Sec. IV-A: "we apply EMA to the model
parameters"), kept in float32 beside the live weights.

After ``n`` updates the shadow is ``s <- d * s + (1 - d) * p`` with ``d = decay``, or with
warm-up ``d = min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the
random initialisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch

from gs_core.errors import FileFormatError


class EMA:
    """EMA of named parameters ``{name: Parameter}``; the shadow lives on the parameters' device."""

    def __init__(
        self, params: Mapping[str, torch.nn.Parameter], decay: float, warmup: bool = False
    ):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = warmup
        self.names = list(params)
        self.params = [params[n] for n in self.names]
        self.shadow = [p.detach().to(torch.float32, copy=True) for p in self.params]
        self.num_updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self) -> None:
        d = self.current_decay()
        live = [p.detach().to(torch.float32) for p in self.params]
        torch._foreach_lerp_(self.shadow, live, 1.0 - d)
        self.num_updates += 1

    @torch.no_grad()
    def reset(self) -> None:
        """Restart the average at the current weights (used when the EMA starts late)."""
        for s, p in zip(self.shadow, self.params, strict=True):
            s.copy_(p.detach())
        self.num_updates = 0

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the model (validation, export)."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow, strict=True):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.params, backup, strict=True):
                    p.copy_(b)

    def state_dict(self) -> dict:
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": dict(zip(self.names, self.shadow, strict=True)),
        }

    def load_state_dict(self, state: dict, source: str = "EMA state") -> None:
        shadow = state["shadow"]
        if set(shadow) != set(self.names):
            missing = sorted(set(self.names) - set(shadow))[:5]
            extra = sorted(set(shadow) - set(self.names))[:5]
            raise FileFormatError(
                source, f"EMA parameters differ (missing {missing}, unexpected {extra})"
            )
        with torch.no_grad():
            for n, s in zip(self.names, self.shadow, strict=True):
                if shadow[n].shape != s.shape:
                    raise FileFormatError(
                        source,
                        f"EMA of '{n}' has shape {tuple(shadow[n].shape)}, the model {tuple(s.shape)}",
                    )
                s.copy_(shadow[n])
        self.num_updates = int(state["num_updates"])


__all__ = ["EMA"]
