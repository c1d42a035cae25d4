"""Entry point of the ``gs3d`` command.

Importing this module must stay cheap: no torch, no method plugin, no gsplat, no CUDA (a test
runs ``gs3d --help`` and checks ``sys.modules``). Each command module imports what it needs
inside its command function. Plugins add commands through ``gs3d_register_commands``
(:mod:`gs_core.cli.plugin_commands`), listed here from their metadata alone.
"""

from __future__ import annotations

import importlib
import sys

import typer

from gs_core.cli.plugin_commands import PluginCommandGroup
from gs_core.errors import GS3DError

app = typer.Typer(
    name="gs3d",
    help="gs3d: single-image-to-3D generation with 3D Gaussian splatting.",
    cls=PluginCommandGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from gs_core import __version__

        typer.echo(f"gs3d {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the gs3d version and exit.",
    ),
) -> None:
    """gs3d: single-image-to-3D generation with 3D Gaussian splatting."""


# Sub-command modules under gs_core.cli, each with a ``register(app)`` function.
COMMAND_MODULES = [
    "plugins",
    "info",
    "convert",
    "render",
    "train",
    "data",
    "fit",
    "eval",
    "generate",
    "demo",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"gs_core.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except GS3DError as e:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
