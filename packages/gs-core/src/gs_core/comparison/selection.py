"""Which methods a comparison runs, how each is built, and why one cannot run at all.

Every method runs at its default: the checkpoint it ships (``MethodSpec.default_checkpoint``)
or, for a method without weights of its own, its ``paper`` preset — what
:func:`gs_core.loading.load_method` builds when given neither. A method that needs weights and
ships none, a name nothing provides and a plugin that failed to import are not errors of the
comparison: each becomes a row of the report with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from gs_core.errors import GS3DError, PluginError
from gs_core.loading import DEFAULT_PRESET
from gs_core.plugins.specs import MethodSpec

READY = "ready"
UNKNOWN = "unknown method"
NO_WEIGHTS = "no weights"
PLUGIN_FAILED = "plugin failed"
DISABLED = "disabled"


@dataclass(frozen=True)
class MethodChoice:
    """One requested method: its spec and what it is built from, or why it cannot run.

    ``status`` is :data:`READY`, :data:`UNKNOWN`, :data:`NO_WEIGHTS`, :data:`PLUGIN_FAILED` or
    :data:`DISABLED` (by ``GS3D_DISABLE_PLUGINS`` / ``GS3D_LOAD_PLUGINS``);
    ``reason`` is one line for every status but :data:`READY`.
    """

    name: str
    status: str
    spec: MethodSpec | None = None
    source: str = ""
    reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.status == READY


def parse_methods(text: str | None) -> list[str] | None:
    """``"agg, dreamgaussian"`` -> ``["agg", "dreamgaussian"]`` (order kept, repeats dropped);
    ``None`` means every installed method."""
    if text is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise GS3DError(f"--methods: expected comma-separated method names, got '{text}'")
    return names


def choose_methods(names: list[str] | None = None, registry=None) -> list[MethodChoice]:
    """The methods ``names`` (``None``: every installed one, by name) as :class:`MethodChoice`.

    With ``None``, a plugin entry point that failed to import is listed too, under its entry
    point's name: method plugins name their entry point after the method (see
    :mod:`gs_core.plugins.registry`), so that is the method the reader would miss.
    """
    if registry is None:
        from gs_core.plugins.registry import get_registry

        registry = get_registry()
    if names is not None:
        return [_choose(registry, n) for n in names]
    specs = registry.methods()
    choices = [_from_spec(spec) for spec in specs.values()]
    seen = set(specs)
    for failure in registry.failures:
        if failure.name not in seen:
            seen.add(failure.name)
            choices.append(
                MethodChoice(
                    failure.name,
                    PLUGIN_FAILED,
                    reason=f"plugin {failure.distribution} failed to load: {failure.error}",
                )
            )
    return sorted(choices, key=lambda c: c.name)


def _choose(registry, name: str) -> MethodChoice:
    try:
        spec = registry.get_method(name)
    except GS3DError as e:
        line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return MethodChoice(name, _why_missing(registry, name, e), reason=line)
    return _from_spec(spec)


def _why_missing(registry, name: str, error: GS3DError) -> str:
    """The status of a name the registry could not provide, from the registry's own record."""
    if isinstance(error, PluginError) or any(f.name == name for f in registry.failures):
        return PLUGIN_FAILED
    if any(e.name == name and e.disabled for e in registry.entry_points()):
        return DISABLED
    return UNKNOWN


def _from_spec(spec: MethodSpec) -> MethodChoice:
    if spec.default_checkpoint is not None:
        return MethodChoice(spec.name, READY, spec, f"default checkpoint {spec.default_checkpoint}")
    if not spec.has_weights:
        return MethodChoice(
            spec.name, READY, spec, f"preset {DEFAULT_PRESET} (no weights of its own)"
        )
    return MethodChoice(
        spec.name,
        NO_WEIGHTS,
        spec,
        reason=f"method '{spec.name}' ({spec.distribution or 'unknown package'}) needs trained "
        "weights and ships no default checkpoint; score a trained one with gs3d eval --method "
        f"{spec.name} --checkpoint DIR",
    )


__all__ = [
    "DISABLED",
    "NO_WEIGHTS",
    "PLUGIN_FAILED",
    "READY",
    "UNKNOWN",
    "MethodChoice",
    "choose_methods",
    "parse_methods",
]
