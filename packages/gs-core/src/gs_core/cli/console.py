"""Where the ``gs3d`` commands write: human lines on stderr, results (``--json``) on stdout.

User text (paths, object names, error messages, install hints such as
``pip install 'gs3d-core[cuda]'``) is printed as it is: rich markup is off, so nothing in
brackets is taken for a style and swallowed. Styles are given as ``style=`` instead.
Imported when ``gs3d`` starts: no torch here.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console


def make_console(*, stderr: bool = True) -> Console:
    """A console that prints text verbatim (no markup, no highlighting) and never hard-wraps
    long lines (log files keep one line per message)."""
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)


def _finite(value: Any) -> Any:
    # JSON has no NaN / Infinity: a missing score is null rather than an unparsable token.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """The machine-readable result of a command: one JSON document on stdout."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, allow_nan=False, default=str) + "\n")
    sys.stdout.flush()


__all__ = ["make_console", "print_json"]
