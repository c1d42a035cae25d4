"""Marching cubes (PyMCubes, extra ``mesh``) from a sampled grid to a triangle mesh."""

from __future__ import annotations

import numpy as np
import torch

from gs_core.errors import ValidationError
from gs_core.mesh import Mesh
from gs_core.meshing.extras import require


def marching_cubes(grid: torch.Tensor, bounds: torch.Tensor, level: float) -> Mesh:
    """The iso-surface ``grid == level`` of ``grid [R, R, R]`` (indexed ``[x, y, z]``, sampled
    as :func:`gs_core.meshing.density.grid_points` over ``bounds [2, 3]``) in world units.

    Faces wind counter-clockwise seen from where ``grid < level`` (outwards for a density), on
    ``grid``'s device. A level that no cell crosses raises a :class:`ValidationError` naming
    ``level`` and the grid's range.
    """
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise ValidationError("grid", "a tensor [R, R, R] with R >= 2", str(tuple(grid.shape)))
    if tuple(bounds.shape) != (2, 3):
        raise ValidationError("bounds", "a [2, 3] tensor (min corner, max corner)", str(bounds))
    mcubes = require("mcubes", "marching cubes")
    values = grid.detach().cpu().double().numpy()
    vmin, vmax = float(values.min()), float(values.max())
    # a level outside the grid's range crosses no cell; PyMCubes would return an empty mesh
    verts, tris = (
        mcubes.marching_cubes(values, float(level)) if vmin < level < vmax else (None, None)
    )
    if verts is None or len(tris) == 0:
        raise ValidationError(
            "level",
            f"a value strictly inside the grid's range [{vmin:.4g}, {vmax:.4g}]",
            f"{level} (no surface)",
        )
    size = torch.tensor(grid.shape, dtype=torch.float64) - 1
    lo, hi = bounds.detach().cpu().double()
    world = lo + torch.from_numpy(verts) * (hi - lo) / size
    return Mesh(
        vertices=world.float().to(grid.device),
        faces=torch.from_numpy(tris.astype(np.int64)).to(grid.device),
    )
