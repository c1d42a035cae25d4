"""Cleaning an extracted mesh: merge close vertices, drop degenerate and duplicate faces, drop
small connected components, and wind every closed component outwards.

Pure PyTorch on the mesh's device; vertex colours and UVs follow the vertices they belong to.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.mesh import Mesh


def _with(mesh: Mesh, vertices: torch.Tensor, faces: torch.Tensor, keep_v=None) -> Mesh:
    """A mesh with new vertices/faces; per-vertex attributes are indexed by ``keep_v``."""

    def pick(t):
        return t if t is None or keep_v is None else t[keep_v]

    return Mesh(
        vertices=vertices,
        faces=faces,
        vertex_colors=pick(mesh.vertex_colors),
        uvs=pick(mesh.uvs),
        texture=mesh.texture,
    )


def compact(mesh: Mesh) -> Mesh:
    """Drop the vertices no face uses, renumbering the faces."""
    used = torch.zeros(mesh.num_vertices, dtype=torch.bool, device=mesh.vertices.device)
    used[mesh.faces.reshape(-1)] = True
    if bool(used.all()):
        return mesh
    new_index = torch.cumsum(used.long(), 0) - 1
    return _with(mesh, mesh.vertices[used], new_index[mesh.faces], keep_v=used)


def merge_close_vertices(mesh: Mesh, distance: float) -> Mesh:
    """Merge the vertices that fall in one cell of a grid of side ``distance`` into their mean
    (``distance = 0``: exact duplicates only); faces then left degenerate or duplicated are
    dropped (:func:`drop_bad_faces`). Attributes of a merged vertex are its first member's, so
    merging would join vertices split at UV seams: clean before unwrapping."""
    if distance < 0:
        raise ValidationError("distance", "a value >= 0", str(distance))
    v = mesh.vertices
    key = torch.round(v / distance).long() if distance > 0 else v
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    n = int(inverse.max()) + 1 if inverse.numel() else 0
    count = torch.zeros(n, dtype=v.dtype, device=v.device).index_add_(
        0, inverse, torch.ones_like(v[:, 0])
    )
    merged = torch.zeros(n, 3, dtype=v.dtype, device=v.device).index_add_(0, inverse, v)
    merged = merged / count.unsqueeze(-1)
    # the first member of each group carries the attributes
    first = torch.full((n,), v.shape[0], dtype=torch.long, device=v.device)
    first.scatter_reduce_(0, inverse, torch.arange(v.shape[0], device=v.device), "amin")
    out = _with(mesh, merged, inverse[mesh.faces], keep_v=first)
    return drop_bad_faces(out)


def drop_bad_faces(mesh: Mesh) -> Mesh:
    """Drop faces with a repeated vertex index and all but the first of faces that use the same
    three vertices (in any order), then the vertices left unused."""
    f = mesh.faces
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    if len(f) == 0:
        return compact(_with(mesh, mesh.vertices, f))
    _, inverse = torch.unique(f.sort(dim=1).values, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(f), device=f.device)
    first.scatter_reduce_(0, inverse, torch.arange(len(f), device=f.device), "amin")
    f = f[first.sort().values]
    return compact(_with(mesh, mesh.vertices, f))


def face_components(mesh: Mesh) -> torch.Tensor:
    """Connected-component label ``[F]`` (int64, ``0 .. C-1``) of every face; faces sharing a
    vertex are connected.

    Min-label propagation over the faces with pointer jumping: every vertex's label stays a
    vertex of its own component, and the loop ends when each face's three labels agree.
    """
    f = mesh.faces
    label = torch.arange(mesh.num_vertices, device=f.device)
    while True:
        face_min = label[f].amin(-1)  # [F]
        new = label.clone()
        for k in range(3):
            new.scatter_reduce_(0, f[:, k], face_min, "amin")
        # pointer jumping: follow labels to their own labels (all stay in the same component)
        while True:
            jumped = new[new]
            if torch.equal(jumped, new):
                break
            new = jumped
        if torch.equal(new, label):
            break
        label = new
    _, comp = torch.unique(label[f[:, 0]], return_inverse=True)
    return comp


def drop_small_components(mesh: Mesh, min_fraction: float) -> Mesh:
    """Keep the connected components with at least ``min_fraction`` of all faces (the largest
    is always kept), then the vertices they use."""
    if not 0 <= min_fraction <= 1:
        raise ValidationError("min_fraction", "a value in [0, 1]", str(min_fraction))
    if mesh.num_faces == 0:
        return mesh
    comp = face_components(mesh)
    sizes = torch.bincount(comp)
    big = (sizes >= min_fraction * mesh.num_faces) | (sizes == sizes.max())
    return compact(_with(mesh, mesh.vertices, mesh.faces[big[comp]]))


def orient_outward(mesh: Mesh) -> Mesh:
    """Flip the faces of every connected component whose signed volume is negative, so the
    normals (right-hand rule) of a closed, consistently wound component point outwards.

    The signed volume ``sum (a - c) . ((b - c) x (d - c)) / 6`` over a component's faces, about
    its centroid ``c``, is the enclosed volume when faces wind counter-clockwise seen from
    outside and its negative otherwise.
    """
    if mesh.num_faces == 0:
        return mesh
    comp = face_components(mesh)
    n_comp = int(comp.max()) + 1
    v = mesh.vertices.double()
    tri = v[mesh.faces]  # [F, 3, 3]
    # centroid of each component's face corners, so the volume is independent of the origin
    ones = torch.ones_like(comp, dtype=v.dtype)
    cnt = torch.zeros(n_comp, dtype=v.dtype, device=v.device).index_add_(0, comp, ones)
    cen = torch.zeros(n_comp, 3, dtype=v.dtype, device=v.device).index_add_(0, comp, tri.mean(1))
    tri = tri - (cen / cnt.unsqueeze(-1))[comp].unsqueeze(1)
    vol6 = (tri[:, 0] * torch.linalg.cross(tri[:, 1], tri[:, 2])).sum(-1)
    comp_vol = torch.zeros(n_comp, dtype=v.dtype, device=v.device).index_add_(0, comp, vol6)
    flip = comp_vol[comp] < 0
    faces = torch.where(flip.unsqueeze(-1), mesh.faces[:, [0, 2, 1]], mesh.faces)
    return _with(mesh, mesh.vertices, faces)


def clean_mesh(
    mesh: Mesh, merge_distance: float = 0.0, min_component_fraction: float = 0.0
) -> Mesh:
    """Merge close vertices, drop degenerate/duplicate faces and components with fewer than
    ``min_component_fraction`` of the faces, and wind each component outwards.

    Raises :class:`ValidationError` naming ``mesh`` when no face is left.
    """
    mesh = merge_close_vertices(mesh, merge_distance)
    if mesh.num_faces == 0:
        raise ValidationError("mesh", "faces left after merging close vertices", "none")
    mesh = drop_small_components(mesh, min_component_fraction)
    return orient_outward(mesh)
