"""Discovery and loading of gs3d plugins through entry points and pluggy.

Two entry-point groups:

* ``gs3d``: ``name = "module"`` where the module implements the hooks of
  :mod:`gs_core.plugins.hookspecs` that provide methods, metrics and priors. The convention for
  method plugins: the entry point is named like the method
  (``[project.entry-points.gs3d] agg = "gs_method_agg.plugin"``).
* ``gs3d.commands``: ``command-name = "module"`` where the module implements
  ``gs3d_register_commands``. The name is what ``gs3d --help`` lists, so the CLI can show a
  plugin's commands without importing it.

Listing is metadata-only: :meth:`Registry.entry_points` and
:meth:`Registry.command_entry_points` read installed distributions' entry points without
importing anything, and importing this module imports neither torch nor any plugin. A plugin
module is imported when something it provides is needed: :meth:`Registry.get_method` first
imports the entry point named like the method and loads the others only when that does not
provide it; :meth:`Registry.load_command` imports only the module declaring that command.

A plugin that fails to import or register is recorded in :attr:`Registry.failures` (name,
distribution, first line of the error) and never breaks the rest. Environment variables
(they apply to both groups):

* ``GS3D_DISABLE_PLUGINS=a,b`` — plugins never to load;
* ``GS3D_LOAD_PLUGINS=a,b`` — if set, load only these (allowlist).

Each item is a distribution name (spelled as pip shows it or any PEP 503 equivalent: every entry
point of that distribution, and only of it), ``distribution:entry`` (one entry point), or an
entry-point name (every distribution's entry point of that name).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from gs_core.errors import GS3DError, PluginError
from gs_core.plugins import hookspecs

if TYPE_CHECKING:
    from typer.core import TyperCommand

    from gs_core.plugins.specs import MethodSpec, MetricSpec, PriorSpec

ENTRY_POINT_GROUP = "gs3d"
COMMANDS_GROUP = "gs3d.commands"
BUILTIN = "gs3d-core"


@dataclass(frozen=True)
class PluginEntry:
    """An installed plugin entry point as its distribution's metadata describes it."""

    name: str
    value: str
    distribution: str
    version: str
    disabled: str | None = None  # why it is not loaded, when the environment excludes it


@dataclass(frozen=True)
class PluginFailure:
    name: str
    distribution: str
    error: str


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None or not raw.strip():
        return None
    return {x.strip() for x in raw.split(",") if x.strip()}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _api_compatible(required: str, current: str) -> bool:
    try:
        r_major, r_minor = (int(x) for x in required.split(".")[:2])
        c_major, c_minor = (int(x) for x in current.split(".")[:2])
    except ValueError:
        return False
    return r_major == c_major and r_minor <= c_minor


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``GS3D_Dup.Plugin`` is ``gs3d-dup-plugin``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _selects(token: str, name: str, dist: str, dists: set[str]) -> bool:
    """Whether an item of ``GS3D_DISABLE_PLUGINS`` / ``GS3D_LOAD_PLUGINS`` selects entry point
    ``name`` of distribution ``dist``; ``dists`` holds the installed plugins' canonical names.

    ``distribution:entry`` selects that one entry point; a distribution's name selects every
    entry point of that distribution and nothing else, even where another distribution declares
    an entry point of that name; any other item selects the entry points of that name.
    """
    if ":" in token:
        d, _, n = token.partition(":")
        return canonical_name(d) == canonical_name(dist) and n.strip() == name
    if canonical_name(token) in dists:
        return canonical_name(token) == canonical_name(dist)
    return token == name


