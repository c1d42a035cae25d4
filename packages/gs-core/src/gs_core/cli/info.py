"""``gs3d info``: a quick look inside a Gaussian splat file."""

from __future__ import annotations

from pathlib import Path

import typer


def info(path: Path = typer.Argument(..., help="A 3DGS .ply or .splat file.")) -> None:
    """Print the number of Gaussians, SH degree, bounds and attribute statistics."""
    from rich.console import Console
    from rich.table import Table

    from gs_core.io import load_ply, load_splat

    g = load_splat(path) if path.suffix.lower() == ".splat" else load_ply(path)
    console = Console()
    console.print(f"[bold]{path}[/]: {g.num_gaussians:,} Gaussians, SH degree {g.sh_degree}")
    if g.num_gaussians == 0:
        return
    t = Table(show_header=True)
    for col in ("attribute", "min", "mean", "max"):
        t.add_column(col)
    m = g.means
    for i, ax in enumerate("xyz"):
        t.add_row(
            f"bounds {ax}", f"{m[:, i].min():.4g}", f"{m[:, i].mean():.4g}", f"{m[:, i].max():.4g}"
        )
    s = g.scales
    t.add_row("scale", f"{s.min():.4g}", f"{s.mean():.4g}", f"{s.max():.4g}")
    o = g.opacities
    t.add_row("opacity", f"{o.min():.4g}", f"{o.mean():.4g}", f"{o.max():.4g}")
    c = g.colors
    t.add_row("diffuse colour", f"{c.min():.4g}", f"{c.mean():.4g}", f"{c.max():.4g}")
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
