"""Exception types shared by every gs3d package.

All user-facing failures derive from :class:`GS3DError`, so the CLI can print one clear
line instead of a traceback from a library's internals.
"""

from __future__ import annotations


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
