"""UV unwrapping with xatlas (extra ``mesh``)."""

from __future__ import annotations

import numpy as np
import torch

from gs_core.errors import ValidationError
from gs_core.mesh import Mesh
from gs_core.meshing.extras import require


def unwrap_uv(mesh: Mesh) -> Mesh:
    """The mesh with per-vertex ``uvs [V', 2]`` in ``[0, 1]`` from ``xatlas.parametrize``
    (default options, as DreamGaussian). Vertices on a chart seam are split, so ``V' >= V``;
    positions and vertex colours are copied to the split vertices, faces keep their order.
    A texture the mesh had is dropped: it belonged to the old UVs.

    Degenerate faces (:meth:`~gs_core.Mesh.degenerate_faces`: no area, so no texels) are
    dropped first, since xatlas gives their corners no UVs; a mesh of nothing else is refused
    (``ValidationError`` naming ``mesh.faces``)."""
    mesh.validate()
    degenerate = mesh.degenerate_faces()
    if bool(degenerate.all()):
        raise ValidationError("mesh.faces", "at least one face of positive area", "none")
    if bool(degenerate.any()):
        mesh = mesh.drop_degenerate()
    xatlas = require("xatlas", "UV unwrapping")
    v = mesh.vertices.detach().cpu().float().numpy()
    f = mesh.faces.detach().cpu().numpy().astype(np.uint32)
    vmapping, indices, uvs = xatlas.parametrize(v, f)
    device = mesh.vertices.device
    src = torch.from_numpy(vmapping.astype(np.int64)).to(device)
    return Mesh(
        vertices=mesh.vertices[src],
        faces=torch.from_numpy(indices.astype(np.int64)).to(device),
        vertex_colors=None if mesh.vertex_colors is None else mesh.vertex_colors[src],
        uvs=torch.from_numpy(uvs.astype(np.float32)).to(device=device, dtype=mesh.vertices.dtype),
    )
