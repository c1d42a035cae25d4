"""``gs3d plugins``: what is installed, from metadata; ``--check`` also imports each plugin."""

from __future__ import annotations

import json

import typer


def _builtin_commands(ctx: typer.Context) -> set[str]:
    """Names of the built-in ``gs3d`` commands (plugin commands never enter ``commands``)."""
    group = ctx.parent.command if ctx.parent is not None else None
    return set(getattr(group, "commands", None) or {})


def _command_rows(reg, check: bool, builtin: set[str]) -> list[dict]:
    from gs_core.errors import GS3DError

    entries = reg.command_entry_points()
    dists: dict[str, set[str]] = {}
    for e in entries:
        if not e.disabled:
            dists.setdefault(e.name, set()).add(e.distribution)
    rows = []
    for e in entries:
        row = {
            "name": e.name,
            "distribution": e.distribution,
            "version": e.version,
            "module": e.value,
            "status": "installed (not imported)",
        }
        if e.disabled:
            row["status"] = f"disabled ({e.disabled})"
        elif e.name in builtin:
            row["status"] = "refused"
            row["error"] = f"'{e.name}' is a built-in gs3d command"
        elif len(dists[e.name]) > 1:
            row["status"] = "refused"
            row["error"] = (
                f"duplicate command name '{e.name}': declared by {' and '.join(sorted(dists[e.name]))}"
            )
        elif check:
            try:
                reg.load_command(e.name, reserved=builtin)
                row["status"] = "loaded"
            except GS3DError as err:
                row["status"] = "failed"
                row["error"] = str(err)
        rows.append(row)
    return rows


def plugins(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    check: bool = typer.Option(
        False, "--check", help="Import every plugin and report what it provides or why it failed."
    ),
) -> None:
    """List installed gs3d plugins (methods, metrics, priors, commands), their distributions,
    versions and status."""
    from gs_core.plugins.registry import get_registry

    reg = get_registry()
    entries = reg.entry_points()
    provided: dict[str, dict[str, list[str]]] = {}
    if check:
        reg.load_all()
        for kind, table in (
            ("methods", reg._methods),
            ("metrics", reg._metrics),
            ("priors", reg._priors),
        ):
            for spec in table.values():
                provided.setdefault(spec.distribution, {}).setdefault(kind, []).append(spec.name)
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
    commands = _command_rows(reg, check, _builtin_commands(ctx))
    if as_json:
        out: dict = {"plugins": rows, "commands": commands}
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
            out["priors"] = {
                n: {
                    "distribution": s.distribution,
                    "version": s.version,
                    "summary": s.summary,
                    "default_model_id": s.default_model_id,
                }
                for n, s in reg._priors.items()
            }
        typer.echo(json.dumps(out, indent=2))
        _exit_on_failures(check, rows, commands)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(markup=False)  # errors and install hints ('gs3d-core[cuda]') verbatim
    table = Table(title="gs3d plugins", title_justify="left")
    for col in ("name", "distribution", "version", "status", "provides / error"):
        table.add_column(col)
    for r in rows:
        extra = r.get("error") or ", ".join(
            f"{k}: {' '.join(v)}" for k, v in r.items() if k in ("methods", "metrics", "priors")
        )
        style = "red" if r["status"] == "failed" else None
        table.add_row(r["name"], r["distribution"], r["version"], r["status"], extra, style=style)
    if rows:
        console.print(table)
    else:
        console.print("No gs3d plugins installed (entry-point group 'gs3d').")
    if commands:
        ctable = Table(title="gs3d plugin commands", title_justify="left")
        for col in ("command", "distribution", "version", "status", "error"):
            ctable.add_column(col)
        for r in commands:
            style = "red" if r["status"] in ("failed", "refused") else None
            ctable.add_row(
                r["name"], r["distribution"], r["version"], r["status"], r.get("error", ""),
                style=style,
            )  # fmt: skip
        console.print(ctable)
    if not check:
        console.print(
            "Run `gs3d plugins --check` to import them and list their methods, metrics, "
            "priors and commands.",
            style="dim",
        )
    _exit_on_failures(check, rows, commands)


def _exit_on_failures(check: bool, rows: list[dict], commands: list[dict]) -> None:
    """With ``--check``, exit 1 when a plugin or plugin command failed or was refused, so a
    script (CI, an install check) can tell; listing alone imports nothing and always exits 0."""
    bad = [r for r in [*rows, *commands] if r["status"] in ("failed", "refused")]
    if check and bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
