"""What the engine says when training cannot go on."""

from __future__ import annotations

from pathlib import Path

from gs_core.errors import GS3DError


class TrainingDivergedError(GS3DError):
    """A loss term or the gradient norm became NaN/Inf; no checkpoint was written for it."""

    def __init__(self, what: str, step: int, value: float, last_checkpoint: Path | None):
        self.what = what
        self.step = step
        self.value = value
        self.last_checkpoint = last_checkpoint
        where = (
            f"the last good checkpoint is {last_checkpoint} (continue from it with --resume, e.g. "
            "with a lower learning rate, fp32/bf16 instead of fp16, or gradient clipping)"
            if last_checkpoint is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(f"{what} is {value} at step {step}; training stopped, {where}")


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


__all__ = ["TrainingDivergedError", "TrainingOutOfMemoryError", "out_of_memory_message"]
