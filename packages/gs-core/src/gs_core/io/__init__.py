"""File I/O: INRIA 3DGS PLY, ``.splat``, coloured point clouds; all writes are atomic."""

from gs_core.io.atomic import (
    OutputExistsError,
    OutputWriteError,
    atomic_path,
    atomic_write_bytes,
    check_overwrite,
)
from gs_core.io.ply import load_ply, load_point_cloud, save_ply, save_point_cloud
from gs_core.io.splat import load_splat, save_splat

__all__ = [
    "OutputExistsError",
    "OutputWriteError",
    "atomic_path",
    "atomic_write_bytes",
    "check_overwrite",
    "load_ply",
    "load_point_cloud",
    "load_splat",
    "save_ply",
    "save_point_cloud",
    "save_splat",
]
