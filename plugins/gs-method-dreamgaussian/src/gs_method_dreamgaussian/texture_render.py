"""Stage 2's differentiable renderer of a UV-textured mesh (mesh_renderer.py's ``render``) on
gs-core's mesh rasteriser.

The texture is optimised as logits and sampled linear-mipmap-linear before the sigmoid, as the
official renderer does. Positions are welded (the UV atlas splits vertices at chart seams; the
official mesh keeps positions and UVs in separate index buffers), so silhouette antialiasing
and vertex normals see the surface's own topology and the seams stay invisible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_core.mesh import Mesh
from gs_core.rendering import antialias, edge_topology, interpolate, project_vertices, rasterize
from gs_core.rendering import texture as sample_texture
from gs_core.rendering.mesh_render import vertex_normals


@dataclass(frozen=True)
class WeldedMesh:
    """A UV-mapped mesh for rendering: welded ``vertices [V, 3]`` / ``faces [F, 3]``, per-corner
    ``corner_uvs [F, 3, 2]``, area-weighted unit ``normals [V, 3]`` and the faces' edge
    ``topology [F, 3]``."""

    vertices: torch.Tensor
    faces: torch.Tensor
    corner_uvs: torch.Tensor
    normals: torch.Tensor
    topology: torch.Tensor

    @classmethod
    def from_mesh(cls, mesh: Mesh) -> WeldedMesh:
        mesh.validate()
        if mesh.uvs is None:
            raise ValidationError("mesh.uvs", "UVs (gs_core.meshing.unwrap_uv)", "none")
        faces = mesh.faces.long()
        # Split seam vertices are exact copies, so equal positions identify them.
        verts, inverse = torch.unique(mesh.vertices.detach(), dim=0, return_inverse=True)
        welded = inverse[faces]
        return cls(
            vertices=verts,
            faces=welded,
            corner_uvs=mesh.uvs[faces].detach(),
            normals=vertex_normals(verts, welded),
            topology=edge_topology(welded),
        )


def render_textured(
    mesh: WeldedMesh,
    logits: torch.Tensor,
    cameras: Cameras,
    *,
    background: float = 1.0,
    mip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render ``mesh`` with the texture ``sigmoid(logits [T, T, 3])`` from ``cameras [C]``.

    Returns ``rgb [C, H, W, 3]`` composited over ``background`` and antialiased at
    silhouettes (differentiable w.r.t. ``logits``), the coverage ``alpha [C, H, W, 1]`` and
    ``viewcos [C, H, W, 1]``: the interpolated vertex normal's cosine with the camera's
    backward axis (mesh_renderer.py's ``viewcos``), 0 where empty.
    """
    cameras = cameras.to(device=mesh.vertices.device, dtype=mesh.vertices.dtype)
    rast = rasterize(mesh.vertices, mesh.faces, cameras, check=False)
    covered = rast.tri_id >= 0
    alpha = covered[..., None].to(logits.dtype)
    uv = interpolate(mesh.corner_uvs, rast)
    albedo = torch.sigmoid(sample_texture(logits, uv, mip=mip, mask=covered))
    rgb = albedo * alpha + background * (1 - alpha)
    xy, _ = project_vertices(mesh.vertices, cameras)
    rgb = antialias(rgb, rast, xy, mesh.faces, topology=mesh.topology)
    n = interpolate(mesh.normals, rast, mesh.faces)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)
    forward = cameras.viewmats[:, 2, :3]  # [C, 3] world direction the camera looks along
    viewcos = -(n * forward[:, None, None, :]).sum(-1, keepdim=True) * alpha
    return rgb, alpha, viewcos