def _read_entry_points(group: str) -> list[PluginEntry]:
    disabled = _env_list("GS3D_DISABLE_PLUGINS") or set()
    allow = _env_list("GS3D_LOAD_PLUGINS")
    # Distribution names over both groups: a name means the same thing to either group.
    dists = {
        canonical_name(ep.dist.name)
        for g in (ENTRY_POINT_GROUP, COMMANDS_GROUP)
        for ep in metadata.entry_points(group=g)
        if ep.dist is not None
    }
    entries: list[PluginEntry] = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        why = None
        hit = next((t for t in sorted(disabled) if _selects(t, ep.name, dist, dists)), None)
        if hit is not None:
            why = f"disabled by GS3D_DISABLE_PLUGINS={hit}"
        elif allow is not None and not any(_selects(t, ep.name, dist, dists) for t in allow):
            why = "not in GS3D_LOAD_PLUGINS"
        entries.append(PluginEntry(ep.name, ep.value, dist, version, why))
    entries.sort(key=lambda e: (e.name, e.distribution))
    return entries


class Registry:
    """Methods, metrics, priors and commands provided by gs-core itself and by installed plugins."""

    def __init__(self, discover: bool = True):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._discover = discover
        self._methods: dict[str, MethodSpec] = {}
        self._metrics: dict[str, MetricSpec] = {}
        self._priors: dict[str, PriorSpec] = {}
        self._loaded: set[str] = set()
        self.failures: list[PluginFailure] = []
        self._entries: list[PluginEntry] | None = None
        self._command_entries: list[PluginEntry] | None = None
        self._commands: dict[str, TyperCommand] = {}
        self._builtin_loaded = False
        self._conflicts: dict[tuple[str, str], str] = {}  # (kind, name) -> why it is refused

    # ------------------------------------------------------------------ discovery
    def entry_points(self) -> list[PluginEntry]:
        """Installed plugins from entry-point metadata (imports nothing)."""
        if self._entries is None:
            self._entries = _read_entry_points(ENTRY_POINT_GROUP) if self._discover else []
        return self._entries

    def command_entry_points(self) -> list[PluginEntry]:
        """Plugin commands declared in the ``gs3d.commands`` group (imports nothing)."""
        if self._command_entries is None:
            self._command_entries = _read_entry_points(COMMANDS_GROUP) if self._discover else []
        return self._command_entries

    # ------------------------------------------------------------------ loading
    def _load_builtin(self) -> None:
        if self._builtin_loaded:
            return
        self._builtin_loaded = True
        from gs_core import __version__
        from gs_core.plugins import builtin

        self.register_plugin_module(builtin, "gs-core", BUILTIN, __version__)

    def _import(self, entry: PluginEntry) -> ModuleType | None:
        """Import an entry point's module; record and swallow any failure."""
        try:
            return importlib.import_module(entry.value.split(":")[0])
        except BaseException as e:  # a broken plugin may raise anything at import time
            if isinstance(e, KeyboardInterrupt):
                raise
            self.failures.append(PluginFailure(entry.name, entry.distribution, _first_line(e)))
            return None

    def _ensure_registered(self, module: ModuleType, plugin_name: str) -> None:
        # One module may back several entry points (a method and a command): pluggy takes it once.
        if not self._pm.is_registered(module):
            self._pm.register(module, name=plugin_name)

    def _call_hook(self, hook: str, module: ModuleType, **kwargs: Any) -> None:
        """Call ``hook`` on ``module`` alone (each plugin's contributions are attributed to it)."""
        others = [p for p in self._pm.get_plugins() if p is not module]
        self._pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)

    def load(self, entry: PluginEntry) -> bool:
        """Import and register one plugin; record and swallow any failure. True on success."""
        key = f"{entry.distribution}:{entry.name}"
        if key in self._loaded:
            return True
        if entry.disabled:
            return False
        self._loaded.add(key)
        module = self._import(entry)
        if module is None:
            return False
        try:
            self.register_plugin_module(module, entry.name, entry.distribution, entry.version)
        except PluginError as e:
            self.failures.append(PluginFailure(entry.name, entry.distribution, _first_line(e)))
            return False
        return True

    def load_all(self) -> None:
        self._load_builtin()
        for entry in self.entry_points():
            self.load(entry)

    def register_plugin_module(
        self, module: ModuleType, name: str, distribution: str, version: str
    ) -> None:
        """Register a module's hook implementations and collect what it provides."""
        methods: list[MethodSpec] = []
        metrics: list[MetricSpec] = []
        priors: list[PriorSpec] = []
        was_registered = self._pm.is_registered(module)
        try:
            self._ensure_registered(module, f"{distribution}:{name}")
            self._call_hook("gs3d_register_methods", module, register=methods.append)
            self._call_hook("gs3d_register_metrics", module, register=metrics.append)
            self._call_hook("gs3d_register_priors", module, register=priors.append)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            if not was_registered and self._pm.is_registered(module):
                self._pm.unregister(module)
            raise PluginError(
                f"plugin '{name}' ({distribution}) failed to register: {_first_line(e)}"
            ) from e
        for spec in methods:
            self.register_method(spec, distribution, version)
        for mspec in metrics:
            self.register_metric(mspec, distribution, version)
        for pspec in priors:
            self.register_prior(pspec, distribution, version)

    def _add(self, kind: str, table: dict, spec: Any) -> None:
        old = table.get(spec.name)
        if old is not None:
            msg = (
                f"duplicate {kind} name '{spec.name}': provided by both {old.distribution} and "
                f"{spec.distribution}; uninstall one or disable it "
                f"(GS3D_DISABLE_PLUGINS={spec.distribution})"
            )
            self._conflicts[(kind, spec.name)] = msg
            raise PluginError(msg)
        table[spec.name] = spec

    def register_method(
        self, spec: MethodSpec, distribution: str | None = None, version: str | None = None
    ) -> None:
        """Add a method (plugins go through the hook; tests and notebooks may call this)."""
        from gs_core import CORE_API_VERSION
        from gs_core.plugins.specs import MethodSpec

        if not isinstance(spec, MethodSpec):
            raise PluginError(f"register() expected a MethodSpec, got {type(spec).__name__}")
        spec = replace(
            spec, distribution=distribution or spec.distribution, version=version or spec.version
        )
        if not _api_compatible(spec.core_api, CORE_API_VERSION):
            raise PluginError(
                f"method '{spec.name}' from {spec.distribution} {spec.version} was built for gs-core API "
                f"{spec.core_api}, this gs-core provides API {CORE_API_VERSION}; upgrade the plugin or gs-core"
            )
        self._add("method", self._methods, spec)

    def register_metric(
        self, spec: MetricSpec, distribution: str | None = None, version: str | None = None
    ) -> None:
        from gs_core.plugins.specs import MetricSpec

        if not isinstance(spec, MetricSpec):
            raise PluginError(f"register() expected a MetricSpec, got {type(spec).__name__}")
        spec = replace(
            spec, distribution=distribution or spec.distribution, version=version or spec.version
        )
        old = self._metrics.get(spec.name)
        if old is not None:
            raise PluginError(
                f"duplicate metric name '{spec.name}': provided by both {old.distribution} and {spec.distribution}"
            )
        self._metrics[spec.name] = spec

    def register_prior(
        self, spec: PriorSpec, distribution: str | None = None, version: str | None = None
    ) -> None:
        """Add a diffusion prior (plugins go through ``gs3d_register_priors``)."""
        from gs_core.plugins.specs import PriorSpec

        if not isinstance(spec, PriorSpec):
            raise PluginError(f"register() expected a PriorSpec, got {type(spec).__name__}")
        spec = replace(
            spec, distribution=distribution or spec.distribution, version=version or spec.version
        )
        self._add("prior", self._priors, spec)

    # ------------------------------------------------------------------ commands
    def load_command(self, name: str, reserved: Collection[str] = ()) -> TyperCommand:
        """The click command ``gs3d NAME`` of a plugin, importing only the module declaring it.

        ``reserved``: the built-in command names, which no plugin may take. Raises a
        :class:`GS3DError` naming the distribution when the command cannot be provided.
        """
        if name in self._commands:
            return self._commands[name]
        entries = [e for e in self.command_entry_points() if e.name == name]
        if not entries:
            known = ", ".join(e.name for e in self.command_entry_points()) or "none installed"
            raise GS3DError(f"unknown plugin command '{name}' (plugin commands: {known})")
        # A disabled distribution takes no part: disabling one of two that declare the same
        # command is how that conflict is resolved.
        enabled = [e for e in entries if not e.disabled]
        entry = (enabled or entries)[0]
        where = f"plugin {entry.distribution} {entry.version}"
        if name in reserved:
            raise PluginError(
                f"{where} declares the command '{name}', which is a built-in gs3d command; "
                "the plugin's command is refused (rename it in its gs3d.commands entry point)"
            )
        if len({e.distribution for e in enabled}) > 1:
            dists = sorted({e.distribution for e in enabled})
            raise PluginError(
                f"duplicate command name '{name}': declared by both {' and '.join(dists)}; "
                f"uninstall one or disable it (GS3D_DISABLE_PLUGINS={dists[-1]})"
            )
        if entry.disabled:
            raise GS3DError(f"command '{name}' ({entry.distribution}) is {entry.disabled}")
        module = self._import(entry)
        if module is None:
            raise PluginError(
                f"command '{name}' from {where} failed to load: {self.failures[-1].error}"
            )
        import typer

        cli = typer.Typer()
        try:
            self._ensure_registered(module, f"{entry.distribution}:{COMMANDS_GROUP}:{name}")
            self._call_hook("gs3d_register_commands", module, cli=cli)
            group = (
                typer.main.get_group(cli)
                if cli.registered_commands or cli.registered_groups
                else None
            )
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            error = _first_line(e)
            self.failures.append(PluginFailure(name, entry.distribution, error))
            raise PluginError(f"command '{name}' from {where} failed to register: {error}") from e
        added = sorted(group.commands) if group is not None else []
        if name not in added:
            error = (
                f"{where} declares the command '{name}' (entry point group {COMMANDS_GROUP}) but its "
                f"gs3d_register_commands hook added {', '.join(added) or 'nothing'}"
            )
            self.failures.append(PluginFailure(name, entry.distribution, error))
            raise PluginError(error)
        assert group is not None
        self._commands[name] = group.commands[name]
        return self._commands[name]

    # ------------------------------------------------------------------ queries
    def methods(self) -> dict[str, MethodSpec]:
        """All methods (loads every plugin)."""
        self.load_all()
        return dict(sorted(self._methods.items()))

    def metrics(self) -> dict[str, MetricSpec]:
        """All metrics (loads every plugin)."""
        self.load_all()
        return dict(sorted(self._metrics.items()))

    def priors(self) -> dict[str, PriorSpec]:
        """All diffusion priors (loads every plugin)."""
        self.load_all()
        return dict(sorted(self._priors.items()))

    def get_method(self, name: str) -> MethodSpec:
        """The method called ``name``, importing as few plugins as possible."""
        return self._get("method", name, self._methods)

    def get_prior(self, name: str) -> PriorSpec:
        """The diffusion prior called ``name``, importing as few plugins as possible."""
        return self._get("prior", name, self._priors)

    def _get(self, kind: str, name: str, table: dict[str, Any]) -> Any:
        conflict = self._conflicts.get((kind, name))
        if name in table and conflict is None:
            return table[name]
        for entry in self.entry_points():
            if entry.name == name:
                self.load(entry)
        if name not in table:
            self.load_all()
        conflict = self._conflicts.get((kind, name))
        if conflict is not None:
            raise PluginError(conflict)
        if name in table:
            return table[name]
        failed = [f for f in self.failures if f.name == name]
        if failed:
            f = failed[0]
            raise GS3DError(
                f"{kind} '{name}' is installed ({f.distribution}) but failed to load: {f.error}"
            )
        entry = next((e for e in self.entry_points() if e.name == name and e.disabled), None)
        if entry is not None:
            raise GS3DError(f"{kind} '{name}' ({entry.distribution}) is {entry.disabled}")
        known = ", ".join(sorted(table)) or "none installed"
        raise GS3DError(f"unknown {kind} '{name}' (available: {known}); see `gs3d plugins`")


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry(discover: bool = True) -> Registry:
    """Start over with a fresh registry (tests; after installing plugins at run time)."""
    global _REGISTRY
    _REGISTRY = Registry(discover=discover)
    return _REGISTRY
