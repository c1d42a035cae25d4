"""Module attributes imported on first access (PEP 562), so that importing a package stays cheap.

``import gs_core`` must not import torch (``gs3d --help`` runs on it), and ``import gs_priors``
must not import diffusers; their public names still read ``from gs_core import Gaussians``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    module_name: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for module ``module_name``: ``table`` maps a public name to the
    module that defines it; the first access imports it and caches it on the module."""
    # A name equal to one of the package's own submodules would be shadowed by that submodule
    # as soon as anything imports it (the import system sets it as a package attribute, and
    # __getattr__ is never asked): whether the name meant the function would depend on order.
    clashes = [name for name, source in table.items() if source == f"{module_name}.{name}"]
    if clashes:
        raise ValueError(f"{module_name}: lazy names equal to their submodule: {clashes}")

    def __getattr__(name: str) -> Any:
        source = table.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[module_name], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module_name])) | set(table))

    return __getattr__, __dir__


__all__ = ["lazy_exports"]
