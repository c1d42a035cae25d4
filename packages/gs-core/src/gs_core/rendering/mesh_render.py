"""``render_mesh``: RGB, mask, depth and normals of a ``Mesh``, differentiable, any device.

Composes the stages of ``mesh_raster`` (rasterise, interpolate), ``mesh_texture`` and
``mesh_antialias`` with the conventions of the Gaussian ``render()``: same ``Cameras``, images
``[C, H, W, ch]``, RGB composited over ``background``, depth (camera z) and normals composited
over 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from gs_core.cameras import Cameras
from gs_core.errors import ValidationError
from gs_core.mesh import Mesh
from gs_core.rendering.api import _background
from gs_core.rendering.mesh_antialias import antialias as antialias_fn
from gs_core.rendering.mesh_raster import interpolate, project_vertices, rasterize
from gs_core.rendering.mesh_texture import texture

ATTRIBUTES = ("rgb", "alpha", "depth", "normal")
# Meshes without colours or texture render in one neutral grey, so shape stays visible on
# both white and black backgrounds.
UNCOLOURED = 0.7


@dataclass
class MeshRenderOutput:
    """Images for ``C`` cameras (``None`` for attributes not asked for).

    rgb:    ``[C, H, W, 3]`` vertex colours or texture, composited over the background.
    alpha:  ``[C, H, W, 1]`` coverage mask (fractional at antialiased silhouettes).
    depth:  ``[C, H, W, 1]`` camera-space z, composited over 0 (as ``render``'s "RGB+D").
    normal: ``[C, H, W, 3]`` world-space unit normals (face or vertex), composited over 0.
    meta:   ``rast`` (the ``Rasterization``) and ``xy`` (vertex pixel positions).
    """

    rgb: torch.Tensor | None
    alpha: torch.Tensor | None
    depth: torch.Tensor | None = None
    normal: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit normals ``[F, 3]`` of ``verts [V, 3]`` / ``faces [F, 3]`` by the right-hand rule
    (counter-clockwise winding seen from outside points outwards); zero for degenerate faces."""
    v = verts[faces.long()]
    n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``[V, 3]``."""
    v = verts[faces.long()]
    n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1)  # 2 * area * normal
    acc = torch.zeros_like(verts).index_add(0, faces.long().reshape(-1), n.repeat_interleave(3, 0))
    return acc / acc.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def render_mesh(
    mesh: Mesh,
    cameras: Cameras,
    *,
    background: torch.Tensor | Sequence[float] | float | None = 1.0,
    attributes: Sequence[str] = ATTRIBUTES,
    antialias: bool = True,
    normals: Literal["face", "vertex"] = "face",
    mip: bool = True,
    near_plane: float = 0.01,
) -> MeshRenderOutput:
    """Render ``mesh`` from ``cameras [C]`` (no batch dims).

    Differentiable w.r.t. vertex positions (interior through barycentrics and depth, silhouettes
    through ``antialias``), vertex colours and the texture. Colour comes from the texture when
    the mesh has one, else from vertex colours, else a uniform grey (0.7).

    Args:
        background: RGB behind the mesh: a float, 3 floats or a tensor broadcastable to
            ``[C, 3]``; ``None`` is black.
        attributes: which of "rgb", "alpha", "depth", "normal" to compute.
        antialias: analytic silhouette antialiasing (needed for geometry gradients from masks).
        normals: "face" (flat, exact for polyhedra) or "vertex" (smooth, area-weighted).
        mip: mip-mapped texture sampling.
        near_plane: faces with a vertex nearer than this are culled.
    """
    if not isinstance(mesh, Mesh):
        raise ValidationError("mesh", "a gs_core.Mesh", type(mesh).__name__)
    # Empty meshes, NaN vertices and out-of-range faces: one line naming the Mesh field
    # here, rather than a failure deep in the rasteriser (degenerate faces are skipped there).
    mesh.validate()
    if not isinstance(cameras, Cameras):
        raise ValidationError("cameras", "a gs_core.Cameras", type(cameras).__name__)
    if cameras.batch_shape:
        raise ValidationError("cameras", "cameras [C] without batch dims", repr(cameras))
    attrs = tuple(attributes)
    bad = [a for a in attrs if a not in ATTRIBUTES]
    if bad or not attrs:
        raise ValidationError("attributes", f"a non-empty subset of {ATTRIBUTES}", repr(attributes))
    if normals not in ("face", "vertex"):
        raise ValidationError("normals", "'face' or 'vertex'", repr(normals))
    verts, faces = mesh.vertices, mesh.faces.long()
    cameras = cameras.to(device=verts.device, dtype=verts.dtype)
    rast = rasterize(verts, faces, cameras, near_plane=near_plane)
    mask = rast.tri_id >= 0
    m = mask[..., None].to(verts.dtype)
    C, H, W = rast.tri_id.shape

    chans: dict[str, torch.Tensor] = {}
    if "rgb" in attrs:
        if mesh.texture is not None:
            uv = interpolate(mesh.uvs.to(verts.dtype), rast, faces)
            rgb = texture(mesh.texture.to(verts.dtype), uv, mip=mip, mask=mask)
        elif mesh.vertex_colors is not None:
            rgb = interpolate(mesh.vertex_colors.to(verts.dtype), rast, faces)
        else:
            rgb = m.expand(C, H, W, 3) * UNCOLOURED
        bg = _background(background, (C,), verts.dtype, verts.device, check=True)
        if bg is not None:
            rgb = rgb * m + bg[:, None, None, :] * (1 - m)
        chans["rgb"] = rgb
    if "alpha" in attrs:
        chans["alpha"] = m
    if "depth" in attrs:
        chans["depth"] = rast.depth[..., None]
    if "normal" in attrs:
        if normals == "face":
            fn = face_normals(verts, faces)
            n = interpolate(fn[:, None, :].expand(-1, 3, -1), rast)
        else:
            n = interpolate(vertex_normals(verts, faces), rast, faces)
            n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)
        chans["normal"] = n

    xy = None
    if antialias:
        xy, _ = project_vertices(verts, cameras)
        names = list(chans)
        sizes = [chans[k].shape[-1] for k in names]
        stacked = antialias_fn(torch.cat([chans[k] for k in names], -1), rast, xy, faces)
        chans = dict(zip(names, stacked.split(sizes, -1), strict=True))
    return MeshRenderOutput(
        rgb=chans.get("rgb"),
        alpha=chans.get("alpha"),
        depth=chans.get("depth"),
        normal=chans.get("normal"),
        meta={"rast": rast, "xy": xy},
    )
