"""Running every method of a comparison through the ``gs3d eval`` harness under one plan.

:func:`prepare_comparison` checks the dataset, protocol and metrics once (the harness's
:func:`~gs_core.evaluation.plan.plan_evaluation`), so every method is scored on the same
objects, input views, target views, metrics and seeds; only the frame the cameras are placed in
follows each method's ``output_frame``. Geometry is scored whenever the dataset comes from the
procedural world, whose exact surfaces are the reference.

:func:`run_method` loads one method at its default (see :mod:`gs_core.comparison.selection`),
evaluates it and measures its peak memory. Whatever goes wrong inside a method — missing
weights, an exception in its code, running out of memory — is caught and becomes the
:class:`MethodResult`'s status and one-line reason, so one broken method never stops the
others or the report. Only an interrupt (Ctrl-C) ends the comparison.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gs_core.comparison.machine import describe_device, measure_peak, memory_measure
from gs_core.comparison.selection import MethodChoice
from gs_core.comparison.thumbnails import frame_strip, reference_thumbnails, strip_positions
from gs_core.errors import GS3DError, WeightsNotFoundError, is_out_of_memory
from gs_core.evaluation.harness import EvalConfig, ObjectRenders, evaluate
from gs_core.evaluation.plan import EvalPlan, plan_evaluation
from gs_core.evaluation.predictors import MethodPredictor

OK = "ok"
FAILED = "failed"
MISSING_WEIGHTS = "missing weights"
# Without --seeds every method still gets the same seed, so stochastic methods are comparable.
DEFAULT_SEED = 0


@dataclass
class ComparisonSetup:
    """What every method of one comparison shares: the plan, the harness config (its ``frame``
    is replaced per method), the device and the reference thumbnails."""

    plan: EvalPlan
    config: EvalConfig
    device: torch.device
    device_name: str
    geometry_note: str | None  # why geometry is not scored, when it is not
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  # object -> [h, w, 3] uint8
    ground_truth: dict[str, np.ndarray] = field(default_factory=dict)  # object -> strip

    @property
    def seeds(self) -> list[int]:
        return list(range(self.config.seeds)) if self.config.seeds else [DEFAULT_SEED]


@dataclass
class MethodResult:
    """One method's outcome: ``status`` is ``ok`` or why it has no scores (``reason``)."""

    name: str
    status: str
    reason: str | None = None
    source: str = ""
    distribution: str = ""
    version: str = ""
    report: dict[str, Any] | None = None  # the harness's report (see gs_core.evaluation)
    load_seconds: float | None = None
    wall_seconds: float | None = None
    peak_memory_bytes: int | None = None
    memory_measure: str = ""
    strips: dict[str, np.ndarray] = field(default_factory=dict)  # object -> [h, w, 3] uint8

    @property
    def ok(self) -> bool:
        return self.status == OK


def prepare_comparison(
    data: str | Path,
    *,
    split: str = "test",
    protocol: str = "gso",
    resolution: int = 256,
    seeds: int | None = None,
    limit: int | None = None,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    geometry_points: int = 50_000,
    background: str = "white",
) -> ComparisonSetup:
    """Check the dataset and build the shared plan; raises :class:`GS3DError` in one line for
    what no method could get past (a missing split, a protocol view the data lacks, ...)."""
    device = torch.device(device)
    cfg = EvalConfig.from_options(
        protocol=protocol,
        resolution=resolution,
        seeds=seeds,
        max_objects=limit,
        backend=backend,
        background=background,
        sheets=False,
        geometry_points=geometry_points,
    )
    plan = plan_evaluation(data, split, cfg, device=device)
    note = _exact_geometry(plan)
    if note is None:
        cfg = cfg.with_overrides({"geometry": True})
    inputs, truths = reference_thumbnails(plan, cfg)
    return ComparisonSetup(plan, cfg, device, describe_device(device), note, inputs, truths)


def _exact_geometry(plan: EvalPlan) -> str | None:
    """``None`` when every object can be rebuilt from the procedural world, else why not."""
    from gs_core.evaluation.world_geometry import check_procedural

    for oid, rec in plan.records.items():
        try:
            check_procedural(plan.root / oid, rec.meta)
        except GS3DError as e:
            return str(e)
    return None


def run_method(
    choice: MethodChoice,
    setup: ComparisonSetup,
    progress: Callable[[int, int], None] | None = None,
) -> MethodResult:
    """Load ``choice`` at its default, score it on ``setup``'s plan, and measure it.

    ``progress(done, total)`` is called after each scored object. Never raises for the
    method's own failures (see the module docstring).
    """
    spec = choice.spec
    result = MethodResult(
        choice.name,
        choice.status,
        choice.reason,
        choice.source,
        distribution=spec.distribution if spec is not None else "",
        version=spec.version if spec is not None else "",
        memory_measure=memory_measure(setup.device),
    )
    if not choice.ready:
        return result
    from gs_core.loading import load_method

    plan, total = setup.plan, len(setup.plan.object_ids)
    where = "loading"

    def on_object(r: ObjectRenders) -> None:
        result.strips[r.object_id] = frame_strip(r.renders, strip_positions(r.groups))
        if progress is not None:
            progress(len(result.strips), total)

    def on_start(k: int, n: int, object_id: str) -> None:
        nonlocal where
        where = f"on {object_id}"

    cfg = setup.config.with_overrides({"frame": spec.output_frame})
    model = None
    t0 = time.perf_counter()
    with measure_peak(setup.device) as peak:
        try:
            model = load_method(choice.name, device=setup.device)
            result.load_seconds = time.perf_counter() - t0
            seed = None if cfg.seeds else DEFAULT_SEED
            result.report = evaluate(
                MethodPredictor(model, label=choice.name, seed=seed),
                plan.root,
                plan.split,
                cfg,
                device=setup.device,
                label=f"method {choice.name} ({choice.source})",
                progress=on_start,
                plan=plan,
                on_object=on_object,
            )
            result.status = OK
        except Exception as e:  # a method's code may fail in any way; the others go on
            result.status, result.reason = _failure(e, where)
            result.strips.clear()
        finally:
            del model
            gc.collect()
            if setup.device.type == "cuda":
                torch.cuda.empty_cache()
    result.wall_seconds = time.perf_counter() - t0
    result.peak_memory_bytes = peak.bytes
    result.memory_measure = peak.measure
    return result


def _failure(e: Exception, where: str) -> tuple[str, str]:
    """``(status, one-line reason)`` of a method's exception raised ``where``."""
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(e, WeightsNotFoundError):
        return MISSING_WEIGHTS, f"{where}: {text}"
    if is_out_of_memory(e):
        return (
            FAILED,
            f"{where}: out of memory ({text[:160]})" if text else f"{where}: out of memory",
        )
    kind = "" if isinstance(e, GS3DError) else f"{type(e).__name__}: "
    return FAILED, f"{where}: {kind}{text}".rstrip(": ")


def run_comparison(choices: list[MethodChoice], setup: ComparisonSetup) -> list[MethodResult]:
    """:func:`run_method` for each choice, in order."""
    return [run_method(c, setup) for c in choices]


__all__ = [
    "DEFAULT_SEED",
    "FAILED",
    "MISSING_WEIGHTS",
    "OK",
    "ComparisonSetup",
    "MethodResult",
    "prepare_comparison",
    "run_comparison",
    "run_method",
]
