"""Exception types shared by every gs3d package.

All user-facing failures derive from :class:`GS3DError`, so the CLI can print one clear
line instead of a traceback from a library's internals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class GS3DError(Exception):
    """Base class of every error gs3d raises on purpose."""


class ValidationError(GS3DError, ValueError):
    """A tensor or value does not have the shape, dtype or range a field needs."""

    def __init__(self, field: str, expected: str, got: str | None = None):
        self.field = field
        self.expected = expected
        self.got = got
        msg = f"{field}: expected {expected}"
        if got is not None:
            msg += f", got {got}"
        super().__init__(msg)


class FileFormatError(GS3DError, ValueError):
    """A file exists but does not hold what it should (truncated, wrong layout, missing fields)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class WeightsNotFoundError(GS3DError, FileNotFoundError):
    """Pretrained weights could not be found locally nor fetched from a hub."""


class PluginError(GS3DError):
    """A plugin could not be loaded or registered."""


class RandomWeightsWarning(UserWarning):
    """A method that has weights of its own was built from a preset: its outputs come from
    random weights, useful for smoke tests and timing, not for results."""


def is_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` reports exhausted host or device memory (``MemoryError``, torch's
    ``OutOfMemoryError``, or the CPU allocator's plain ``RuntimeError``)."""
    if isinstance(e, MemoryError):
        return True
    if not isinstance(e, RuntimeError):
        return False
    import sys

    # torch only if a caller already imported it: `gs3d --help` must stay torch-free.
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(e, oom_type):
        return True
    text = str(e)
    return "can't allocate memory" in text or "out of memory" in text.lower()


@contextlib.contextmanager
def plugin_failures(kind: str, name: str, distribution: str, what: str) -> Iterator[None]:
    """Run a plugin's code so that its own failures become one :class:`PluginError` line
    naming the plugin, its distribution and the exception's first line.

    gs3d's errors and memory exhaustion pass through unchanged (they already say what to do);
    the original exception stays chained for ``GS3D_DEBUG=1`` tracebacks.
    """
    try:
        yield
    except GS3DError:
        raise
    except Exception as e:
        if is_out_of_memory(e):
            raise
        lines = str(e).strip().splitlines()
        first = f": {lines[0][:200]}" if lines else ""
        raise PluginError(
            f"{kind} '{name}' ({distribution or 'unregistered'}): {what} failed "
            f"({type(e).__name__}{first})"
        ) from e
