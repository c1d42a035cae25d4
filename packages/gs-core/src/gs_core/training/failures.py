"""What the engine says when training cannot go on."""

from __future__ import annotations

from pathlib import Path

from gs_core.errors import GS3DError


class TrainingDivergedError(GS3DError):
    """NaN/Inf appeared in training: in a forward output, a loss term, a gradient or a parameter.

    ``step`` is the optimiser step (0-based) where they first appeared and ``what`` names the
    tensor. No checkpoint holds the weights that produced them: ``last_checkpoint`` is the newest
    one a later step ran from without NaN/Inf (``None`` when there is none), and ``set_aside``
    the checkpoint whose weights produced them, renamed so ``--resume`` skips it (or ``None``).
    """

    def __init__(
        self,
        step: int,
        what: str,
        detail: str,
        last_checkpoint: Path | None,
        set_aside: Path | None = None,
    ):
        self.step = step
        self.what = what
        self.detail = detail
        self.last_checkpoint = last_checkpoint
        self.set_aside = set_aside
        where = (
            f"the last good checkpoint is {last_checkpoint} (continue from it with --resume and "
            "new overrides, e.g. a lower learning rate, fp32/bf16 instead of fp16, or gradient "
            "clipping)"
            if last_checkpoint is not None
            else "no good checkpoint had been written yet"
        )
        aside = (
            f"; the checkpoint whose weights produced them was moved to {set_aside}"
            if set_aside is not None
            else ""
        )
        super().__init__(
            f"step {step}: non-finite values in {what} ({detail}); training stopped, {where}{aside}"
        )


def out_of_memory_message(
    step: int, device: str, batch_size: int, grad_accum: int, precision: str
) -> str:
    hints = [
        f"lower batch_size (now {batch_size}) and raise grad_accum (now {grad_accum}) to keep the "
        "same effective batch",
        "lower the rendering / image resolution of the method",
    ]
    if precision == "fp32":
        hints.append("train in mixed precision (precision=bf16)")
    return (
        f"out of memory on {device} at step {step}. Try: " + "; ".join(hints) + ". "
        "Earlier checkpoints are untouched."
    )


class TrainingOutOfMemoryError(GS3DError, MemoryError):
    """The device ran out of memory during a training step."""


class TrainingInterruptedError(GS3DError):
    """A run was stopped by SIGTERM / Ctrl-C (the engine checkpoints and returns normally):
    raised by :meth:`TrainResult.raise_if_signalled` so that a script chaining several runs
    stops too, instead of starting its next stage."""

    def __init__(self, step: int, checkpoint: Path | None):
        self.step = step
        self.checkpoint = checkpoint
        where = f"checkpoint {checkpoint}" if checkpoint is not None else "no checkpoint"
        super().__init__(f"training stopped by a signal at step {step} ({where}); not going on")


__all__ = [
    "TrainingDivergedError",
    "TrainingInterruptedError",
    "TrainingOutOfMemoryError",
    "out_of_memory_message",
]
