"""The optional ``mesh`` extra (PyMCubes, fast-simplification, xatlas), imported on first use."""

from __future__ import annotations

import importlib
from types import ModuleType

from gs_core.errors import GS3DError

# import name -> PyPI name, for the message
_PACKAGES = {"mcubes": "PyMCubes", "fast_simplification": "fast-simplification", "xatlas": "xatlas"}


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` of the ``mesh`` extra, or fail with one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise GS3DError(
            f"{what} needs {_PACKAGES.get(module, module)}, part of the optional 'mesh' extra: "
            "pip install 'gs3d-core[mesh]'"
        ) from e
