"""Size limits of gs3d: configs and command-line options asking for more are refused when they
are parsed, before anything is allocated, instead of failing deep inside an allocation later.

Plain constants, importable without torch or pydantic (the CLI's option definitions use them).
"""

from __future__ import annotations

# An image side of 8192 px is 1 GiB as a float32 RGBA image.
MAX_RESOLUTION = 8192
# More than any single-object model makes (a fitted real-world scene has a few million).
MAX_GAUSSIANS = 10_000_000
MAX_POINTS = 10_000_000
MAX_VIEWS = 4096
# Channels or hidden units of one layer, and layers or attention heads of one network.
MAX_WIDTH = 16384
MAX_DEPTH = 1024

__all__ = [
    "MAX_DEPTH",
    "MAX_GAUSSIANS",
    "MAX_POINTS",
    "MAX_RESOLUTION",
    "MAX_VIEWS",
    "MAX_WIDTH",
]
