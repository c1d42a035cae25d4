"""``gs3d eval``: score a method checkpoint or a folder of PLY / GLB / OBJ predictions on a
dataset split, by image metrics and (``--geometry``) against the exact procedural geometry."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, PRESET_HELP, SET_HELP, threads_option
from gs_core.errors import GS3DError
from gs_core.limits import MAX_RESOLUTION


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
    preset: str | None = typer.Option(None, "--preset", help=PRESET_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    seeds: int | None = typer.Option(
        None,
        "--seeds",
        min=1,
        help="Run the method with seeds 0..N-1; report the mean and the spread (std).",
    ),
    predictions: Path | None = typer.Option(
        None,
        "--predictions",
        help="Folder of <object_id>.ply Gaussians, <object_id>/gaussians.ply (gs3d fit) or "
        "<object_id>.glb / .obj meshes.",
    ),
    score: str = typer.Option(
        "auto",
        "--score",
        help="What to render and score: gaussians, mesh, or auto (the Gaussians when a "
        "prediction has them, else its mesh).",
    ),
    geometry: bool = typer.Option(
        False,
        "--geometry",
        help="Also score geometry against the procedural world's exact surface: Chamfer, "
        "F-score@0.05, normal consistency (Gaussians through their centres).",
    ),
    geometry_points: int = typer.Option(
        50_000,
        "--geometry-points",
        min=1,
        help="With --geometry: surface samples per point set (Chamfer is O(N^2)).",
    ),
    iou_resolution: int | None = typer.Option(
        None,
        "--iou-resolution",
        min=2,
        help="With --geometry: volume IoU of meshes on an N^3 grid (cost N^3 x faces).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Report folder: results.json, results.md, sheets/."
    ),
    protocol: str = typer.Option(
        "gso",
        "--protocol",
        help="ring15, ring12 (DD3G), zero123pp, gso (ring15 + zero123pp), random or all.",
    ),
    align_azimuth: bool = typer.Option(
        False,
        "--align-azimuth",
        help="Per prediction, search the azimuth offset whose render best matches the input "
        "view and orbit the target cameras by it (DD3G aligns its samples by hand).",
    ),
    no_references: bool = typer.Option(
        False,
        "--no-references",
        help="Skip the no-3D references (the blank background and the input copied to every "
        "target, PSNR / SSIM) scored beside the predictions.",
    ),
    frame: str | None = typer.Option(
        None,
        "--frame",
        help="Frame of the predictions: world, azimuth (input at azimuth 0) or camera "
        "(default: world for --predictions, the method's output frame for --method).",
    ),
    resolution: int = typer.Option(
        256, "--resolution", min=8, max=MAX_RESOLUTION, help="Evaluation image size."
    ),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Comma-separated metrics (default: every registered one)."
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
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
    threads: int | None = threads_option(),
) -> None:
    """Render predictions (Gaussians or meshes) at the protocol's cameras; report PSNR/SSIM/LPIPS/CLIP
    per object and mean, and with --geometry Chamfer/F-score against the exact procedural surface."""
    from gs_core.cli.console import make_console
    from gs_core.cli.method_loading import load_method_for_cli
    from gs_core.cli.options import check_backend
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.evaluation import (
        EvalConfig,
        MethodPredictor,
        PlyFolderPredictor,
        evaluate,
    )
    from gs_core.evaluation.harness import plan_protocol_evaluation
    from gs_core.evaluation.references import REFERENCE_NAMES
    from gs_core.plugins.registry import get_registry

    if (method is None) == (predictions is None):
        raise GS3DError(
            "give exactly one of --method (with --checkpoint or --preset) or --predictions FOLDER"
        )
    for flag, given in (
        ("--checkpoint", checkpoint),
        ("--preset", preset),
        ("--set", overrides or None),
        ("--seeds", seeds),
    ):
        if given is not None and method is None:
            raise GS3DError(f"{flag} needs --method")
    check_backend(backend)
    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    console = make_console(stderr=False)
    if predictions is not None:
        default_frame = "world"
    else:
        default_frame = get_registry().get_method(method).output_frame
    cfg = EvalConfig.from_options(
        protocol=protocol,
        resolution=resolution,
        frame=frame or default_frame,
        n_random=n_random,
        background=background,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        sheets=not no_sheets,
        max_objects=max_objects,
        backend=backend,
        seeds=seeds,
        score=score,
        geometry=geometry,
        iou_resolution=iou_resolution,
        geometry_points=geometry_points,
        align_azimuth=align_azimuth,
        references=not no_references,
    )
    cats = [c.strip() for c in categories.split(",")] if categories else None
    # Dataset, protocol, resolution, report folder and metrics are checked before any model
    # loads; what is merely doubtful (upsampled ground truth, a metric without weights) is
    # said now rather than after the last object.
    plan = plan_protocol_evaluation(data, split, cfg, cats, dev, out, overwrite)
    for line in plan.warnings:
        make_console().print(f"warning: {line}", style="yellow")
    if predictions is not None:
        predictor = PlyFolderPredictor(predictions, device=dev)
        predictor.require(plan.object_ids)
        label = f"predictions {predictions}"
    else:
        model = load_method_for_cli(
            console, method, checkpoint=checkpoint, preset=preset, overrides=overrides, device=dev
        )
        predictor = MethodPredictor(model, label=method)
        source = checkpoint or (f"preset {preset}" if preset else "default checkpoint")
        label = f"method {method} ({source})"
    report = evaluate(
        predictor,
        data,
        split,
        cfg,
        out=out,
        overwrite=overwrite,
        device=dev,
        label=label,
        categories=cats,
        progress=lambda k, n, oid: console.print(f"[{k + 1}/{n}] {oid}"),
        plan=plan,
    )
    mean = report["mean"]
    parts = []
    for col, groups in mean.items():
        if col == "seconds" or not isinstance(groups, dict):
            continue
        g = "all" if "all" in groups else next(iter(groups))
        spread = f" ± {report['std'][col][g]:.4f}" if "std" in report else ""
        parts.append(f"{col} {groups[g]:.4f}{spread}")
    if mean.get("seconds") is not None:
        parts.append(f"{mean['seconds']:.3f} s/object")
    if "geometry" in report:
        geo = report["geometry"]
        for name in ("chamfer", "fscore", "normal_consistency", "volume_iou"):
            if name in geo["mean"]:
                spread = f" ± {geo['std'][name]:.4f}" if "std" in geo else ""
                parts.append(f"{name} {geo['mean'][name]:.4f}{spread}")
    for name, ref in report.get("references", {}).items():
        cols = [
            f"{col} {groups['all' if 'all' in groups else next(iter(groups))]:.4f}"
            for col, groups in ref.items()
            if groups
        ]
        console.print(f"{REFERENCE_NAMES[name]}: " + ", ".join(cols))
    over = f" (mean ± std over {seeds} seeds)" if "std" in report else ""
    console.print(
        f"{report['num_objects']} objects{over}: " + ", ".join(parts) + f" -> {out / 'results.md'}"
    )


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
