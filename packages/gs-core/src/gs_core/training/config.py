"""The engine's own settings: what a method's config embeds (conventionally as ``train``)."""

from __future__ import annotations

from typing import Literal

import pydantic

from gs_core.config import Config


class TrainerConfig(Config):
    """How the engine runs a :class:`~gs_core.training.TrainingModule`.

    Batch sizes are per process: one optimiser step sees
    ``batch_size * grad_accum * world_size`` samples. ``step`` always counts optimiser steps.
    """

    max_steps: int = pydantic.Field(1000, ge=1)
    batch_size: int = pydantic.Field(1, ge=1, description="micro-batch per process")
    grad_accum: int = pydantic.Field(1, ge=1, description="micro-batches per optimiser step")
    num_workers: int = pydantic.Field(0, ge=0, description="DataLoader worker processes")
    shuffle: bool = True
    seed: int = 0

    device: str = pydantic.Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    deterministic: bool = False

    clip_grad_norm: float | None = pydantic.Field(None, gt=0)
    clip_grad_value: float | None = pydantic.Field(None, gt=0, description="clamp to (-v, v)")

    ema_decay: float | None = pydantic.Field(None, gt=0, lt=1, description="None: no EMA")
    ema_start: int = pydantic.Field(0, ge=0, description="first step whose update enters the EMA")
    ema_warmup: bool = pydantic.Field(
        False, description="use min(decay, (1 + n) / (10 + n)) after n updates"
    )
    validate_with_ema: bool = True

    checkpoint_every: int = pydantic.Field(1000, ge=1)
    keep_checkpoints: int = pydantic.Field(3, ge=1)
    log_every: int = pydantic.Field(10, ge=1)
    validate_every: int | None = pydantic.Field(None, ge=1)

    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    tensorboard: Literal["auto", "on", "off"] = "auto"

    find_unused_parameters: bool = pydantic.Field(
        False, description="DDP: some trained parameters get no gradient at some steps"
    )
    broadcast_buffers: bool = True


__all__ = ["TrainerConfig"]
