"""Differentiable 3D Gaussian splatting renderer: a pure-PyTorch backend and a gsplat backend.

``render(gaussians, cameras)`` is the entry point; the lower-level functions (projection, SH
evaluation, sparse compositing) follow gsplat's flat functional style and are public for methods
that need intermediate results.
"""

from gs_core.rendering.api import RenderOutput, render
from gs_core.rendering.gsplat_backend import (
    BackendUnavailableError,
    build_before_children,
    build_in_background,
    gsplat_available,
)
from gs_core.rendering.mesh_antialias import antialias, edge_topology
from gs_core.rendering.mesh_raster import (
    Rasterization,
    interpolate,
    project_points,
    project_vertices,
    rasterize,
    rasterize_projected,
)
from gs_core.rendering.mesh_render import GraphedMeshRenderer, MeshRenderOutput, render_mesh
from gs_core.rendering.mesh_texture import texture
from gs_core.rendering.projection import Projection, project_gaussians, quat_scale_to_covar
from gs_core.rendering.rasterization import rasterize_pixels
from gs_core.rendering.sh import eval_sh, sh_basis, sh_to_rgb

__all__ = [
    "BackendUnavailableError",
    "GraphedMeshRenderer",
    "MeshRenderOutput",
    "Projection",
    "Rasterization",
    "RenderOutput",
    "antialias",
    "build_before_children",
    "build_in_background",
    "edge_topology",
    "eval_sh",
    "gsplat_available",
    "interpolate",
    "project_gaussians",
    "project_points",
    "project_vertices",
    "quat_scale_to_covar",
    "rasterize",
    "rasterize_pixels",
    "rasterize_projected",
    "render",
    "render_mesh",
    "sh_basis",
    "sh_to_rgb",
    "texture",
]
