"""Every hook a gs3d plugin can implement, in one place.

A plugin is a module named by an entry point in the ``gs3d`` group; it implements any of these
hooks with ``@gs_core.plugins.hookimpl``. Each hook receives a ``register`` callable and calls it
once per thing it provides, so one plugin can provide several methods or metrics.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "gs3d"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gs3d_register_methods(register: Callable) -> None:
    """Register generation methods: call ``register(MethodSpec(...))`` for each."""


@hookspec
def gs3d_register_metrics(register: Callable) -> None:
    """Register evaluation metrics: call ``register(MetricSpec(...))`` for each."""
