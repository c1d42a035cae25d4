"""``gs3d train``: train a registered method with the shared engine.

One process: ``gs3d train --method NAME --preset P --data DIR --out RUN_DIR [key=value ...]``.
Several GPUs: ``torchrun --nproc_per_node=G -m gs_core.cli.main train ...`` (same options).
``--resume`` continues the newest checkpoint of ``RUN_DIR`` with the settings recorded in
``RUN_DIR/config.json`` (overrides given with ``--resume`` are applied on top, e.g. a larger
``train.max_steps``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from gs_core.errors import FileFormatError, GS3DError

# The fields of RUN/config.json that --resume reads, with the JSON types each may hold (the
# file may have been edited by hand: a wrong type must be one line, not a traceback later).
_SNAPSHOT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "method": ((str,), "a method name (string)"),
    "preset": ((str, type(None)), "a preset name (string) or null"),
    "stage": ((str, type(None)), "a stage name (string) or null"),
    "data": ((str, type(None)), "a data path (string) or null"),
    "init": ((str, type(None)), "a checkpoint path or hub id (string) or null"),
    "seed": ((int,), "an integer seed"),
    "overrides": ((list,), "a list of 'key=value' strings"),
}


def _read_snapshot(run_dir: Path) -> dict[str, Any]:
    """The settings a run recorded in ``RUN/config.json``, type-checked; ``{}`` when absent."""
    path = run_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise FileFormatError(path, f"expected a JSON object, got {type(data).__name__}")
    if "method" not in data:
        raise FileFormatError(path, "field 'method': missing (the run's method name)")
    for name, (types, expected) in _SNAPSHOT_FIELDS.items():
        if name not in data:
            continue
        value = data[name]
        # bool is an int to Python, never a seed.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise FileFormatError(path, f"field '{name}': expected {expected}, got {value!r}")
    if "seed" in data and not 0 <= data["seed"] < 2**63:
        raise FileFormatError(
            path, f"field 'seed': expected an integer in [0, 2**63), got {data['seed']}"
        )
    for i, item in enumerate(data.get("overrides", [])):
        if not isinstance(item, str) or "=" not in item:
            raise FileFormatError(
                path, f"field 'overrides[{i}]': expected a 'key=value' string, got {item!r}"
            )
    return data


def train(
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides of the method config (e.g. train.max_steps=100)."
    ),
    method: str | None = typer.Option(
        None, "--method", help="Registered method name (see `gs3d plugins`)."
    ),
    preset: str | None = typer.Option(
        None, "--preset", help="Config preset of the method (default: paper)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Training data directory, read by the method."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run directory: config, checkpoints, logs, samples, final model."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the newest checkpoint in --out."),
    stage: str | None = typer.Option(
        None,
        "--stage",
        help="Training stage of a multi-stage method (default: its first; a wrong name lists them).",
    ),
    init: str | None = typer.Option(
        None,
        "--init",
        help="Start from the weights of a save_pretrained directory or hub id (e.g. a previous stage's RUN_DIR/final).",
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, max=2**63 - 1, help="Seed for building the model (default: 0)."
    ),
    budget: float | None = typer.Option(
        None,
        "--budget",
        min=0.0,
        help="Wall-clock budget in seconds: stop after the step that exceeds it, with a "
        "checkpoint to --resume from.",
    ),
) -> None:
    """Train a method; the trained model is written to RUN_DIR/final (EMA weights when EMA is on)."""
    from rich.console import Console

    from gs_core import __version__
    from gs_core.loading import build_method, init_from
    from gs_core.plugins.registry import get_registry
    from gs_core.training import Trainer, seed_everything

    console = Console(stderr=True, highlight=False, markup=False)  # paths and messages verbatim
    overrides = list(overrides or [])
    recorded = _read_snapshot(out) if resume else {}
    if resume and recorded:
        if method is not None and method != recorded.get("method"):
            raise GS3DError(
                f"--resume: {out} is a run of method '{recorded.get('method')}', not '{method}' (drop --method)"
            )
        for name, given in (("preset", preset), ("stage", stage)):
            if given is not None and given != recorded.get(name):
                raise GS3DError(
                    f"--resume: {out} was run with --{name} {recorded.get(name)!r}, not {given!r}"
                )
        method = recorded.get("method")
        preset = recorded.get("preset")
        stage = recorded.get("stage")
        data = (
            data if data is not None else (Path(recorded["data"]) if recorded.get("data") else None)
        )
        init = None  # the checkpoint has the weights
        seed = recorded.get("seed", 0) if seed is None else seed
        overrides = [*recorded.get("overrides", []), *overrides]
    if method is None:
        raise GS3DError("--method is required (or --resume with a run directory that records it)")
    preset = preset or "paper"
    seed = 0 if seed is None else seed
    if data is not None and not data.exists():
        raise GS3DError(f"--data {data}: no such file or directory")

    spec = get_registry().get_method(method)
    if stage is not None or not resume:  # a resumed run keeps the stage it recorded, even none
        stage = spec.resolve_stage(stage)
    stage_spec = spec.get_stage(stage) if stage is not None else None
    if init is None and not resume and stage_spec is not None and stage_spec.init_from:
        console.print(
            f"note: stage '{stage}' of {method} usually starts from the '{stage_spec.init_from}' "
            f"stage's weights (--init RUN_DIR/final of that run); starting from scratch"
        )
    config = spec.config_class.preset(preset)
    if overrides:
        config = config.with_overrides(overrides)
    seed_everything(seed)
    model = build_method(spec, config)
    if init is not None:
        console.print(init_from(model, init))
    module = model.training_module(stage, data_dir=data)
    snapshot = {
        "method": method,
        "preset": preset,
        "stage": stage,
        "data": str(data) if data is not None else None,
        "init": init if init is not None else recorded.get("init"),
        "seed": seed,
        "overrides": overrides,
        "method_config": config.model_dump(mode="json"),
        "gs3d_version": __version__,
        "plugin": {"distribution": spec.distribution, "version": spec.version},
    }
    trainer = Trainer(module, out, resume=resume, snapshot=snapshot, budget_s=budget)
    result = trainer.fit()
    if not trainer.is_main:
        return
    if result.interrupted:
        console.print(
            f"stopped ({result.stopped_by or 'interrupted'}) at step {result.step}; continue with: "
            f"gs3d train --out {out} --resume"
        )
        return
    final = out / "final"
    with trainer.averaged_weights():
        model.save_pretrained(final, overwrite=True)
    ema = " (EMA weights)" if trainer.ema_active else ""
    console.print(
        f"trained {method} for {result.step} steps; model{ema}: {final}; checkpoint: {result.checkpoint}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
