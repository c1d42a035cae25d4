"""Gaussians to a coloured triangle mesh: density grid, marching cubes, cleaning, decimation,
vertex colours. Each default follows DreamGaussian's mesh extraction unless its doc says why not.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.meshing.clean import clean_mesh, drop_bad_faces
from gs_core.meshing.colors import gaussian_vertex_colors
from gs_core.meshing.density import gaussian_density
from gs_core.meshing.extract import marching_cubes
from gs_core.meshing.simplification import decimate


def gaussians_to_mesh(
    gaussians: Gaussians,
    resolution: int = 128,
    level: float = 1.0,
    faces: int = 100_000,
    *,
    min_opacity: float = 0.005,
    bounds: torch.Tensor | None = None,
    merge_voxels: float = 0.25,
    min_component_fraction: float = 0.01,
    colors: bool = True,
    chunk: int = 1 << 22,
    timings: dict[str, float] | None = None,
) -> Mesh:
    """Extract a closed, outward-wound, vertex-coloured mesh from one set of Gaussians.

    Args:
        gaussians: one unbatched set (``means [N, 3]``), on any device; runs there (marching
            cubes and decimation run on the CPU and the result returns to that device).
        resolution: grid samples per axis; 128 as DreamGaussian.
        level: iso-level of the density ``sum_i o_i exp(-0.5 d^T Sigma_i^-1 d)``
            (:func:`~gs_core.meshing.density.gaussian_density`); 1.0 as DreamGaussian, which
            uses the same density. The density does not change when the scene is scaled, so the
            level carries over between scenes of any size.
        faces: face budget; quadric decimation above it (DreamGaussian: 1e5).
        min_opacity: Gaussians at or below this opacity are left out of the density and of
            the bounds (DreamGaussian: 0.005).
        bounds: ``[2, 3]`` grid corners; default a cube that the kept Gaussians' centres fill
            to 90% (DreamGaussian's normalisation to [-0.9, 0.9] inside [-1, 1]).
        merge_voxels: vertices within one cell of a grid of this many voxels merge.
            DreamGaussian merges at 1% of the diagonal (about 2 voxels, pymeshlab's pairwise
            merge); ours quantises positions, which moves vertices more per unit of distance, so
            a quarter voxel: enough to collapse marching cubes' sliver triangles.
        min_component_fraction: connected components with fewer than this fraction of the
            faces are dropped (floaters); DreamGaussian's rule (under 20% of the diagonal or 64
            faces) needs pymeshlab; a face fraction does not depend on the resolution.
        colors: colour the vertices from the Gaussians
            (:func:`~gs_core.meshing.colors.gaussian_vertex_colors`).
        chunk: the most (Gaussian, grid point) pairs evaluated at once in the density.
        timings: when given, filled with the seconds of each stage ("density",
            "marching_cubes", "clean", "decimate", "colors"), the device synchronised around
            each.

    Raises:
        ValidationError: naming ``gaussians.opacities`` when no Gaussian is above
            ``min_opacity``, ``level`` when the level crosses no cell of the grid.
    """
    if not isinstance(gaussians, Gaussians) or gaussians.batch_shape != ():
        raise ValidationError("gaussians", "one unbatched Gaussians set [N]", repr(gaussians))
    keep = gaussians.opacities > min_opacity
    if not bool(keep.any()):
        raise ValidationError(
            "gaussians.opacities", f"at least one Gaussian with opacity > {min_opacity}", "none"
        )
    g = gaussians.detach().select(keep)
    stage = _Stages(timings, g.means.device)
    with torch.no_grad():
        with stage("density"):
            grid, used_bounds = gaussian_density(g, resolution, bounds, chunk=chunk)
        with stage("marching_cubes"):
            mesh = marching_cubes(grid, used_bounds, level)
        voxel = float((used_bounds[1] - used_bounds[0]).max()) / (resolution - 1)
        with stage("clean"):
            mesh = clean_mesh(
                mesh,
                merge_distance=merge_voxels * voxel,
                min_component_fraction=min_component_fraction,
            )
        with stage("decimate"):
            mesh = drop_bad_faces(decimate(mesh, faces))
        if colors:
            with stage("colors"):
                mesh = gaussian_vertex_colors(mesh, g)
    return mesh


class _Stages:
    """``with stages(name):`` records the seconds of the block into ``timings[name]`` (the
    device synchronised before and after, so asynchronous GPU work is counted where it runs);
    a no-op without ``timings``."""

    def __init__(self, timings: dict[str, float] | None, device: torch.device):
        self.timings, self.device = timings, device

    @contextmanager
    def __call__(self, name: str):
        if self.timings is None:
            yield
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timings[name] = time.perf_counter() - t0
