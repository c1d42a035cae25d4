"""The training loop shared by every method: :class:`Trainer`.

One optimiser step (``step`` counts them from 0):

1. clear the gradients of every optimiser;
2. for each of ``grad_accum`` micro-batches: run ``training_step`` (under autocast when
   ``precision`` is bf16/fp16), average the named terms over processes, stop if a weighted term
   is NaN/Inf, back-propagate ``sum(lambda_i * term_i) / grad_accum`` (DDP synchronises the
   gradients on the last micro-batch only);
3. unscale (fp16), stop if a gradient is NaN/Inf, clip by value then by norm, step the
   optimisers of ``optimizers_to_step(step)`` and their LR schedules, update the EMA;
4. run the callbacks' ``on_step_end`` (any may ask to stop);
5. log, validate, checkpoint as configured.

NaN/Inf stop the run with :class:`~gs_core.training.failures.TrainingDivergedError` at the
step and in the tensor where they first appear: a non-finite check raised inside
``training_step`` (e.g. ``Gaussians.means``), a loss term, a gradient (named by parameter) or a
parameter after the optimiser step. The checks are fused reductions read back with the host
synchronisations the step already makes (the parameter check of step N with the loss terms of
step N + 1, or earlier when a hook, validation or a checkpoint reads the weights). No
checkpoint is written with non-finite weights, and a checkpoint whose weights produced NaN/Inf
in the step that followed it is renamed ``step-NNNNNNNN.diverged``, so ``--resume`` continues
from the last good one; optimiser settings changed in the configuration (a lower ``lr``) apply
on resume.

A run stops before ``max_steps`` on SIGTERM / Ctrl-C, at the wall-clock budget
(``budget_s``) or when a callback asks; it then writes a checkpoint and returns, and
``TrainResult.stopped_by`` says why (``"signal"``, ``"budget"`` or the callback's reason).

Data parallelism is ``torch.nn.parallel.DistributedDataParallel`` around the whole
:class:`TrainingModule` (its ``forward`` is ``training_step``), so a method may call any of
its sub-modules' methods inside the step and still be synchronised correctly.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gs_core.errors import FileFormatError, GS3DError
from gs_core.imaging import contact_sheet, save_image
from gs_core.io.atomic import OutputExistsError, atomic_write_text
from gs_core.training.callbacks import Callback, WallClockBudget, stop_reason
from gs_core.training.checkpoint import (
    load_model_states,
    load_rng_state,
    load_trainer_state,
    prune_checkpoints,
    remove_partial_checkpoints,
    save_checkpoint,
    set_aside_checkpoint,
)
from gs_core.training.config import TrainerConfig
from gs_core.training.data import BatchStream, to_device
from gs_core.training.distributed import (
    DistInfo,
    all_reduce_sum_,
    barrier,
    setup_distributed,
    teardown_distributed,
)
from gs_core.training.ema import EMA
from gs_core.training.failures import (
    TrainingDivergedError,
    TrainingInterruptedError,
    TrainingOutOfMemoryError,
    out_of_memory_message,
)
from gs_core.training.finite import first_nonfinite, is_nonfinite_error, largest, nonfinite_flag
from gs_core.training.metrics_log import MetricsLog
from gs_core.training.module import TrainingModule
from gs_core.training.progress import ProgressDisplay
from gs_core.training.rng import (
    deterministic_algorithms,
    preserved_rng,
    seed_everything,
    set_rng_state,
)
from gs_core.training.run_dir import RunDir

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainResult:
    """How :meth:`Trainer.fit` ended.

    ``stopped_by`` is ``None`` when the run reached ``max_steps``, else why it stopped early:
    ``"signal"`` (SIGTERM / Ctrl-C), ``"budget"`` (``budget_s`` ran out) or the reason a
    callback returned. ``interrupted`` is ``stopped_by is not None``.
    """

    step: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    stopped_by: str | None = None

    def raise_if_signalled(self) -> TrainResult:
        """Raise :class:`TrainingInterruptedError` when a signal stopped the run (a script
        that chains runs calls this before its next one); else return ``self``."""
        if self.stopped_by == "signal":
            raise TrainingInterruptedError(self.step, self.checkpoint)
        return self


class _Window:
    """Loss terms and timing averaged over the steps since the last log line."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.steps = 0
        self.t0 = time.perf_counter()

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def its(self) -> float:
        dt = time.perf_counter() - self.t0
        return self.steps / dt if dt > 0 else 0.0


