"""The shared training engine: a method plugs in a :class:`TrainingModule`, the
:class:`Trainer` owns the loop.

Writing a training stage
------------------------
``Method.training_module(stage, data_dir=...)`` returns a :class:`TrainingModule` (an
``nn.Module``) that holds the networks and provides:

``trainer_config() -> TrainerConfig``
    steps, per-process batch size, gradient accumulation, precision (fp32/bf16/fp16),
    clipping by norm and/or value, EMA, checkpoint/log/validation intervals. Methods usually
    keep one in their config (``config.train``) so ``key=value`` overrides reach it.
``configure_optimizers() -> {name: optimizer | (optimizer, lr_scheduler)}``
    param groups live inside the optimisers; :mod:`gs_core.training.schedules` has
    checkpoint-friendly schedules (``ScheduleConfig``, ``build_scheduler``).
``training_step(batch, step) -> {term: scalar tensor}``
    named loss terms; the engine minimises ``sum(lambda_term * term)`` with the weights of
    ``loss_weights(step)`` (default: the ``lambda_*`` fields of ``module.config``), logs each
    term as ``loss/<term>``, and stops with an error naming the step and the tensor where
    NaN/Inf first appear: a weighted term, a finiteness check inside the step (``Gaussians``,
    ``render``), a gradient or a parameter after the optimiser step.
``train_dataset()``
    a map-style ``Dataset`` (split over processes, shuffled per epoch, resumable mid-epoch),
    or ``None`` when the step makes its own data; ``collate(samples)`` batches samples.

Optional: ``validation_step(step)`` (images -> PNG contact sheets in ``RUN_DIR/samples``,
numbers -> ``val/*`` metrics), ``optimizers_to_step(step)`` (alternating updates),
``models()`` (what checkpoints store), ``load_model_state`` (for parameters that change
shape), ``training_state`` / ``load_training_state`` (curriculum and other state),
``on_after_backward`` / ``on_step_end`` hooks.

Running it
----------
``Trainer(module, run_dir, resume=...).fit()`` on one device, or under
``torchrun --nproc_per_node=G`` for data parallelism (gloo on CPU, NCCL on GPU) with no
change to the module; from the command line, ``gs3d train --method NAME ...``.
``Trainer(..., callbacks=[...], budget_s=...)`` lets a script watch the run and stop it
(:mod:`gs_core.training.callbacks`): at a wall-clock budget, or when a callback's
``on_step_end`` returns a reason; ``TrainResult.stopped_by`` says which.

Checkpoints (every ``checkpoint_every`` steps, at any early stop, and at the end; the last
``keep_checkpoints`` kept) hold the weights (``save_pretrained``), the optimiser, LR-schedule,
grad-scaler and EMA state, every process's RNG state and the step, written atomically without
pickle. Resuming continues bit for bit on CPU; optimiser settings the configuration changes
(``--resume lr=...``) apply from the resumed step. No checkpoint holds NaN/Inf weights, and one
whose weights produced NaN/Inf is set aside as ``step-NNNNNNNN.diverged``, so resuming after a
divergence starts from the last good one. The run directory layout is documented in
:mod:`gs_core.training.run_dir`.
"""

from gs_core.training.callbacks import Callback, WallClockBudget
from gs_core.training.config import TrainerConfig
from gs_core.training.distributed import DistInfo, setup_distributed
from gs_core.training.ema import EMA
from gs_core.training.failures import (
    TrainingDivergedError,
    TrainingInterruptedError,
    TrainingOutOfMemoryError,
)
from gs_core.training.metrics_log import read_metrics
from gs_core.training.module import TrainingModule
from gs_core.training.rng import seed_everything
from gs_core.training.run_dir import RunDir
from gs_core.training.schedules import ScheduleConfig, build_scheduler
from gs_core.training.trainer import Trainer, TrainResult

__all__ = [
    "EMA",
    "Callback",
    "DistInfo",
    "RunDir",
    "ScheduleConfig",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingDivergedError",
    "TrainingInterruptedError",
    "TrainingModule",
    "TrainingOutOfMemoryError",
    "WallClockBudget",
    "build_scheduler",
    "read_metrics",
    "seed_everything",
    "setup_distributed",
]
