"""Whether Triton kernels can be used: an optional CUDA path, never needed on CPU machines."""

from __future__ import annotations

import functools


@functools.cache
def triton_available() -> bool:
    """True when ``triton`` and ``triton.language`` import (checked once per process)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["triton_available"]
