"""Callbacks: code that watches (and may stop) a :class:`~gs_core.training.Trainer` run.

A script that needs to act during training (stop at a deadline, stop early on a metric, copy
checkpoints somewhere) passes ``Trainer(..., callbacks=[...])`` instead of patching the
module's hooks or signalling its own process. Every process of a data-parallel run calls its
callbacks; a stop request from any process stops all of them after the same step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gs_core.errors import GS3DError

if TYPE_CHECKING:
    from gs_core.training.trainer import Trainer, TrainResult

StopRequest = str | bool | None
"""What :meth:`Callback.on_step_end` returns: ``None``/``False`` to go on; a reason (``str``,
recorded as ``TrainResult.stopped_by``) or ``True`` (reason: the callback's class name) to stop."""


class Callback:
    """Base class with no-op hooks; override the ones you need.

    Order within one run: ``on_fit_start`` once (before the data, the optimisers and a resumed
    checkpoint are set up), ``on_step_end`` after every optimiser step, ``on_checkpoint`` after
    every checkpoint is written, ``on_fit_end`` once when :meth:`Trainer.fit` returns normally
    (not when it raises). Callbacks run in the order given.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """The run begins; ``trainer.config`` and ``trainer.run`` are set."""

    def on_step_end(self, trainer: Trainer, step: int, logs: Mapping[str, float]) -> StopRequest:
        """``step`` optimiser steps are done; ``logs`` holds this step's ``loss``,
        ``loss/<term>`` (means over micro-batches and processes) and ``grad_norm`` when clipped.
        Return a reason to stop: the engine checkpoints and returns as on SIGTERM."""
        return None

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """A checkpoint of step ``trainer.step`` was written to ``path``."""

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        """The run ended (``result.stopped_by`` says why when before ``max_steps``)."""


class WallClockBudget(Callback):
    """Stop once ``seconds`` of wall time have passed since the run began (reason ``"budget"``).

    Checked after every step, so the run overshoots by at most one step plus the final
    checkpoint. ``clock`` returns seconds (tests pass a fake one).
    """

    reason = "budget"

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        if not seconds > 0:
            raise GS3DError(f"budget_s: expected a positive number of seconds, got {seconds}")
        self.seconds = float(seconds)
        self.clock = clock
        self.started: float | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.started = self.clock()

    def on_step_end(self, trainer: Trainer, step: int, logs: Mapping[str, float]) -> StopRequest:
        if self.started is None:
            self.started = self.clock()
        return self.reason if self.clock() - self.started >= self.seconds else None


def stop_reason(callback: Callback, request: StopRequest) -> str | None:
    """The reason a callback's :meth:`~Callback.on_step_end` result asks to stop for, if any."""
    if request is None or request is False:
        return None
    if request is True:
        return type(callback).__name__
    if isinstance(request, str) and request:
        return request
    raise GS3DError(
        f"{type(callback).__name__}.on_step_end(): expected None, a bool or a non-empty reason "
        f"string, got {request!r}"
    )


__all__ = ["Callback", "StopRequest", "WallClockBudget", "stop_reason"]
