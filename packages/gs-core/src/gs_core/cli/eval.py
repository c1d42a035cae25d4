"""``gs3d eval``: score a method checkpoint or a folder of PLYs on a dataset split."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.errors import GS3DError


def eval_command(
    data: Path = typer.Option(
        ..., "--data", help="Dataset root (transforms.json objects + splits/)."
    ),
    split: str = typer.Option("test", "--split", help="Split to evaluate (all: every object)."),
    method: str | None = typer.Option(
        None, "--method", help="A registered method (see gs3d plugins)."
    ),
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", help="Method checkpoint directory or hub id."
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Folder of <object_id>.ply predictions."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Report folder: results.json, results.md, sheets/."
    ),
    protocol: str = typer.Option(
        "gso", "--protocol", help="ring15, zero123pp, gso (both), random or all."
    ),
    frame: str | None = typer.Option(
        None,
        "--frame",
        help="Frame of the predictions: world, azimuth (input at azimuth 0) or camera "
        "[world for --predictions, azimuth for --method].",
    ),
    resolution: int = typer.Option(256, "--resolution", min=8, help="Evaluation image size."),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Comma-separated metrics [every registered one]."
    ),
    n_random: int = typer.Option(16, "--n-random", min=1, help="Views of the random protocol."),
    categories: str | None = typer.Option(
        None, "--categories", help="Comma-separated categories to keep."
    ),
    max_objects: int | None = typer.Option(
        None, "--max-objects", min=1, help="Evaluate only the first N objects."
    ),
    background: str = typer.Option("white", "--background", help="white, black or gray."),
    no_sheets: bool = typer.Option(
        False, "--no-sheets", help="Skip the per-object contact sheets."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
) -> None:
    """Render predictions at the protocol's cameras; report PSNR/SSIM/LPIPS/CLIP per object and mean."""
    from rich.console import Console

    from gs_core.cli.fit import _device
    from gs_core.evaluation import (
        EvalConfig,
        MethodPredictor,
        PlyFolderPredictor,
        evaluate,
        load_method,
    )

    if (method is None) == (predictions is None):
        raise GS3DError("give exactly one of --method (with --checkpoint) or --predictions FOLDER")
    if checkpoint is not None and method is None:
        raise GS3DError("--checkpoint needs --method")
    dev = _device(device)
    cfg = EvalConfig(
        protocol=protocol,
        resolution=resolution,
        frame=frame or ("world" if predictions is not None else "azimuth"),
        n_random=n_random,
        background=background,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        sheets=not no_sheets,
        max_objects=max_objects,
    )
    if predictions is not None:
        predictor = PlyFolderPredictor(predictions, device=dev)
        label = f"predictions {predictions}"
    else:
        model = load_method(method, checkpoint, device=dev)
        predictor = MethodPredictor(model, label=method)
        label = f"method {method} ({checkpoint or 'default checkpoint'})"
    console = Console()
    report = evaluate(
        predictor,
        data,
        split,
        cfg,
        out=out,
        overwrite=overwrite,
        device=dev,
        label=label,
        categories=[c.strip() for c in categories.split(",")] if categories else None,
        progress=lambda k, n, oid: console.print(f"[{k + 1}/{n}] {oid}", highlight=False),
    )
    mean = report["mean"]
    parts = []
    for col, groups in mean.items():
        if col == "seconds" or not isinstance(groups, dict):
            continue
        g = "all" if "all" in groups else next(iter(groups))
        parts.append(f"{col} {groups[g]:.4f}")
    if mean.get("seconds") is not None:
        parts.append(f"{mean['seconds']:.3f} s/object")
    console.print(
        f"{report['num_objects']} objects: " + ", ".join(parts) + f" -> {out / 'results.md'}"
    )
    for name, why in report["unavailable_metrics"].items():
        console.print(f"[yellow]metric {name} unavailable:[/] {why}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
