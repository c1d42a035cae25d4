"""``gs3d fit``: per-object 3DGS fitting of one object folder or a whole dataset split."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP
from gs_core.errors import GS3DError


def fit(
    path: Path = typer.Argument(
        ..., help="An object folder (with transforms.json) or a dataset root."
    ),
    split: str = typer.Option(
        "train", "--split", help="For a dataset root: the split to fit (all: every object)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output PLY for one object (default: OBJECT/gaussians.ply)."
    ),
    preset: str = typer.Option(
        "small", "--preset", help="paper (3DGS schedule), small (CPU minutes) or tiny."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="FitConfig fields: key=value (repeatable)."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help=BACKEND_HELP + " (default: the preset's, auto)"
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace existing gaussians.ply files."
    ),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="For a dataset: skip objects already fitted."
    ),
    threads: int = typer.Option(
        0,
        "--threads",
        min=0,
        help="torch CPU threads (0: torch's default; 1 is often fastest for small images).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    alpha_from_background: str | None = typer.Option(
        None, "--alpha-from-background", help="r,g,b of a solid background for RGB views."
    ),
) -> None:
    """Fit 3D Gaussians to an object's views (3DGS with gsplat's densification) and write a PLY."""
    import torch
    from rich.console import Console

    from gs_core.cli.options import check_backend, parse_floats
    from gs_core.data.layout import read_split
    from gs_core.data.transforms import GAUSSIANS_NAME, TRANSFORMS_NAME
    from gs_core.devices import resolve_device
    from gs_core.fitting import FitConfig, fit_object

    if threads:
        torch.set_num_threads(threads)
    cfg = FitConfig.preset(preset)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    if backend is not None:
        cfg = cfg.with_overrides({"backend": check_backend(backend)})
    dev = resolve_device(device, field="--device")
    bg = (
        parse_floats(alpha_from_background, 3, "--alpha-from-background")
        if alpha_from_background
        else None
    )
    console = Console()
    if (path / TRANSFORMS_NAME).is_file():
        targets = [(path, out)]
    else:
        if out is not None:
            raise GS3DError(
                "--out names one file; for a dataset root each object gets OBJECT/gaussians.ply"
            )
        targets = [(path / oid, None) for oid in read_split(path, split)]
    for k, (d, o) in enumerate(targets):
        dest = o or d / GAUSSIANS_NAME
        if dest.exists() and skip_existing and not overwrite:
            console.print(f"[{k + 1}/{len(targets)}] {d.name}: {dest} exists, skipped")
            continue
        res = _fit_with_progress(fit_object, d, cfg, dest, overwrite, dev, bg, quiet)
        m = res.metrics
        held = (
            f"held-out PSNR {m['psnr']:.2f} dB, SSIM {m.get('ssim', float('nan')):.4f}"
            if "psnr" in m
            else "no held-out views"
        )
        console.print(
            f"[{k + 1}/{len(targets)}] {d.name}: {len(res.gaussians)} Gaussians, {res.steps} steps in "
            f"{res.seconds:.1f} s, {held} -> {dest}"
        )


def _fit_with_progress(fit_object, d, cfg, dest, overwrite, dev, bg, quiet):
    if quiet:
        return fit_object(
            d, cfg, out=dest, overwrite=overwrite, device=dev, alpha_from_background=bg
        )
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn(f"fitting {d.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("steps", total=cfg.iterations)
        return fit_object(
            d,
            cfg,
            out=dest,
            overwrite=overwrite,
            device=dev,
            alpha_from_background=bg,
            callback=lambda step, rec: bar.update(task, completed=step + 1),
        )


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
