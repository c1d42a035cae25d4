"""``gs3d fit``: per-object 3DGS fitting of one object folder or a whole dataset split."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, DEVICE_HELP, threads_option
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
    threads: int | None = threads_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
    alpha_from_background: str | None = typer.Option(
        None, "--alpha-from-background", help="r,g,b of a solid background for RGB views."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the results as JSON on stdout (messages go to stderr)."
    ),
) -> None:
    """Fit 3D Gaussians to an object's views (3DGS with gsplat's densification) and write a PLY."""
    from gs_core.cli.console import make_console, print_json
    from gs_core.cli.options import check_backend, parse_floats
    from gs_core.cli.progress import progress
    from gs_core.data.layout import read_split
    from gs_core.data.transforms import GAUSSIANS_NAME, TRANSFORMS_NAME
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.fitting import FitConfig, fit_object
    from gs_core.io import check_overwrite

    cfg = FitConfig.preset(preset)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    if backend is not None:
        cfg = cfg.with_overrides({"backend": check_backend(backend)})
    dev = resolve_device(device, field="--device")
    n_threads = set_cpu_threads(threads)
    bg = (
        parse_floats(alpha_from_background, 3, "--alpha-from-background")
        if alpha_from_background
        else None
    )
    console = make_console()
    if (path / TRANSFORMS_NAME).is_file():
        targets = [(path, out)]
    else:
        if out is not None:
            raise GS3DError(
                "--out names one file; for a dataset root each object gets OBJECT/gaussians.ply"
            )
        targets = [(path / oid, None) for oid in read_split(path, split)]
    # Every destination is checked before the first fit, so a refusal never comes after hours
    # of fitting, with some objects written and others not.
    for d, o in targets:
        dest = o or d / GAUSSIANS_NAME
        if not (skip_existing and dest.exists()):
            check_overwrite(dest, overwrite)
    results = []
    for k, (d, o) in enumerate(targets):
        dest = o or d / GAUSSIANS_NAME
        entry = {"object": d.name, "folder": str(d), "output": str(dest)}
        if dest.exists() and skip_existing and not overwrite:
            console.print(f"[{k + 1}/{len(targets)}] {d.name}: {dest} exists, skipped")
            results.append({**entry, "skipped": True})
            continue
        with progress(console, f"fitting {d.name}", cfg.iterations, enabled=not quiet) as update:
            res = fit_object(
                d,
                cfg,
                out=dest,
                overwrite=overwrite,
                device=dev,
                alpha_from_background=bg,
                callback=lambda step, rec: update(step + 1),
            )
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
        results.append(
            {
                **entry,
                "skipped": False,
                "num_gaussians": len(res.gaussians),
                "steps": res.steps,
                "seconds": res.seconds,
                "metrics": dict(m),
            }
        )
    if as_json:
        print_json(
            {
                "preset": preset,
                "device": str(dev),
                "threads": n_threads,
                "config": cfg.model_dump(mode="json"),
                "objects": results,
            }
        )


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
