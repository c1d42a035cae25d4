"""Meshes to points and to Gaussians: area-uniform surface samples with normals and colours,
and flat Gaussians lying in the face planes.

So a method that outputs meshes can also be rendered, compared and scored as Gaussians, and
any mesh can be scored against a point reference (:mod:`gs_core.evaluation.geometry`).
Everything is differentiable in the vertex positions, colours and texture (the face choice and
the barycentric coordinates are random but carry no gradient).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh

# Flat Gaussians: in-plane std = IN_PLANE_FACTOR * sqrt(area per sample). With samples about
# sqrt(area / n) apart, a std of half the spacing makes neighbours overlap at about one std,
# enough to close the surface without blurring it much.
IN_PLANE_FACTOR = 0.5
# Normal-axis std relative to the in-plane std: thin enough to be a surface, and positive so
# the covariance stays invertible for every renderer.
THICKNESS_RATIO = 0.01
# Colour of samples of a mesh with neither vertex colours nor a texture.
DEFAULT_GRAY = 0.5


class SurfaceSamples(NamedTuple):
    """``points [n, 3]``, unit face ``normals [n, 3]``, ``colors [n, 3]`` (None for a mesh
    without colours) and the sampled face of each point ``face_idx [n]`` (int64)."""

    points: torch.Tensor
    normals: torch.Tensor
    colors: torch.Tensor | None
    face_idx: torch.Tensor


def sample_surface(mesh: Mesh, n: int, generator: torch.Generator | None = None) -> SurfaceSamples:
    """``n`` points uniformly distributed by area on ``mesh``'s surface.

    A face is drawn with probability proportional to its area, then a point uniformly inside
    it (barycentrics ``(1 - sqrt(r1), sqrt(r1)(1 - r2), sqrt(r1) r2)``). Normals are the
    faces' (flat, exact for the triangle); colours are the barycentric mix of vertex colours,
    or the texture sampled bilinearly at the interpolated UV (a texture wins over vertex
    colours, as in :meth:`Mesh.to_trimesh`). ``generator`` must live on the mesh's device.
    """
    mesh.validate()
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValidationError("n", "a positive number of samples", repr(n))
    areas = mesh.face_areas()
    total = float(areas.detach().sum())
    if not total > 0:
        raise ValidationError("Mesh.faces", "at least one face of positive area", "total area 0")
    v = mesh.vertices
    face_idx = torch.multinomial(areas.detach().float(), n, replacement=True, generator=generator)
    r = torch.rand(n, 2, generator=generator, device=v.device, dtype=v.dtype)
    s = r[:, 0].sqrt()
    bary = torch.stack([1 - s, s * (1 - r[:, 1]), s * r[:, 1]], dim=-1)  # [n, 3]
    tri = mesh.faces[face_idx]  # [n, 3]
    points = (bary.unsqueeze(-1) * v[tri]).sum(1)
    normals = mesh.face_normals()[face_idx]
    colors = None
    if mesh.texture is not None:
        uv = (bary.unsqueeze(-1) * mesh.uvs[tri]).sum(1)
        colors = sample_texture(mesh.texture, uv)
    elif mesh.vertex_colors is not None:
        colors = (bary.unsqueeze(-1) * mesh.vertex_colors[tri]).sum(1)
    return SurfaceSamples(points, normals, colors, face_idx)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of ``texture [H, W, C]`` at ``uv [n, 2]`` -> ``[n, C]``.

    UVs follow :class:`Mesh`: ``u`` right, ``v`` up, so ``v = 1`` is the image's first row;
    texel centres sit at ``(i + 0.5) / W``, and lookups outside ``[0, 1]`` clamp to the border.
    """
    grid = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], dim=-1).to(texture.dtype)
    img = texture.permute(2, 0, 1).unsqueeze(0)  # [1, C, H, W]
    out = F.grid_sample(
        img, grid.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out[0, :, 0].transpose(0, 1)


def normal_to_quat(normals: torch.Tensor) -> torch.Tensor:
    """``wxyz`` quaternions ``[n, 4]`` of the shortest rotation taking local ``+z`` to each unit
    normal ``[n, 3]``: ``q = (1 + n_z, -n_y, n_x, 0)``, normalised; for ``n = -z`` (where that
    formula vanishes) the half turn about ``x``."""
    nx, ny, nz = normals.unbind(-1)
    q = torch.stack([1 + nz, -ny, nx, torch.zeros_like(nz)], dim=-1)
    norm = q.norm(dim=-1, keepdim=True)
    flip = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=q.dtype, device=q.device).expand_as(q)
    return torch.where(norm > 1e-6, q / norm.clamp_min(1e-12), flip)


def mesh_to_gaussians(
    mesh: Mesh,
    n: int = 100_000,
    *,
    generator: torch.Generator | None = None,
    opacity: float = 1.0,
    in_plane_factor: float = IN_PLANE_FACTOR,
    thickness_ratio: float = THICKNESS_RATIO,
) -> Gaussians:
    """``n`` flat Gaussians ``[n]`` on the surface of ``mesh``.

    Centres are :func:`sample_surface` points; each Gaussian's local ``z`` axis (its smallest,
    ``scales[:, 2]``) is the face normal and its two in-plane stds are ``in_plane_factor *
    sqrt(area / n)`` (the same for all: samples are area-uniform, so each stands for an equal
    share of the surface), the normal std ``thickness_ratio`` times that. Colours come from the
    vertex colours or texture (mid-gray without either), as degree-0 SH.
    """
    if not in_plane_factor > 0 or not thickness_ratio > 0:
        raise ValidationError(
            "in_plane_factor/thickness_ratio",
            "positive numbers",
            f"{in_plane_factor}, {thickness_ratio}",
        )
    samples = sample_surface(mesh, n, generator=generator)
    pts = samples.points
    total = mesh.face_areas().sum()
    sigma = in_plane_factor * (total / n).sqrt()
    scales = torch.stack([sigma, sigma, sigma * thickness_ratio]).to(pts.dtype).expand(n, 3)
    colors = samples.colors
    if colors is None:
        colors = torch.full_like(pts, DEFAULT_GRAY)
    return Gaussians.from_colors(
        means=pts,
        colors=colors.clamp(0.0, 1.0),
        scales=scales,
        opacities=float(opacity),
        quats=normal_to_quat(samples.normals.detach()),
    )


__all__ = [
    "SurfaceSamples",
    "mesh_to_gaussians",
    "normal_to_quat",
    "sample_surface",
    "sample_texture",
]
