"""``gs3d compare``: every installed method (or those named) under one evaluation protocol, in
one report folder: ``index.html``, ``results.json``, ``results.md`` and small PNGs."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, threads_option
from gs_core.limits import MAX_RESOLUTION


def compare_command(
    data: Path = typer.Option(
        ...,
        "--data",
        help="Dataset root (transforms.json objects + splits/), e.g. procedural-eval.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Report folder: index.html, results.json, results.md, images/."
    ),
    methods: str | None = typer.Option(
        None,
        "--methods",
        help="Comma-separated methods (default: every installed one, each at its default "
        "checkpoint, or its paper preset when it has no weights of its own).",
    ),
    split: str = typer.Option("test", "--split", help="Split to evaluate (all: every object)."),
    protocol: str = typer.Option(
        "gso", "--protocol", help="ring15, ring12 (DD3G), zero123pp, gso (both), random or all."
    ),
    seeds: int | None = typer.Option(
        None,
        "--seeds",
        min=1,
        help="Run every method with seeds 0..N-1 and report the mean and spread (default: "
        "seed 0 for every method).",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Compare on the first N objects of the split only."
    ),
    resolution: int = typer.Option(
        256, "--resolution", min=8, max=MAX_RESOLUTION, help="Evaluation image size."
    ),
    geometry_points: int = typer.Option(
        50_000,
        "--geometry-points",
        min=1,
        help="Surface samples per point set of the geometry scores (procedural data only).",
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing non-empty --out folder."
    ),
    threads: int | None = threads_option(),
) -> None:
    """Compare methods under one protocol: the same inputs, views, metrics and seeds for all;
    a method that fails or lacks weights gets a row with its reason."""
    from gs_core.cli.console import make_console
    from gs_core.cli.options import check_backend
    from gs_core.cli.progress import progress
    from gs_core.comparison import (
        choose_methods,
        parse_methods,
        prepare_comparison,
        run_method,
        write_report,
    )
    from gs_core.comparison.layout import MARKDOWN_NAME, check_report_dir
    from gs_core.devices import resolve_device, set_cpu_threads

    check_backend(backend)
    names = parse_methods(methods)
    check_report_dir(out, overwrite)
    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    console = make_console()
    setup = prepare_comparison(
        data,
        split=split,
        protocol=protocol,
        resolution=resolution,
        seeds=seeds,
        limit=limit,
        device=dev,
        backend=backend,
        geometry_points=geometry_points,
    )
    for line in setup.plan.warnings:
        console.print(f"warning: {line}", style="yellow")
    choices = choose_methods(names)
    n_obj = len(setup.plan.object_ids)
    console.print(
        f"gs3d compare: {len(choices)} method(s) ({', '.join(c.name for c in choices)}) on "
        f"{n_obj} object(s) of {data}, protocol {protocol}, device {setup.device_name}"
    )
    results = []
    for i, choice in enumerate(choices):
        label = f"[{i + 1}/{len(choices)}] {choice.name}"
        with progress(console, label, n_obj, enabled=choice.ready) as update:
            result = run_method(choice, setup, progress=update)
        results.append(result)
        console.print(f"{label}: {_summary(result)}", style=None if result.ok else "yellow")
    page = write_report(out, setup, results, overwrite=overwrite)
    ok = sum(r.ok for r in results)
    make_console(stderr=False).print(
        f"{ok}/{len(results)} method(s) scored -> {page} (table: {out / MARKDOWN_NAME})"
    )


def _summary(result) -> str:
    """One line: a method's headline scores, or its status and reason."""
    from gs_core.comparison.table import status_text

    if not result.ok:
        return status_text(result)
    mean = result.report["mean"]
    parts = []
    for col in ("psnr", "ssim"):
        groups = mean.get(col) or {}
        value = groups.get("all", next(iter(groups.values()), None))
        if value is not None:
            parts.append(f"{col} {value:.4f}")
    if mean.get("seconds") is not None:
        parts.append(f"{mean['seconds']:.3f} s/object")
    if result.peak_memory_bytes is not None:
        parts.append(f"{result.memory_measure} {result.peak_memory_bytes / 2**20:.0f} MiB")
    return ", ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
