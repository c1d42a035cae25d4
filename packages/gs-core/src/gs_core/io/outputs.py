"""Checks on the set of files one operation writes, made before any work starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gs_core.errors import ValidationError

PathLike = str | os.PathLike


def check_distinct_outputs(
    outputs: Mapping[str, PathLike | None], inputs: Mapping[str, PathLike | None] | None = None
) -> None:
    """Refuse two outputs that name the same file, and an output that names an input (the
    result would replace what it is computed from), with one line naming the option.

    ``outputs`` / ``inputs`` map an option or argument name (``--grid``, ``IMAGE``) to its path;
    ``None`` entries are options not given. Paths are compared after resolving ``..``, symbolic
    links and the working directory, so ``a.gif`` and ``./x/../a.gif`` are one file.
    """
    seen: dict[Path, str] = {}
    for name, path in (inputs or {}).items():
        if path is not None:
            seen.setdefault(Path(path).expanduser().resolve(), f"the input {name}")
    for name, path in outputs.items():
        if path is None:
            continue
        key = Path(path).expanduser().resolve()
        if key in seen:
            raise ValidationError(name, f"a path different from {seen[key]}", str(path))
        seen[key] = name


__all__ = ["check_distinct_outputs"]
