"""Vertex colours of a mesh from the Gaussians it was extracted from."""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.points import knn
from gs_core.rendering.projection import quat_to_rotmat


def gaussian_vertex_colors(mesh: Mesh, gaussians: Gaussians, k: int = 16) -> Mesh:
    """The mesh with ``vertex_colors [V, 3]``: at each vertex, the mean diffuse colour of its
    ``k`` nearest Gaussians (by centre) weighted by each one's density there,
    ``o_i exp(-0.5 d^T Sigma_i^-1 d)``, i.e. by what each Gaussian adds to the density the
    surface was extracted from.

    The weights are normalised in log space, so a vertex far from every Gaussian still gets
    the colour of the one that reaches it most.
    """
    if gaussians.batch_shape != () or gaussians.num_gaussians == 0:
        raise ValidationError(
            "gaussians", "one non-empty unbatched set [N]", f"batch shape {gaussians.batch_shape}"
        )
    g = gaussians.detach()
    k = min(k, g.num_gaussians)
    verts = mesh.vertices.detach().to(g.means.device, torch.float32)
    means = g.means.float()
    _, idx = knn(verts[None], means[None], k)  # [1, V, k]
    idx = idx[0]
    rot = quat_to_rotmat(g.quats.float())[idx]  # [V, k, 3, 3]
    d = verts.unsqueeze(1) - means[idx]  # [V, k, 3]
    local = (d.unsqueeze(-2) @ rot).squeeze(-2) / g.scales.float()[idx]  # R^T d / s
    logw = g.opacities.float()[idx].clamp_min(1e-12).log() - 0.5 * local.square().sum(-1)
    w = torch.softmax(logw, dim=-1)  # [V, k]
    colors = (w.unsqueeze(-1) * g.colors.float()[idx]).sum(1)
    return Mesh(
        vertices=mesh.vertices,
        faces=mesh.faces,
        vertex_colors=colors.to(mesh.vertices.device, mesh.vertices.dtype),
        uvs=mesh.uvs,
        texture=mesh.texture,
    )
