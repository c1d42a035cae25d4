"""Help texts shown as written.

typer renders ``--help`` through rich markup, where a lowercase word in brackets is a style:
"Checkpoint [default: the bundled one]." showed as "Checkpoint ." and
``pip install 'gs3d-core[cuda]'`` lost its extra. Turning markup off (``rich_markup_mode=None``)
would also drop typer's panels, so every help text of the command tree is escaped once instead,
after the commands are registered and before typer reads them. gs3d writes no markup in help.
Imported when ``gs3d`` starts: no torch here.
"""

from __future__ import annotations

import inspect

import typer
from rich.markup import escape
from typer.models import ParameterInfo


def escape_help_markup(app: typer.Typer) -> None:
    """Escape rich markup in every help text of ``app``: its own, its commands' (docstrings
    included), their options' and arguments', and those of its sub-apps, recursively."""
    _escape_app(app, set())


def _escape_app(app: typer.Typer, seen: set[int]) -> None:
    if id(app) in seen:
        return
    seen.add(id(app))
    if isinstance(app.info.help, str):
        app.info.help = escape(app.info.help)
    if isinstance(app.info.epilog, str):
        app.info.epilog = escape(app.info.epilog)
    callback = app.registered_callback
    if callback is not None:
        if isinstance(callback.help, str):
            callback.help = escape(callback.help)
        if callable(callback.callback):
            _escape_params(callback.callback, seen)
    for command in app.registered_commands:
        if id(command) in seen:
            continue
        seen.add(id(command))
        # typer falls back to the docstring when no help is given: fix the text it would read.
        text = command.help if command.help is not None else inspect.getdoc(command.callback)
        if text is not None:
            command.help = escape(inspect.cleandoc(text))
        if isinstance(command.short_help, str):
            command.short_help = escape(command.short_help)
        if isinstance(command.epilog, str):
            command.epilog = escape(command.epilog)
        if command.callback is not None:
            _escape_params(command.callback, seen)
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = escape(group.help)
        if group.typer_instance is not None:
            _escape_app(group.typer_instance, seen)


def _escape_params(callback, seen: set[int]) -> None:
    for param in inspect.signature(callback).parameters.values():
        info = param.default
        if isinstance(info, ParameterInfo) and id(info) not in seen:
            seen.add(id(info))
            if isinstance(info.help, str):
                info.help = escape(info.help)


__all__ = ["escape_help_markup"]
