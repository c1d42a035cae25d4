"""Entry point of the ``gs3d`` command.

Importing this module must stay cheap: no torch, no method plugin, no gsplat, no CUDA (a test
runs ``gs3d --help`` and checks ``sys.modules``). Each command module imports what it needs
inside its command function. Plugins add commands through ``gs3d_register_commands``
(:mod:`gs_core.cli.plugin_commands`), listed here from their metadata alone.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from gs_core.cli.help_text import escape_help_markup
from gs_core.cli.plugin_commands import PluginCommandGroup
from gs_core.errors import GS3DError, is_out_of_memory

# Set to 1 to see the Python traceback of a failure instead of its one-line summary.
DEBUG_ENV = "GS3D_DEBUG"
_MEMORY_HINT = "; try a smaller --resolution / --size, batch size or model preset"

app = typer.Typer(
    name="gs3d",
    help="gs3d: single-image-to-3D generation with 3D Gaussian splatting.",
    epilog=f"Errors print one line and exit with code 2; set {DEBUG_ENV}=1 for a traceback.",
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
    "mesh",
    "eval",
    "generate",
    "demo",
    "compare",
    "view",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"gs_core.cli.{_name}").register(app)
escape_help_markup(app)  # help texts are shown as written, brackets included


def main(argv: list[str] | None = None) -> None:
    """Run ``gs3d``; every failure a user can cause ends in one ``error:`` line and exit code 2.

    That covers gs3d's own errors (:class:`GS3DError`), the operating system refusing a file
    operation, and running out of memory; anything else is a bug and keeps its traceback.
    ``GS3D_DEBUG=1`` shows the traceback of every failure.
    """
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        app(args=argv, standalone_mode=True)
        return
    try:
        app(args=argv, standalone_mode=True)
    except GS3DError as e:
        _fail(str(e))
    except OSError as e:
        _fail(_os_error_line(e))
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        _fail("out of memory" + (f" ({detail})" if detail else "") + _MEMORY_HINT)


def _fail(message: str) -> None:
    from rich.console import Console

    # markup off: the message quotes user text, paths and hints such as 'gs3d-core[cuda]'.
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print("error:", style="bold red", end=" ")
    console.print(message, markup=False)
    sys.exit(2)


def _os_error_line(e: OSError) -> str:
    from gs_core.io.atomic import describe_os_error

    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    return f"{where}: {describe_os_error(e)}" if where else describe_os_error(e)


if __name__ == "__main__":
    main()
