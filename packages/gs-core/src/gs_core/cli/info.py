"""``gs3d info``: a quick look inside a Gaussian splat file."""

from __future__ import annotations

from pathlib import Path

import typer


def info(
    path: Path = typer.Argument(..., help="A 3DGS .ply or .splat file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Print the number of Gaussians, SH degree, bounds and attribute statistics."""
    from rich.table import Table

    from gs_core.cli.console import make_console, print_json
    from gs_core.io import load_ply, load_splat

    g = load_splat(path) if path.suffix.lower() == ".splat" else load_ply(path)
    stats = summary(g)
    if as_json:
        print_json({"path": str(path), **stats})
        return
    console = make_console(stderr=False)
    console.print(f"{path}: {g.num_gaussians:,} Gaussians, SH degree {g.sh_degree}")
    if not stats["attributes"]:
        return
    t = Table(show_header=True)
    for col in ("attribute", "min", "mean", "max"):
        t.add_column(col)
    for name, s in stats["attributes"].items():
        t.add_row(name.replace("_", " "), *(f"{s[k]:.4g}" for k in ("min", "mean", "max")))
    console.print(t)


def summary(g) -> dict:
    """Count, SH degree and min / mean / max of the bounds, scales, opacities and colours."""

    def stat(t) -> dict[str, float]:
        return {"min": float(t.min()), "mean": float(t.mean()), "max": float(t.max())}

    attributes: dict[str, dict[str, float]] = {}
    if g.num_gaussians:
        for i, ax in enumerate("xyz"):
            attributes[f"bounds_{ax}"] = stat(g.means[:, i])
        attributes["scale"] = stat(g.scales)
        attributes["opacity"] = stat(g.opacities)
        attributes["diffuse_colour"] = stat(g.colors)
    return {"num_gaussians": g.num_gaussians, "sh_degree": g.sh_degree, "attributes": attributes}


def register(app: typer.Typer) -> None:
    app.command("info")(info)
