"""Import a plugin's or benchmark's script (``scripts/train_small.py``, not a package module) so a
test can call its ``main(argv)`` and helpers in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: str | Path, name: str | None = None) -> ModuleType:
    """The module at ``path``, executed once under ``name`` (default: its file stem)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python script")
    module = importlib.util.module_from_spec(spec)
    # Registered under its name while it runs (and after): dataclasses and pickling look the
    # defining module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


__all__ = ["load_script"]