def _worker_count(requested: int, world_size: int) -> int:
    """DataLoader workers per process: as configured, but no more than this machine's cores
    shared by its processes (a GPU preset's workers on a 2-core machine only contend)."""
    if requested <= 0:
        return 0
    from gs_core.devices import available_cores

    return min(requested, max(1, available_cores() // max(world_size, 1)))


class Trainer:
    """Drives a :class:`TrainingModule` for ``config.max_steps`` optimiser steps.

    Args:
        module: the stage to train.
        run_dir: where checkpoints, logs and samples go (see :mod:`gs_core.training.run_dir`).
        config: engine settings; default ``module.trainer_config()``.
        resume: continue from the newest checkpoint in ``run_dir`` (start at step 0 when there
            is none yet). Without it, a ``run_dir`` that already holds checkpoints is refused.
        snapshot: what to record in ``run_dir/config.json`` besides the engine config
            (method name, preset, overrides...).
        callbacks: :class:`~gs_core.training.callbacks.Callback` objects called during
            :meth:`fit`, in this order.
        budget_s: wall-clock seconds the run may take from the start of :meth:`fit`; past
            them it stops after the current step as on SIGTERM (checkpoint, then return with
            ``stopped_by="budget"``). ``None``: no limit.
    """

    def __init__(
        self,
        module: TrainingModule,
        run_dir: str | Path,
        config: TrainerConfig | None = None,
        resume: bool = False,
        snapshot: Mapping[str, Any] | None = None,
        callbacks: Sequence[Callback] = (),
        budget_s: float | None = None,
    ):
        if not isinstance(module, TrainingModule):
            raise GS3DError(
                f"Trainer(module): expected a gs_core.training.TrainingModule, got {type(module).__name__}"
            )
        cfg = config if config is not None else module.trainer_config()
        if not isinstance(cfg, TrainerConfig):
            raise GS3DError(
                f"{type(module).__name__}.trainer_config(): expected a TrainerConfig, got {type(cfg).__name__}"
            )
        self.callbacks: list[Callback] = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise GS3DError(
                    f"Trainer(callbacks): expected gs_core.training.Callback objects, got {type(cb).__name__}"
                )
        if budget_s is not None:
            self.callbacks.append(WallClockBudget(budget_s))
        self.module = module
        self.config = cfg
        self.run = RunDir(run_dir)
        self.resume = resume
        self.snapshot = dict(snapshot or {})
        self.step = 0
        self.ema: EMA | None = None
        self.dist: DistInfo | None = None
        self._optimizers: dict[str, torch.optim.Optimizer] = {}
        self._schedulers: dict[str, Any] = {}
        self._scaler: torch.amp.GradScaler | None = None
        self._ddp: DistributedDataParallel | None = None
        self._stream: BatchStream | None = None
        self._last_checkpoint: Path | None = None
        self._stop_requested = False
        self._position = 0  # micro-batches this process has consumed
        self._forward: nn.Module = module
        self._log: MetricsLog | None = None
        self._progress: ProgressDisplay | None = None
        # NaN/Inf flag of the parameters after the last optimiser step, not yet read on the host
        self._params_flag: torch.Tensor | None = None
        # optimiser settings as configure_optimizers() made them (checkpointed, so a resumed run
        # can tell which ones the new configuration changed)
        self._configured: dict[str, list[dict[str, Any]]] = {}
        self._resume_notes: list[str] = []

    # ------------------------------------------------------------------ public
    def fit(self) -> TrainResult:
        """Train to ``max_steps``, or until a signal, the budget or a callback stops the run
        (after saving a checkpoint)."""
        self.dist = setup_distributed(self.config.device)
        try:
            for cb in self.callbacks:
                cb.on_fit_start(self)
            with (
                deterministic_algorithms()
                if self.config.deterministic
                else contextlib.nullcontext()
            ):
                result = self._fit()
            for cb in self.callbacks:
                cb.on_fit_end(self, result)
            return result
        finally:
            if self._progress is not None:
                self._progress.close()
            if self._log is not None:
                self._log.close()
            teardown_distributed(self.dist)

    @property
    def ema_active(self) -> bool:
        """EMA is on and has started averaging (``step >= ema_start``)."""
        return self.ema is not None and self.step >= self.config.ema_start

    def averaged_weights(self) -> contextlib.AbstractContextManager:
        """Within this block the models hold the EMA weights (a no-op while EMA is not active)."""
        if self.ema is not None and self.ema_active:
            return self.ema.applied()
        return contextlib.nullcontext()

    @property
    def is_main(self) -> bool:
        return self.dist is None or self.dist.is_main

    # ------------------------------------------------------------------ setup
    def _fit(self) -> TrainResult:
        cfg, dist, module = self.config, self.dist, self.module
        assert dist is not None
        existing = self.run.latest_checkpoint()
        if existing is not None and not self.resume:
            raise OutputExistsError(
                f"{self.run.root}: already holds a run (checkpoint {existing[1].name}); pass --resume "
                "(resume=True) to continue it, or choose another output directory"
            )
        module.to(dist.device)
        for model in module.models().values():
            model.train()
        dataset = module.train_dataset()  # before seeding: building it must not shift the RNG
        self._setup_optimizers()
        models = module.models()
        self._check_ownership(models)
        if cfg.precision == "fp16":
            self._scaler = torch.amp.GradScaler(dist.device.type)
        if dist.is_main:
            remove_partial_checkpoints(self.run)
        barrier(dist)

        checkpoint = existing if self.resume else None
        if checkpoint is not None:
            self._restore(*checkpoint)
        else:
            if cfg.ema_decay is not None:
                self.ema = EMA(self._ema_params(), cfg.ema_decay, cfg.ema_warmup)
            seed_everything(cfg.seed + dist.rank)

        if dist.is_distributed:
            self._wrap_ddp()
        self._stream = BatchStream(
            dataset,
            cfg.batch_size,
            dist,
            cfg.seed,
            cfg.shuffle,
            _worker_count(cfg.num_workers, dist.world_size),
            # the default is passed as a plain function, so worker processes never need the module
            collate_fn=module.collate
            if type(module).collate is not TrainingModule.collate
            else None,
            position=self._position,
        )
        if dist.is_main:
            self._write_snapshot()
            self._log = MetricsLog(
                self.run.metrics,
                self.run.tensorboard,
                cfg.tensorboard,
                resume_step=self.step if self.resume else None,
            )
        self._progress = ProgressDisplay(
            cfg.progress, cfg.max_steps, self.step, enabled=dist.is_main
        )
        if checkpoint is not None:
            self._progress.message(f"resumed from {checkpoint[1]} (step {self.step})", always=True)
            for note in self._resume_notes:
                self._progress.message(note, always=True)
        elif self.resume:
            self._progress.message(
                f"no checkpoint in {self.run.checkpoints}; starting at step 0", always=True
            )
        with self._signals():
            return self._loop()

    def _setup_optimizers(self) -> None:
        entries = self.module.configure_optimizers()
        if not isinstance(entries, Mapping) or not entries:
            raise GS3DError(
                f"{type(self.module).__name__}.configure_optimizers(): expected a non-empty "
                "{name: optimizer or (optimizer, scheduler)} dict"
            )
        for name, entry in entries.items():
            opt, sched = entry if isinstance(entry, tuple) else (entry, None)
            if not isinstance(opt, torch.optim.Optimizer):
                raise GS3DError(
                    f"configure_optimizers()['{name}']: expected a torch optimizer, got {type(opt).__name__}"
                )
            self._optimizers[name] = opt
            if sched is not None:
                self._schedulers[name] = sched
            self._configured[name] = [_hyperparameters(g) for g in opt.param_groups]

    def _check_ownership(self, models: dict[str, nn.Module]) -> None:
        owned = {id(p) for m in models.values() for p in m.parameters()}
        for name, opt in self._optimizers.items():
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) not in owned:
                        raise GS3DError(
                            f"optimizer '{name}' trains a parameter of shape {tuple(p.shape)} that is in none of "
                            f"{type(self.module).__name__}.models() ({sorted(models)}): checkpoints would lose it. "
                            "Keep trained tensors inside a sub-module returned by models()."
                        )

    def _trained_params(self) -> list[torch.Tensor]:
        seen: dict[int, torch.Tensor] = {}
        for opt in self._optimizers.values():
            for group in opt.param_groups:
                for p in group["params"]:
                    seen.setdefault(id(p), p)
        return list(seen.values())

    def _ema_params(self) -> dict[str, nn.Parameter]:
        trained = {id(p) for p in self._trained_params()}
        return {
            f"{mname}.{pname}": p
            for mname, model in self.module.models().items()
            for pname, p in model.named_parameters()
            if id(p) in trained
        }

    def _wrap_ddp(self) -> None:
        dist, cfg, module = self.dist, self.config, self.module
        assert dist is not None
        trained = {id(p) for p in self._trained_params()}
        # Parameters no optimiser updates need no gradient all-reduce (frozen teachers, or a
        # previous stage's network left with requires_grad=True).
        ignore = [n for n, p in module.named_parameters() if id(p) not in trained]
        if ignore:
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignore)
        self._ddp = DistributedDataParallel(
            module,
            device_ids=[dist.device.index] if dist.device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters,
            broadcast_buffers=cfg.broadcast_buffers,
        )
        self._forward = self._ddp

    def _restore(self, step: int, path: Path) -> None:
        cfg, dist, module = self.config, self.dist, self.module
        assert dist is not None
        state = load_trainer_state(path)
        for name, weights in load_model_states(path, list(module.models())).items():
            try:
                module.load_model_state(name, weights)
            except RuntimeError as e:
                raise FileFormatError(
                    path / "models" / name,
                    f"weights do not fit model '{name}': {str(e).splitlines()[0]}",
                ) from None
        saved_opts = state.get("optimizers", {})
        if set(saved_opts) != set(self._optimizers):
            raise FileFormatError(
                path,
                f"optimizers {sorted(saved_opts)} in the checkpoint, {sorted(self._optimizers)} configured",
            )
        for name, opt in self._optimizers.items():
            try:
                opt.load_state_dict(saved_opts[name])
            except (ValueError, KeyError, RuntimeError) as e:
                raise FileFormatError(path, f"optimizer '{name}' state does not fit: {e}") from None
        for name, sched in self._schedulers.items():
            saved = state.get("schedulers", {}).get(name)
            if saved is None:
                raise FileFormatError(path, f"no state for the LR schedule of optimizer '{name}'")
            sched.load_state_dict(saved)
        self._apply_changed_hyperparameters(state)
        if self._scaler is not None and state.get("scaler"):
            self._scaler.load_state_dict(state["scaler"])
        module.load_training_state(state.get("module", {}))
        if cfg.ema_decay is not None:
            self.ema = EMA(self._ema_params(), cfg.ema_decay, cfg.ema_warmup)
            if state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"], source=str(path / "trainer.safetensors"))
        self.step = int(state["step"])
        samples_seen = int(state.get("samples_seen", 0))
        per_micro = cfg.batch_size * dist.world_size
        self._position = samples_seen // per_micro
        same_layout = (
            state.get("world_size") == dist.world_size
            and state.get("batch_size") == cfg.batch_size
            and state.get("grad_accum") == cfg.grad_accum
        )
        rng = load_rng_state(path, dist.rank) if same_layout else None
        if rng is not None:
            set_rng_state(rng)
        else:
            seed_everything(cfg.seed + dist.rank + 1_000_003 * self.step)
            if dist.is_main:
                print(
                    f"warning: {path.name} was written by {state.get('world_size')} process(es) with batch_size "
                    f"{state.get('batch_size')} x grad_accum {state.get('grad_accum')}; resuming with "
                    f"{dist.world_size} x {cfg.batch_size} x {cfg.grad_accum}: the data position is kept "
                    "but the run will not match an uninterrupted one bit for bit",
                    flush=True,
                )
        self._last_checkpoint = path

    def _apply_changed_hyperparameters(self, state: Mapping[str, Any]) -> None:
        """Loading optimiser and schedule state brings back the checkpoint's learning rate,
        weight decay, betas...; where the configuration now says otherwise (``--resume lr=...``
        after a divergence) the configuration wins. A changed ``lr`` rescales the scheduled rate,
        so a schedule keeps its position. Unchanged settings are left alone (exact resume)."""
        recorded = state.get("optimizer_hparams")
        for name, opt in self._optimizers.items():
            if isinstance(recorded, Mapping):
                before = recorded.get(name)
            else:  # checkpoints written before the settings were recorded
                groups = state.get("optimizers", {}).get(name, {}).get("param_groups", [])
                before = [_hyperparameters(g) for g in groups]
            now = self._configured[name]
            if not isinstance(before, list) or len(before) != len(now):
                continue
            sched = self._schedulers.get(name)
            for i, (group, old, new) in enumerate(zip(opt.param_groups, before, now, strict=True)):
                for key, value in new.items():
                    if key not in old or old[key] == value:
                        continue
                    if key == "lr":
                        _rescale_lr(opt, sched, i, float(old[key]), float(value))
                    else:
                        group[key] = value
                    label = group.get("name", i)
                    self._resume_notes.append(
                        f"optimizer '{name}' group {label}: {key} {old[key]} -> {value} "
                        "(from the new configuration)"
                    )

    def _write_snapshot(self) -> None:
        data: dict[str, Any] = {}
        if self.run.config.is_file():
            try:
                data = json.loads(self.run.config.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                data = {}
        data.update(self.snapshot)
        data["trainer"] = self.config.model_dump(mode="json")
        data["world_size"] = self.dist.world_size if self.dist else 1
        atomic_write_text(self.run.config, json.dumps(data, indent=2) + "\n")

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM / first Ctrl-C: finish the step, checkpoint, return; second Ctrl-C: abort."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_requested = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # ------------------------------------------------------------------ loop
    def _loop(self) -> TrainResult:
        cfg, dist = self.config, self.dist
        assert dist is not None and self._stream is not None and self._progress is not None
        batches = iter(self._stream)
        window = _Window()
        saved_at = self.step if self._last_checkpoint is not None else None
        validated_at: int | None = None
        logged: dict[str, float] = {}
        stopped_by: str | None = None
        while self.step < cfg.max_steps:
            step = self.step
            try:
                values, signalled = self._train_step(step, batches)
            except torch.OutOfMemoryError:
                raise TrainingOutOfMemoryError(
                    out_of_memory_message(
                        step, str(dist.device), cfg.batch_size, cfg.grad_accum, cfg.precision
                    )
                ) from None
            self.step = step + 1
            if self.callbacks or type(self.module).on_step_end is not TrainingModule.on_step_end:
                self._settle_params(step)  # they may read the weights: never NaN ones
            self._update_ema()
            self.module.on_step_end(self.step)
            requested = self._callbacks_step_end(values)
            stopped_by = "signal" if signalled else requested
            stop = stopped_by is not None
            window.add(values)
            log_now = self.step % cfg.log_every == 0 or self.step == cfg.max_steps or stop
            self._progress.update(self.step, window.its(), _display_terms(values), log_now)
            if log_now:
                logged = self._log_window(window)
                window.reset()
            if cfg.validate_every and self.step % cfg.validate_every == 0:
                self._validate()
                validated_at = self.step
            if self.step % cfg.checkpoint_every == 0:
                self._checkpoint()
                saved_at = self.step
            if stop:
                break
        if self.step >= cfg.max_steps:
            stopped_by = None  # a stop asked for at the last step changes nothing
        interrupted = stopped_by is not None
        if cfg.validate_every and validated_at != self.step and not interrupted:
            self._validate()  # (skipped when stopping: a preempted job has seconds to save)
        if saved_at != self.step:
            self._checkpoint()
        if interrupted:
            self._progress.message(
                f"stopped at step {self.step} ({stopped_by}); checkpoint {self._last_checkpoint} "
                "(continue with --resume)",
                always=True,
            )
        return TrainResult(self.step, self._last_checkpoint, logged, interrupted, stopped_by)

    def _callbacks_step_end(self, values: Mapping[str, float]) -> str | None:
        """Run every callback's ``on_step_end``; the reason to stop, agreed by all processes."""
        if not self.callbacks:
            return None
        dist = self.dist
        assert dist is not None
        reason = None
        for cb in self.callbacks:
            asked = stop_reason(cb, cb.on_step_end(self, self.step, values))
            reason = reason or asked
        if not dist.is_distributed:
            return reason
        # Every process must leave the loop after the same step, or the next collective hangs.
        flags = torch.tensor(
            [reason is not None, reason == WallClockBudget.reason],
            dtype=torch.float32,
            device=dist.device,
        )
        any_stop, any_budget = (v > 0 for v in all_reduce_sum_(flags, dist).tolist())
        if not any_stop:
            return None
        if reason is not None:
            return reason
        return WallClockBudget.reason if any_budget else "a callback on another process"

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = _AUTOCAST_DTYPES.get(self.config.precision)
        if dtype is None:
            return contextlib.nullcontext()
        assert self.dist is not None
        return torch.autocast(device_type=self.dist.device.type, dtype=dtype)

    def _train_step(self, step: int, batches: Iterator[Any]) -> tuple[dict[str, float], bool]:
        cfg, dist, module = self.config, self.dist, self.module
        assert dist is not None
        to_step = self._optimizers_for(step)
        for opt in self._optimizers.values():
            opt.zero_grad(set_to_none=True)
        weights = dict(module.loss_weights(step))
        accum = cfg.grad_accum
        means: dict[str, float] = {}
        stop = False
        for micro in range(accum):
            batch = next(batches)
            if batch is not None:
                batch = to_device(batch, dist.device)
            last = micro == accum - 1
            sync = (
                self._ddp.no_sync()
                if (self._ddp is not None and not last)
                else contextlib.nullcontext()
            )
            with sync:
                terms = self._run_step(batch, step)
                names = self._check_terms(terms, weights, step)
                flag = (
                    torch.ones((), device=dist.device)
                    if self._stop_requested
                    else torch.zeros((), device=dist.device)
                )
                # the previous update's parameter check rides on this read-back
                pending, self._params_flag = self._params_flag, None
                if pending is None:
                    pending = torch.zeros((), device=dist.device)
                stats = torch.stack(
                    [terms[n].detach().float().reshape(()) for n in names]
                    + [flag, pending.to(dist.device)]
                )
                host = all_reduce_sum_(stats, dist).tolist()
                stop = stop or host[-2] > 0
                if host[-1] > 0:
                    self._raise_if_nonfinite_params(step - 1)
                for i, n in enumerate(names):
                    v = host[i] / dist.world_size
                    if weights[n] != 0.0 and not math.isfinite(v):
                        raise self._diverged(step, f"loss term '{n}'", str(v), from_weights=True)
                    means[n] = means.get(n, 0.0) + v / accum
                weighted = [terms[n].float() * weights[n] for n in names if weights[n] != 0.0]
                loss = torch.stack(weighted).sum() if weighted else None
                if loss is None or not loss.requires_grad:
                    raise GS3DError(
                        f"step {step}: no loss term with a non-zero weight depends on trained parameters "
                        f"(terms {names}, weights { {n: weights[n] for n in names} })"
                    )
                loss = loss / accum
                (self._scaler.scale(loss) if self._scaler is not None else loss).backward()
        module.on_after_backward(step)
        opts = [self._optimizers[n] for n in to_step]
        params = [
            p for o in opts for g in o.param_groups for p in g["params"] if p.grad is not None
        ]
        if self._scaler is not None:
            for o in opts:
                self._scaler.unscale_(o)
        values = {f"loss/{n}": v for n, v in means.items()}
        values["loss"] = sum(weights[n] * v for n, v in means.items() if weights[n] != 0.0)
        # One fused reduction over all gradients checks them (and, when clipping by norm alone,
        # is the norm clipped by). Under fp16 the grad scaler skips steps with NaN/Inf gradients.
        norm_clipped = False
        if self._scaler is None:
            grads = [p.grad for p in params]
            if cfg.clip_grad_norm is not None and cfg.clip_grad_value is None:
                total = torch.nn.utils.get_total_norm(grads)
                norm = float(total)
                if not math.isfinite(norm):
                    self._raise_if_nonfinite_gradients(step, params, norm)
                torch.nn.utils.clip_grads_with_norm_(params, cfg.clip_grad_norm, total)
                values["grad_norm"] = norm
                norm_clipped = True
            elif float(nonfinite_flag(grads)) > 0:
                self._raise_if_nonfinite_gradients(step, params, None)
        if cfg.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(params, cfg.clip_grad_value)
        if cfg.clip_grad_norm is not None and not norm_clipped:
            norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm))
            if self._scaler is None and not math.isfinite(norm):
                self._raise_if_nonfinite_gradients(step, params, norm)
            values["grad_norm"] = norm
        for name, opt in zip(to_step, opts, strict=True):
            if self._scaler is not None:
                self._scaler.step(opt)
            else:
                opt.step()
            sched = self._schedulers.get(name)
            if sched is not None:
                sched.step()
        if self._scaler is not None:
            self._scaler.update()
        self._params_flag = nonfinite_flag(params)  # read with the next step's loss terms
        return values, stop

    def _run_step(self, batch: Any, step: int) -> Any:
        """``training_step`` under autocast; NaN/Inf it reports become a divergence at ``step``."""
        try:
            with self._autocast():
                return self._forward(batch, step)
        except Exception as e:
            # NaN weights from the previous update often fail deep inside a method (an index
            # out of range in voxelisation): name them rather than the symptom.
            self._settle_params(step - 1)
            if is_nonfinite_error(e):
                raise self._diverged(
                    step, f"{e.field}, computed in training_step", e.got or "NaN/Inf", True
                ) from None
            raise

    # ------------------------------------------------------------------ divergence
    def _settle_params(self, update_step: int) -> None:
        """Read the pending parameter check of optimiser step ``update_step`` (a host sync)."""
        flag, self._params_flag = self._params_flag, None
        if flag is not None and float(flag) > 0:
            self._raise_if_nonfinite_params(update_step)

    def _named_trained(self) -> list[tuple[str, torch.Tensor]]:
        trained = {id(p) for p in self._trained_params()}
        return [
            (f"{mname}.{pname}", p)
            for mname, model in self.module.models().items()
            for pname, p in model.named_parameters()
            if id(p) in trained
        ]

    # The fused checks can also fire on huge finite values (their norm overflows): these
    # searches confirm NaN/Inf before stopping, and run only when a check fired.
    def _raise_if_nonfinite_params(self, update_step: int) -> None:
        found = first_nonfinite(self._named_trained())
        if found is not None:
            raise self._diverged(
                update_step, f"parameter '{found[0]}' after the optimiser step", found[1], False
            )

    def _raise_if_nonfinite_gradients(
        self, step: int, params: list[torch.Tensor], norm: float | None
    ) -> None:
        """``norm``: the non-finite norm clipping would divide by (it would zero every
        gradient, so an overflow stops the run too), or ``None`` without clipping by norm."""
        names = {id(p): n for n, p in self._named_trained()}
        named = [(names.get(id(p), f"of shape {tuple(p.shape)}"), p.grad) for p in params]
        found = first_nonfinite(named)
        if found is not None:
            raise self._diverged(step, f"the gradient of parameter '{found[0]}'", found[1], True)
        if norm is not None:
            name, big = largest(named)
            raise self._diverged(
                step,
                "the gradient norm",
                f"{norm}: every entry is finite but the norm overflows; the largest, {big:.3g}, "
                f"is in the gradient of '{name}'",
                True,
            )

    def _diverged(
        self, step: int, what: str, detail: str, from_weights: bool
    ) -> TrainingDivergedError:
        """The error for NaN/Inf first seen at ``step``. ``from_weights``: the weights that
        step started from produced them (forward, loss or gradient), so a checkpoint of exactly
        those weights would fail the same way on resume whatever the new settings: it is set
        aside, and the last good checkpoint is the newest one left."""
        aside = None
        if from_weights and self.is_main:
            aside = set_aside_checkpoint(self.run, step)
        latest = self.run.latest_checkpoint()
        self._last_checkpoint = latest[1] if latest is not None else None
        return TrainingDivergedError(step, what, detail, self._last_checkpoint, aside)

    def _optimizers_for(self, step: int) -> list[str]:
        names = self.module.optimizers_to_step(step)
        if names is None:
            return list(self._optimizers)
        names = list(names)
        unknown = [n for n in names if n not in self._optimizers]
        if unknown:
            raise GS3DError(
                f"optimizers_to_step({step}) named {unknown}; configured optimizers are {sorted(self._optimizers)}"
            )
        return names

    def _check_terms(self, terms: Any, weights: dict[str, float], step: int) -> list[str]:
        if not isinstance(terms, Mapping) or not terms:
            raise GS3DError(
                f"{type(self.module).__name__}.training_step(step={step}): expected a non-empty dict of "
                f"named loss terms, got {type(terms).__name__}"
            )
        for n, t in terms.items():
            if not isinstance(t, torch.Tensor) or t.numel() != 1 or not t.is_floating_point():
                got = (
                    f"shape {tuple(t.shape)} {t.dtype}"
                    if isinstance(t, torch.Tensor)
                    else type(t).__name__
                )
                raise GS3DError(
                    f"training_step(step={step}): loss term '{n}': expected a float scalar tensor, got {got}"
                )
            if n not in weights:
                raise GS3DError(
                    f"training_step(step={step}) returned loss term '{n}' without a weight: add 'lambda_{n}' to "
                    "the config (0 logs the term without training on it) or return it from loss_weights()"
                )
        return list(terms)

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        start = self.config.ema_start
        if self.step == start:
            self.ema.reset()
        elif self.step > start:
            self.ema.update()

    # ------------------------------------------------------------------ logging, samples, checkpoints
    def _log_window(self, window: _Window) -> dict[str, float]:
        metrics = window.means()
        metrics["it_s"] = window.its()
        for name, opt in self._optimizers.items():
            groups = opt.param_groups
            metrics[f"lr/{name}"] = float(groups[0]["lr"])
            if len(groups) > 1:
                for i, g in enumerate(groups[1:], 1):
                    metrics[f"lr/{name}/{g.get('name', i)}"] = float(g["lr"])
        if self._scaler is not None:
            metrics["grad_scale"] = float(self._scaler.get_scale())
        if self._stream is not None and self._stream.dataset is not None:
            metrics["epoch"] = float(self._stream.epoch)
        if self._log is not None:
            self._log.log(self.step, metrics)
        return metrics

    def _validate(self) -> None:
        dist, module = self.dist, self.module
        assert dist is not None
        self._settle_params(self.step - 1)
        if dist.is_main:
            modes = {m: m.training for m in module.modules()}
            use_ema = self.config.validate_with_ema and self.ema_active
            module.eval()
            try:
                with (
                    preserved_rng(),
                    torch.no_grad(),
                    self._autocast(),
                    self.averaged_weights() if use_ema else contextlib.nullcontext(),
                ):
                    out = module.validation_step(self.step)
            finally:
                for m, mode in modes.items():
                    m.training = mode
            if out is not None:
                self._save_samples(out)
        barrier(dist)

    def _save_samples(self, out: Any) -> None:
        items = list(out.items()) if isinstance(out, Mapping) else [("", out)]
        scalars: dict[str, float] = {}
        for name, value in items:
            scalar = _as_scalar(value)
            if scalar is not None:
                scalars[f"val/{name}"] = scalar
                continue
            images = _as_images(value, name)
            sheet = contact_sheet(images)
            suffix = f"-{name}" if name else ""
            save_image(self.run.samples / f"step-{self.step:08d}{suffix}.png", sheet)
            if self._log is not None:
                self._log.log_image(self.step, f"val/{name or 'samples'}", sheet)
        if scalars and self._log is not None:
            self._log.log(self.step, scalars)

    def _checkpoint(self) -> None:
        dist = self.dist
        assert dist is not None
        self._check_weights()
        path = save_checkpoint(self.run, self.step, dist, self.module.models(), self._trainer_state)
        self._last_checkpoint = path
        if dist.is_main:
            prune_checkpoints(self.run, self.config.keep_checkpoints, current_step=self.step)
        for cb in self.callbacks:
            cb.on_checkpoint(self, path)

    def _check_weights(self) -> None:
        """Never checkpoint NaN/Inf weights, nor an EMA of them (``final/`` may get the EMA)."""
        self._params_flag = None  # superseded by this full check
        shadow = list(self.ema.shadow) if self.ema is not None else []
        if float(nonfinite_flag([p.detach() for p in self._trained_params()] + shadow)) == 0:
            return
        self._raise_if_nonfinite_params(self.step - 1)
        found = first_nonfinite(zip(self.ema.names, shadow, strict=True)) if shadow else None
        if found is not None:
            raise self._diverged(
                self.step - 1, f"the EMA of parameter '{found[0]}'", found[1], False
            )

    def _trainer_state(self) -> dict[str, Any]:
        cfg, dist = self.config, self.dist
        assert dist is not None
        return {
            "step": self.step,
            "samples_seen": self.step * cfg.grad_accum * cfg.batch_size * dist.world_size,
            "world_size": dist.world_size,
            "batch_size": cfg.batch_size,
            "grad_accum": cfg.grad_accum,
            "optimizers": {n: o.state_dict() for n, o in self._optimizers.items()},
            "optimizer_hparams": self._configured,
            "schedulers": {n: s.state_dict() for n, s in self._schedulers.items()},
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "module": self.module.training_state(),
            "trainer_config": self.config.model_dump(mode="json"),
        }


