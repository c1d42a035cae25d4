"""Meshes from Gaussians and Gaussians from meshes.

Gaussians to a mesh: :func:`gaussian_density` on a grid, :func:`marching_cubes` (PyMCubes),
:func:`clean_mesh`, :func:`decimate` (fast-simplification), :func:`gaussian_vertex_colors`,
:func:`unwrap_uv` (xatlas), all chained by :func:`gaussians_to_mesh`; :func:`bake_texture`
bakes renders of the Gaussians into a UV texture, :func:`bake_surface_colors` a colour
function of surface points (a neural field's colour head). Meshes to Gaussians: :func:`sample_surface`
(area-uniform, with colours) and :func:`mesh_to_gaussians` (flat Gaussians in the face plane).
The three libraries are
the optional extra ``gs3d-core[mesh]``. Names load on first access, so importing this package
imports neither torch nor an extra.
"""

from __future__ import annotations

from gs_core.lazy_exports import lazy_exports

_LAZY = {
    "bake_surface_colors": "gs_core.meshing.bake",
    "bake_texture": "gs_core.meshing.bake",
    "clean_mesh": "gs_core.meshing.clean",
    "decimate": "gs_core.meshing.simplification",
    "gaussian_density": "gs_core.meshing.density",
    "gaussian_vertex_colors": "gs_core.meshing.colors",
    "gaussians_to_mesh": "gs_core.meshing.pipeline",
    "marching_cubes": "gs_core.meshing.extract",
    "mesh_to_gaussians": "gs_core.meshing.sampling",
    "sample_surface": "gs_core.meshing.sampling",
    "unwrap_uv": "gs_core.meshing.uv",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
