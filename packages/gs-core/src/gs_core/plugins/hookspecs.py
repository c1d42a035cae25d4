"""Every hook a gs3d plugin can implement, in one place.

A plugin is a module named by an entry point; it implements any of these hooks with
``@gs_core.plugins.hookspecs.hookimpl``. The ``register_*`` hooks (entry-point group ``gs3d``)
receive a ``register`` callable and call it once per thing they provide, so one plugin can
provide several methods, metrics or priors. ``gs3d_register_commands`` (entry-point group
``gs3d.commands``, one entry point per command, named like it) adds ``gs3d`` subcommands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

PROJECT = "gs3d"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gs3d_register_methods(register: Callable) -> None:
    """Register generation methods: call ``register(MethodSpec(...))`` for each."""


@hookspec
def gs3d_register_metrics(register: Callable) -> None:
    """Register evaluation metrics: call ``register(MetricSpec(...))`` for each."""


@hookspec
def gs3d_register_priors(register: Callable) -> None:
    """Register diffusion priors: call ``register(PriorSpec(...))`` for each."""


@hookspec
def gs3d_register_commands(cli: typer.Typer) -> None:
    """Add ``gs3d`` subcommands to ``cli`` (``@cli.command("name")`` or ``cli.add_typer``).

    Called only when one of the commands the plugin declares in its ``gs3d.commands`` entry
    points is run (never for ``gs3d --help``, which lists them from metadata). Each declared
    command must be added under its entry-point name; import heavy modules (torch, the
    method) inside the command function, not at the top of the plugin module, so that
    ``gs3d NAME --help`` stays fast.
    """
