"""Decimation to a face budget by quadric edge collapse (fast-simplification, extra ``mesh``)."""

from __future__ import annotations

import numpy as np
import torch

from gs_core.errors import GS3DError, ValidationError
from gs_core.mesh import Mesh
from gs_core.meshing.clean import compact
from gs_core.meshing.extras import require

# fast-simplification stops a little short of its target on some meshes; each retry asks for
# this many times the remaining excess on top.
_RETRY_OVERSHOOT = 1.5
_RETRIES = 4


def decimate(mesh: Mesh, faces: int) -> Mesh:
    """At most ``faces`` faces by quadric decimation; a mesh already within the budget is
    returned unchanged. Vertex colours, UVs and textures do not survive decimation (the
    vertices move), so the result carries geometry only; colour it afterwards. Faces that
    repeat a vertex index are dropped before decimating; a mesh of nothing else is refused
    (``ValidationError`` naming ``mesh.faces``)."""
    if not isinstance(faces, int) or faces < 4:
        raise ValidationError("faces", "an int >= 4 (a face budget)", repr(faces))
    if mesh.num_faces <= faces:
        return mesh
    mesh.validate()
    # Faces that repeat a vertex cover nothing, and an edge collapse cannot remove them (they
    # have no edge of positive length to collapse): dropped first.
    f = mesh.faces
    distinct = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    if not bool(distinct.any()):
        raise ValidationError("mesh.faces", "faces with three distinct vertices", "none")
    if not bool(distinct.all()):
        mesh = compact(Mesh(vertices=mesh.vertices, faces=f[distinct]))
        if mesh.num_faces <= faces:
            return mesh
    fs = require("fast_simplification", "mesh decimation")
    points = mesh.vertices.detach().cpu().double().numpy()
    tris = mesh.faces.detach().cpu().numpy().astype(np.int32)
    target = faces
    for _ in range(_RETRIES):
        out_v, out_f = fs.simplify(points, tris, target_reduction=1.0 - target / len(tris))
        if len(out_f) <= faces:
            break
        target = max(1, int(target - _RETRY_OVERSHOOT * (len(out_f) - faces)))
    else:
        raise GS3DError(
            f"faces: decimation could not reach {faces} faces (got {len(out_f)} from "
            f"{mesh.num_faces}); ask for a larger budget"
        )
    device = mesh.vertices.device
    out = Mesh(
        vertices=torch.from_numpy(np.ascontiguousarray(out_v)).to(mesh.vertices.dtype).to(device),
        faces=torch.from_numpy(out_f.astype(np.int64)).to(device),
    )
    return compact(out)  # the collapses leave vertices no face uses
