"""``gs3d plugins``: what is installed, from metadata; ``--check`` also imports each plugin."""

from __future__ import annotations

import json

import typer


def plugins(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    check: bool = typer.Option(
        False, "--check", help="Import every plugin and report what it provides or why it failed."
    ),
) -> None:
    """List installed gs3d plugins (methods and metrics), their distributions, versions and status."""
    from gs_core.plugins.registry import get_registry

    reg = get_registry()
    entries = reg.entry_points()
    provided: dict[str, dict[str, list[str]]] = {}
    if check:
        reg.load_all()
        for spec in reg._methods.values():
            provided.setdefault(spec.distribution, {}).setdefault("methods", []).append(spec.name)
        for mspec in reg._metrics.values():
            provided.setdefault(mspec.distribution, {}).setdefault("metrics", []).append(mspec.name)
    failures = {(f.distribution, f.name): f.error for f in reg.failures}
    rows = []
    for e in entries:
        if e.disabled:
            status = f"disabled ({e.disabled})"
        elif (e.distribution, e.name) in failures:
            status = "failed"
        elif check:
            status = "loaded"
        else:
            status = "installed (not imported)"
        row = {
            "name": e.name,
            "distribution": e.distribution,
            "version": e.version,
            "module": e.value,
            "status": status,
        }
        if (e.distribution, e.name) in failures:
            row["error"] = failures[(e.distribution, e.name)]
        if check:
            row.update(provided.get(e.distribution, {}))
        rows.append(row)
    if as_json:
        out = {"plugins": rows}
        if check:
            out["methods"] = {
                n: {
                    "distribution": s.distribution,
                    "version": s.version,
                    "summary": s.summary,
                    "core_api": s.core_api,
                }
                for n, s in reg._methods.items()
            }
            out["metrics"] = {
                n: {"distribution": s.distribution, "summary": s.summary}
                for n, s in reg._metrics.items()
            }
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gs3d plugins", title_justify="left")
    for col in ("name", "distribution", "version", "status", "provides / error"):
        table.add_column(col)
    for r in rows:
        extra = r.get("error") or ", ".join(
            f"{k}: {' '.join(v)}" for k, v in r.items() if k in ("methods", "metrics")
        )
        style = "red" if r["status"] == "failed" else None
        table.add_row(r["name"], r["distribution"], r["version"], r["status"], extra, style=style)
    console = Console()
    if rows:
        console.print(table)
    else:
        console.print("No gs3d plugins installed (entry-point group 'gs3d').")
    if not check:
        console.print(
            "[dim]Run `gs3d plugins --check` to import them and list their methods and metrics.[/]"
        )


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
