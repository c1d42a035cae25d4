"""``gs3d convert``: between 3DGS PLY and .splat."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.errors import GS3DError


def convert(
    src: Path = typer.Argument(..., help="Input .ply or .splat."),
    dst: Path = typer.Argument(..., help="Output .splat or .ply."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Convert a Gaussian splat file (PLY is lossless; .splat keeps diffuse colour only)."""
    from gs_core.io import load_ply, load_splat, save_ply, save_splat

    readers = {".ply": load_ply, ".splat": load_splat}
    writers = {".ply": save_ply, ".splat": save_splat}
    if src.suffix.lower() not in readers:
        raise GS3DError(f"{src}: unsupported input format (expected .ply or .splat)")
    if dst.suffix.lower() not in writers:
        raise GS3DError(f"{dst}: unsupported output format (expected .ply or .splat)")
    g = readers[src.suffix.lower()](src)
    writers[dst.suffix.lower()](dst, g, overwrite=overwrite)
    typer.echo(f"wrote {dst} ({g.num_gaussians:,} Gaussians)")


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