def _is_plain(value: Any) -> bool:
    """Numbers, strings, booleans, None and tuples/lists of them: the optimiser settings a
    checkpoint records."""
    if isinstance(value, tuple | list):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
    """A param group's settings as configured: plain values only, with the configured rate
    (``initial_lr``, which an LR schedule sets and keeps) as ``lr``."""
    out = {
        k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr") and _is_plain(v)
    }
    lr = group.get("initial_lr", group.get("lr"))
    if isinstance(lr, int | float) and not isinstance(lr, bool):
        out["lr"] = float(lr)
    return out


def _rescale_lr(opt: torch.optim.Optimizer, sched: Any, index: int, old: float, new: float) -> None:
    """Give param group ``index`` the configured rate ``new`` in place of ``old``, keeping the
    schedule's current multiplier."""
    group = opt.param_groups[index]
    current = group["lr"]
    value = float(current) * new / old if old else new
    if isinstance(current, torch.Tensor):
        current.fill_(value)
    else:
        group["lr"] = value
    if "initial_lr" in group:
        group["initial_lr"] = new
    base = getattr(sched, "base_lrs", None)
    if isinstance(base, list) and index < len(base):
        base[index] = new
        sched._last_lr = [float(g["lr"]) for g in opt.param_groups]


def _display_terms(values: Mapping[str, float]) -> dict[str, float]:
    out = {"loss": values["loss"]} if "loss" in values else {}
    out.update({k[len("loss/") :]: v for k, v in values.items() if k.startswith("loss/")})
    return out


def _as_scalar(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, torch.Tensor) and value.ndim <= 1 and value.numel() == 1:
        return float(value.item())
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size == 1:
        return float(value.item())
    return None


def _hwc(img: Any, name: str) -> Any:
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu().numpy()
    img = np.asarray(img)
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise GS3DError(
            f"validation_step()['{name}']: expected images [H, W, C], got shape {img.shape}"
        )
    if img.shape[-1] not in (1, 3, 4) and img.shape[0] in (1, 3, 4):
        img = np.moveaxis(img, 0, -1)
    return img


def _as_images(value: Any, name: str) -> list[Any]:
    if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 4:
        return [_hwc(v, name) for v in value]
    if isinstance(value, torch.Tensor | np.ndarray):
        return [_hwc(value, name)]
    if isinstance(value, list | tuple) and value:
        return [_hwc(v, name) for v in value]
    raise GS3DError(
        f"validation_step()['{name}']: expected images (a list of [H, W, C] arrays or an [N, H, W, C] tensor) "
        f"or a number, got {type(value).__name__}"
    )


__all__ = ["TrainResult", "Trainer"]
