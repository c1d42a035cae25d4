"""``gs3d`` subcommands contributed by plugins, listed from metadata and imported on use.

A plugin declares each command in its ``gs3d.commands`` entry points (name = command name,
value = the module implementing ``gs3d_register_commands``). ``gs3d --help`` lists those names
without importing the plugin; the module is imported only when its command runs (or its own
``--help`` is asked for). A built-in command always wins over a plugin command of the same
name, and a plugin that fails to load only breaks its own commands.
"""

from __future__ import annotations

import typer
from typer.core import TyperCommand, TyperGroup

from gs_core.plugins.registry import PluginEntry, get_registry

PANEL = "Plugin commands"


class PluginCommandStub(TyperCommand):
    """What ``gs3d --help`` shows for a plugin command: its name and where it comes from."""

    def __init__(self, entry: PluginEntry):
        self.entry = entry
        text = f"From the plugin {entry.distribution} {entry.version}."
        super().__init__(entry.name, help=text, short_help=text, rich_help_panel=PANEL)


class PluginCommandGroup(TyperGroup):
    """The ``gs3d`` group: the built-in commands, then the installed plugins' commands."""

    def _plugin_entries(self, include_disabled: bool = False) -> dict[str, PluginEntry]:
        entries: dict[str, PluginEntry] = {}
        for entry in get_registry().command_entry_points():
            if entry.name in self.commands or (entry.disabled and not include_disabled):
                continue
            entries.setdefault(entry.name, entry)
        return entries

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *sorted(self._plugin_entries())]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> TyperCommand | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = self._plugin_entries(include_disabled=True).get(cmd_name)
        return None if entry is None else PluginCommandStub(entry)

    def resolve_command(
        self, ctx: typer.Context, args: list[str]
    ) -> tuple[str | None, TyperCommand | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, PluginCommandStub) and name is not None:
            # Only now, with the command about to run, is the plugin imported.
            command = get_registry().load_command(name, reserved=set(self.commands))
        return name, command, rest


__all__ = ["PANEL", "PluginCommandGroup", "PluginCommandStub"]
