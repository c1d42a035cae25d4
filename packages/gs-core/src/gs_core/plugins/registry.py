"""Discovery and loading of gs3d plugins through the ``gs3d`` entry-point group and pluggy.

Listing is metadata-only: :meth:`Registry.entry_points` reads installed distributions' entry
points without importing anything. A plugin module is imported when something it provides is
needed: :meth:`Registry.get_method` first imports the entry point named like the method (the
convention for method plugins: ``[project.entry-points.gs3d] agg = "gs_method_agg.plugin"``)
and loads the others only when that does not provide it.

A plugin that fails to import or register is recorded in :attr:`Registry.failures` (name,
distribution, first line of the error) and never breaks the rest. Environment variables:

* ``GS3D_DISABLE_PLUGINS=a,b`` — entry-point or distribution names never to load;
* ``GS3D_LOAD_PLUGINS=a,b`` — if set, load only these (allowlist).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, replace
from importlib import metadata
from types import ModuleType

import pluggy

from gs_core.errors import GS3DError, PluginError
from gs_core.plugins import hookspecs
from gs_core.plugins.specs import MethodSpec, MetricSpec

ENTRY_POINT_GROUP = "gs3d"
BUILTIN = "gs-core"


@dataclass(frozen=True)
class PluginEntry:
    """An installed plugin as its distribution's metadata describes it."""

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


class Registry:
    """Methods and metrics provided by gs-core itself and by installed plugins."""

    def __init__(self, discover: bool = True):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._discover = discover
        self._methods: dict[str, MethodSpec] = {}
        self._metrics: dict[str, MetricSpec] = {}
        self._loaded: set[str] = set()
        self.failures: list[PluginFailure] = []
        self._entries: list[PluginEntry] | None = None
        self._builtin_loaded = False
        self._conflicts: dict[str, str] = {}

    # ------------------------------------------------------------------ discovery
    def entry_points(self) -> list[PluginEntry]:
        """Installed plugins from entry-point metadata (imports nothing)."""
        if self._entries is not None:
            return self._entries
        entries: list[PluginEntry] = []
        if self._discover:
            disabled = _env_list("GS3D_DISABLE_PLUGINS") or set()
            allow = _env_list("GS3D_LOAD_PLUGINS")
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else "?"
                version = ep.dist.version if ep.dist is not None else "?"
                why = None
                if ep.name in disabled or dist in disabled:
                    why = "disabled by GS3D_DISABLE_PLUGINS"
                elif allow is not None and ep.name not in allow and dist not in allow:
                    why = "not in GS3D_LOAD_PLUGINS"
                entries.append(PluginEntry(ep.name, ep.value, dist, version, why))
        entries.sort(key=lambda e: (e.name, e.distribution))
        self._entries = entries
        return entries

    # ------------------------------------------------------------------ loading
    def _load_builtin(self) -> None:
        if self._builtin_loaded:
            return
        self._builtin_loaded = True
        from gs_core import __version__
        from gs_core.plugins import builtin

        self.register_plugin_module(builtin, "gs-core", BUILTIN, __version__)

    def load(self, entry: PluginEntry) -> bool:
        """Import and register one plugin; record and swallow any failure. True on success."""
        key = f"{entry.distribution}:{entry.name}"
        if key in self._loaded:
            return True
        if entry.disabled:
            return False
        self._loaded.add(key)
        try:
            module = importlib.import_module(entry.value.split(":")[0])
        except BaseException as e:  # a broken plugin may raise anything at import time
            if isinstance(e, KeyboardInterrupt):
                raise
            self.failures.append(PluginFailure(entry.name, entry.distribution, _first_line(e)))
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
        try:
            self._pm.register(module, name=f"{distribution}:{name}")
            caller = self._pm.subset_hook_caller
            others = [p for p in self._pm.get_plugins() if p is not module]
            caller("gs3d_register_methods", remove_plugins=others)(register=methods.append)
            caller("gs3d_register_metrics", remove_plugins=others)(register=metrics.append)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            if self._pm.is_registered(module):
                self._pm.unregister(module)
            raise PluginError(
                f"plugin '{name}' ({distribution}) failed to register: {_first_line(e)}"
            ) from e
        for spec in methods:
            self.register_method(spec, distribution, version)
        for mspec in metrics:
            self.register_metric(mspec, distribution, version)

    def register_method(
        self, spec: MethodSpec, distribution: str | None = None, version: str | None = None
    ) -> None:
        """Add a method (plugins go through the hook; tests and notebooks may call this)."""
        from gs_core import CORE_API_VERSION

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
        old = self._methods.get(spec.name)
        if old is not None:
            msg = (
                f"duplicate method name '{spec.name}': provided by both {old.distribution} and "
                f"{spec.distribution}; uninstall one or disable it with GS3D_DISABLE_PLUGINS"
            )
            self._conflicts[spec.name] = msg
            raise PluginError(msg)
        self._methods[spec.name] = spec

    def register_metric(
        self, spec: MetricSpec, distribution: str | None = None, version: str | None = None
    ) -> None:
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

    # ------------------------------------------------------------------ queries
    def methods(self) -> dict[str, MethodSpec]:
        """All methods (loads every plugin)."""
        self.load_all()
        return dict(sorted(self._methods.items()))

    def metrics(self) -> dict[str, MetricSpec]:
        """All metrics (loads every plugin)."""
        self.load_all()
        return dict(sorted(self._metrics.items()))

    def get_method(self, name: str) -> MethodSpec:
        """The method called ``name``, importing as few plugins as possible."""
        if name in self._methods and name not in self._conflicts:
            return self._methods[name]
        for entry in self.entry_points():
            if entry.name == name:
                self.load(entry)
        if name not in self._methods:
            self.load_all()
        if name in self._conflicts:
            raise PluginError(self._conflicts[name])
        if name in self._methods:
            return self._methods[name]
        failed = [f for f in self.failures if f.name == name]
        if failed:
            f = failed[0]
            raise GS3DError(
                f"method '{name}' is installed ({f.distribution}) but failed to load: {f.error}"
            )
        entry = next((e for e in self.entry_points() if e.name == name and e.disabled), None)
        if entry is not None:
            raise GS3DError(f"method '{name}' ({entry.distribution}) is {entry.disabled}")
        known = ", ".join(self._methods) or "none installed"
        raise GS3DError(f"unknown method '{name}' (available: {known}); see `gs3d plugins`")


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
